package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/webhook"
)

// startPushNode starts a node for the push benchmarks: webhooks may go to the local receiver (loopback,
// plain HTTP), no rate limit, and no cap on connections per address (every subscriber is on loopback).
func startPushNode(ctx context.Context, binary string) (*benchNode, error) {
	dir, err := os.MkdirTemp("", "glovebox-bench-")
	if err != nil {
		return nil, err
	}
	if binary == "" {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		n, err := node.Open(ctx, node.Config{DataDir: dir, Logger: quiet,
			Webhooks: webhook.Options{Policy: webhook.Policy{AllowHTTP: true, AllowPrivate: true}, Heartbeat: -1}})
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			n.Close()
			return nil, err
		}
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { n.Run(runCtx); close(done) }()
		srv := &http.Server{Handler: n.API}
		go srv.Serve(ln)
		return &benchNode{url: "http://" + ln.Addr().String(), dir: dir, local: n, stop: func() {
			srv.Close()
			cancel()
			<-done
			n.Close()
			os.RemoveAll(dir)
		}}, nil
	}
	cmd := exec.Command(binary, append([]string{"serve", "--data", dir, "--http", "127.0.0.1:0", "--mqtt", "off", "--log-level", "warn",
		"--webhook-allow-http", "--webhook-allow-private", "--debug", "127.0.0.1:0"}, unlimited...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	re := regexp.MustCompile(`listening on (http://\S+?)/? `)
	reDebug := regexp.MustCompile(`Runtime profiles on (http://\S+?)/debug/pprof/`)
	debug := ""
	for sc.Scan() {
		if m := reDebug.FindStringSubmatch(sc.Text()); m != nil {
			debug = m[1]
		}
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, out)
			return &benchNode{url: m[1], dir: dir, pid: cmd.Process.Pid, debug: debug, stop: func() {
				cmd.Process.Signal(os.Interrupt)
				cmd.Wait()
				os.RemoveAll(dir)
			}}, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("the node exited before listening")
}

// WebhookOptions sizes the webhook benchmark; zero fields take the defaults.
type WebhookOptions struct {
	Binary   string // run the node as this glovebox binary (RSS reported); empty: in this process
	Vehicles int    // default 1,000, each sending one record a second
	Apps     int    // default 10; the vehicles are split evenly, one signal webhook per vehicle
	Seconds  int    // seconds of load at 1 Hz for the latency; default 30
	// RateRounds is the rounds (one record per vehicle each) of every ingest-rate phase; default 100.
	RateRounds int
	// Pairs is the number of interleaved pairs of phases, webhooks silent and firing, in alternating
	// order; default 4 (an even number, so that each order comes as often).
	Pairs    int
	Progress io.Writer
	// Profile, if set, starts a CPU profile of the load at 1 Hz and the deliveries it makes, and returns
	// what stops it.
	Profile func() (stop func())
	// NodeProfile, if set (child process only), receives a CPU profile of the node process during the
	// load at 1 Hz, read from its runtime profiles (serve --debug).
	NodeProfile io.Writer
}

// WebhookReport is what the webhook benchmark measured.
type WebhookReport struct {
	Cores, Vehicles, Apps, Triggers, Deliveries int
	// P50 and P99 are from a record's acknowledgement to the arrival of the webhook it fired.
	P50, P99 time.Duration
	// RateWithout and RateWith are the ingest rates (records/s, sent as fast as the node takes them) of as
	// many other vehicles, without webhooks, while the fleet sends at 1 Hz: before its webhooks exist, and
	// with every one of its triggers firing every second (1,000 deliveries a second). DropPercent compares
	// them: the ingest capacity the webhooks cost.
	RateWithout, RateWith, DropPercent float64
	// RateAfter is the same rate measured again after the firing webhooks were deleted (the control: the
	// node then holds as much data as during RateWith). RateArmed is the rate of the vehicles sent flat
	// out, each with a webhook of its own whose threshold-crossing condition every value is evaluated
	// against (a delivery each time the speed crosses 120), the firing webhooks deleted.
	RateAfter, RateArmed float64
	// RatesSilent and RatesFiring are the same rate in Pairs interleaved pairs of phases, the fleet's
	// webhooks silent (it sends speed 0, so no condition holds, every value is still evaluated) and
	// firing, the pairs in alternating order: their medians compare the node with and without 1,000 deliveries a second, nothing else
	// changed.
	RatesSilent, RatesFiring []float64
	PeakRSSBytes             int64 // the node process's peak resident memory (child process only)
	// IdleCPU and LoadCPU are the node's CPU use (cores) at 1 Hz, before the webhooks exist and while
	// they fire (child process only); their difference per delivery is what a delivery costs the node.
	IdleCPU, LoadCPU float64
}

// Print writes the report as a Markdown table.
func (r *WebhookReport) Print(w io.Writer) {
	fmt.Fprintf(w, "| webhooks: %d vehicles at 1 Hz, %d signal triggers over %d apps, local receiver (%d cores) | |\n|---|---|\n",
		r.Vehicles, r.Triggers, r.Apps, r.Cores)
	fmt.Fprintf(w, "| deliveries | %d |\n| acceptance → delivery p50 | %.1f ms |\n| acceptance → delivery p99 | %.1f ms |\n",
		r.Deliveries, float64(r.P50.Microseconds())/1000, float64(r.P99.Microseconds())/1000)
	fmt.Fprintf(w, "| ingest rate without webhooks | %.0f records/s |\n| ingest rate with the triggers | %.0f records/s |\n| ingest rate drop | %.1f %% |\n",
		r.RateWithout, r.RateWith, r.DropPercent)
	if len(r.RatesSilent) > 0 {
		ms, mf := median(r.RatesSilent), median(r.RatesFiring)
		fmt.Fprintf(w, "| interleaved, %d pairs: webhooks silent → firing (medians) | %.0f → %.0f records/s (drop %.1f %%) |\n",
			len(r.RatesSilent), ms, mf, 100*(1-mf/ms))
		fmt.Fprintf(w, "| the phases by pair (pairs in alternating order): silent / firing | %s / %s |\n", rates(r.RatesSilent), rates(r.RatesFiring))
	}
	if r.RateAfter > 0 {
		fmt.Fprintf(w, "| ingest rate with the webhooks deleted (control) | %.0f records/s |\n", r.RateAfter)
		fmt.Fprintf(w, "| ingest rate with %d armed triggers on the vehicles sent (threshold crossings) | %.0f records/s (%.1f %% below the control) |\n",
			r.Triggers, r.RateArmed, 100*(1-r.RateArmed/r.RateAfter))
	}
	if r.PeakRSSBytes > 0 {
		fmt.Fprintf(w, "| node peak RSS | %.0f MB |\n", float64(r.PeakRSSBytes)/1e6)
	}
	if r.LoadCPU > 0 {
		perDelivery := (r.LoadCPU - r.IdleCPU) / float64(r.Vehicles)
		fmt.Fprintf(w, "| node CPU at 1 Hz, without → with webhooks | %.2f → %.2f cores (%.0f µs a delivery) |\n",
			r.IdleCPU, r.LoadCPU, perDelivery*1e6)
	}
}

// pushFleet is a fleet of vehicles sending one speed value per record, each with increasing times.
type pushFleet struct {
	devs   []*ecdsa.PrivateKey
	ids    []uint64
	mu     sync.Mutex
	seq    int
	silent atomic.Bool // at 1 Hz, send speed 0 (a signal trigger "value > 0.0" holds on none)
}

// round signs one record of every vehicle at t, with speed v.
func (f *pushFleet) round(t time.Time, v float64) ([]telemetry.Submission, error) {
	f.mu.Lock()
	f.seq++
	seq := f.seq
	f.mu.Unlock()
	subs := make([]telemetry.Submission, len(f.ids))
	errs := make([]error, len(f.ids))
	parallel(len(f.ids), func(i int) {
		ev, err := telemetry.NewEvent(crypto.PubkeyToAddress(f.devs[i].PublicKey), f.ids[i], fmt.Sprintf("p%d", seq), t,
			[]telemetry.EventSignal{{Name: "speed", Timestamp: t, Value: v}})
		if err == nil {
			subs[i], err = telemetry.Sign(ev, f.devs[i])
		}
		errs[i] = err
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return subs, nil
}

// post sends subs in requests of 100 records, 16 at a time, and calls acked with each record's index and
// the time its request was answered.
func post(ctx context.Context, c *client.Client, subs []telemetry.Submission, acked func(i int, at time.Time)) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(subs)/100+1)
	sem := make(chan struct{}, 16)
	for start := 0; start < len(subs); start += 100 {
		end := min(start+100, len(subs))
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := c.PostEvents(ctx, subs[start:end])
			now := time.Now()
			if err != nil {
				errs <- err
				return
			}
			for j, r := range res {
				if r.Status != telemetry.StatusAccepted {
					errs <- fmt.Errorf("record %s: %s", r.ID, r.Status)
					return
				}
				if acked != nil {
					acked(start+j, now)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// oneHz sends one record of every vehicle a second, at whole seconds, for seconds, and calls acked (if
// set) with each record's vehicle index, measurement time and acknowledgement time.
func (f *pushFleet) oneHz(ctx context.Context, c *client.Client, seconds int, acked func(i int, at, now time.Time)) error {
	start := time.Now().Truncate(time.Second).Add(time.Second)
	for s := range seconds {
		at := start.Add(time.Duration(s) * time.Second)
		v := float64(1 + s%200)
		if f.silent.Load() {
			v = 0
		}
		subs, err := f.round(at, v)
		if err != nil {
			return err
		}
		time.Sleep(time.Until(at))
		var ack func(int, time.Time)
		if acked != nil {
			ack = func(i int, now time.Time) { acked(i, at, now) }
		}
		if err := post(ctx, c, subs, ack); err != nil {
			return err
		}
	}
	return nil
}

// besideOneHz measures f's ingest rate (throughput) while the fleet busy sends at 1 Hz beside it.
func (f *pushFleet) besideOneHz(ctx context.Context, c *client.Client, busy *pushFleet, rounds int) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- busy.oneHz(ctx, c, 10*rounds+10, nil) }() // until cancelled
	time.Sleep(1500 * time.Millisecond)                           // the first second of the fleet is sent
	rate, err := f.throughput(ctx, c, rounds)
	cancel()
	if berr := <-done; err == nil && berr != nil && ctx.Err() == nil {
		err = berr
	}
	return rate, err
}

// throughput sends rounds of one record per vehicle as fast as the node takes them and returns records/s.
func (f *pushFleet) throughput(ctx context.Context, c *client.Client, rounds int) (float64, error) {
	var all [][]telemetry.Submission
	for r := range rounds {
		subs, err := f.round(time.Now().Add(time.Duration(r)*time.Millisecond), float64(1+r%200))
		if err != nil {
			return 0, err
		}
		all = append(all, subs)
	}
	start := time.Now()
	for _, subs := range all {
		if err := post(ctx, c, subs, nil); err != nil {
			return 0, err
		}
	}
	return float64(rounds*len(f.ids)) / time.Since(start).Seconds(), nil
}

// Webhooks measures webhook delivery: the time from a record's acknowledgement to the arrival of the
// webhook it fires at a local receiver, with Vehicles vehicles at 1 Hz and one signal webhook per vehicle
// (condition true on every value) spread over Apps apps; and the ingest rate with and without them.
func Webhooks(ctx context.Context, o WebhookOptions) (*WebhookReport, error) {
	if o.Vehicles == 0 {
		o.Vehicles = 1000
	}
	if o.Apps == 0 {
		o.Apps = 10
	}
	if o.Seconds == 0 {
		o.Seconds = 30
	}
	if o.RateRounds == 0 {
		o.RateRounds = 100
	}
	if o.Pairs == 0 {
		o.Pairs = 4
	}
	if o.Vehicles/o.Apps > webhook.MaxPerApp || o.Vehicles%o.Apps != 0 {
		return nil, fmt.Errorf("%d vehicles over %d apps: each app takes an equal share of at most %d", o.Vehicles, o.Apps, webhook.MaxPerApp)
	}
	logf := func(format string, args ...any) { logTo(o.Progress, format, args...) }
	rep := &WebhookReport{Cores: runtime.NumCPU(), Vehicles: o.Vehicles, Apps: o.Apps, Triggers: o.Vehicles}
	var mu sync.Mutex
	arrived := map[string]time.Time{} // vehicle/timestamp → arrival
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		body, _ := io.ReadAll(r.Body)
		var ev webhook.CloudEvent
		json.Unmarshal(body, &ev)
		if ev.Type == webhook.VerifyType {
			var data struct{ Challenge string }
			json.Unmarshal(ev.Data, &data)
			json.NewEncoder(w).Encode(map[string]string{"challenge": data.Challenge})
			return
		}
		var data webhook.SignalData
		json.Unmarshal(ev.Data, &data)
		mu.Lock()
		arrived[fmt.Sprintf("%d/%d", data.VehicleID, data.Signal.Timestamp.UnixMilli())] = now
		mu.Unlock()
	}))
	defer rcv.Close()

	bn, err := startPushNode(ctx, o.Binary)
	if err != nil {
		return nil, err
	}
	defer bn.stop()
	c := client.New(bn.url)
	logf("registering and pairing %d vehicles, and %d more for the ingest rate…", o.Vehicles, o.Vehicles)
	devs, allIDs, owners, err := fleetWithOwners(ctx, c, 2*o.Vehicles)
	if err != nil {
		return nil, err
	}
	// f is the fleet with webhooks; g, as many vehicles without, measures the ingest rate the node has left.
	f := &pushFleet{devs: devs[:o.Vehicles], ids: allIDs[:o.Vehicles]}
	g := &pushFleet{devs: devs[o.Vehicles:], ids: allIDs[o.Vehicles:]}
	ids := f.ids
	logf("ingest rate without webhooks: %d rounds of %d records beside the fleet at 1 Hz…", o.RateRounds, o.Vehicles)
	if rep.RateWithout, err = g.besideOneHz(ctx, c, f, o.RateRounds); err != nil {
		return nil, err
	}

	if bn.pid != 0 {
		logf("the node's CPU at 1 Hz without webhooks: %d seconds…", o.Seconds)
		c0, t0 := cpuSeconds(bn.pid), time.Now()
		if err := f.oneHz(ctx, c, o.Seconds, nil); err != nil {
			return nil, err
		}
		rep.IdleCPU = (cpuSeconds(bn.pid) - c0) / time.Since(t0).Seconds()
	}
	logf("registering %d apps, granting each its vehicles, and %d webhooks…", o.Apps, o.Vehicles)
	d, err := c.Domain(ctx)
	if err != nil {
		return nil, err
	}
	dev, _ := crypto.GenerateKey()
	apps := make([]*ecdsa.PrivateKey, o.Apps)
	var txs []*ledger.Tx
	sign := func(tx *ledger.Tx, keys ...*ecdsa.PrivateKey) *ledger.Tx {
		client.Prepare(tx, time.Hour)
		for _, k := range keys {
			d.Sign(tx, k)
		}
		return tx
	}
	for k := range apps {
		apps[k], _ = crypto.GenerateKey()
		txs = append(txs, sign(&ledger.Tx{Type: ledger.TypeRegisterApp, App: crypto.PubkeyToAddress(apps[k].PublicKey),
			Owner: crypto.PubkeyToAddress(dev.PublicKey), Name: fmt.Sprintf("Bench app %d", k), RedirectURIs: []string{"https://bench.example/cb"}}, dev, apps[k]))
	}
	per := o.Vehicles / o.Apps
	for i, id := range ids {
		tx := &ledger.Tx{Type: ledger.TypeGrant, App: crypto.PubkeyToAddress(apps[i/per].PublicKey),
			Permissions: []string{ledger.PermSignals, ledger.PermStream}, Purpose: "benchmark"}
		tx.VehicleID.SetUint64(id)
		tx.ExpiresAt.SetUint64(uint64(time.Now().Add(24 * time.Hour).Unix()))
		txs = append(txs, sign(tx, owners[i%len(owners)]))
	}
	for i, id := range g.ids { // for the armed triggers, at the end
		tx := &ledger.Tx{Type: ledger.TypeGrant, App: crypto.PubkeyToAddress(apps[i*len(apps)/len(g.ids)].PublicKey),
			Permissions: []string{ledger.PermSignals, ledger.PermStream}, Purpose: "benchmark"}
		tx.VehicleID.SetUint64(id)
		tx.ExpiresAt.SetUint64(uint64(time.Now().Add(24 * time.Hour).Unix()))
		txs = append(txs, sign(tx, owners[(len(ids)+i)%len(owners)]))
	}
	for start := 0; start < len(txs); start += api.MaxBatch {
		items, err := c.SubmitBatch(ctx, txs[start:min(start+api.MaxBatch, len(txs))])
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if it.Error != nil {
				return nil, fmt.Errorf("setup refused: %s: %s", it.Error.Code, it.Error.Message)
			}
		}
	}
	type appHook struct{ url, token string }
	var firing []appHook
	tokens := make([]string, len(apps))
	for k := range apps {
		token, err := SignIn(ctx, bn.url, apps[k])
		tokens[k] = token
		if err != nil {
			return nil, err
		}
		hooks := bn.url + "/v1/apps/" + crypto.PubkeyToAddress(apps[k].PublicKey).Hex() + "/webhooks"
		for _, id := range ids[k*per : (k+1)*per] {
			var made struct{ ID string }
			if err := hookCall(ctx, "POST", hooks, token, map[string]any{"url": rcv.URL, "vehicles": []uint64{id},
				"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 0.0"}}, http.StatusCreated, &made); err != nil {
				return nil, err
			}
			firing = append(firing, appHook{hooks + "/" + made.ID, token})
		}
		// Every webhook must be verified before the load starts.
		for deadline := time.Now().Add(2 * time.Minute); ; {
			var list struct{ Webhooks []struct{ Status string } }
			if err := hookCall(ctx, "GET", hooks, token, nil, http.StatusOK, &list); err != nil {
				return nil, err
			}
			if !slices.ContainsFunc(list.Webhooks, func(w struct{ Status string }) bool { return w.Status != string(webhook.StatusActive) }) {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("app %d's webhooks are not all verified after 2 minutes", k)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	logf("%d seconds at 1 Hz…", o.Seconds)
	stopProfile := func() {}
	if o.Profile != nil {
		stopProfile = o.Profile()
	}
	nodeProfile := make(chan error, 1)
	if o.NodeProfile != nil && bn.debug != "" {
		go func() { nodeProfile <- fetchProfile(ctx, bn.debug, o.Seconds, o.NodeProfile) }()
	} else {
		nodeProfile <- nil
	}
	acked := map[string]time.Time{}
	var amu sync.Mutex
	c0, t0 := cpuSeconds(bn.pid), time.Now()
	if err := f.oneHz(ctx, c, o.Seconds, func(i int, at, now time.Time) {
		amu.Lock()
		acked[fmt.Sprintf("%d/%d", ids[i], at.UnixMilli())] = now
		amu.Unlock()
	}); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := 0
		for k := range acked {
			if _, ok := arrived[k]; ok {
				n++
			}
		}
		mu.Unlock()
		if n == len(acked) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d deliveries arrived within a minute", n, len(acked))
		}
	}
	if bn.pid != 0 {
		rep.LoadCPU = (cpuSeconds(bn.pid) - c0) / time.Since(t0).Seconds()
	}
	stopProfile()
	if err := <-nodeProfile; err != nil {
		return nil, fmt.Errorf("couldn't profile the node: %w", err)
	}
	mu.Lock()
	var lat []time.Duration
	for k, a := range acked {
		lat = append(lat, max(arrived[k].Sub(a), 0))
	}
	mu.Unlock()
	slices.Sort(lat)
	rep.Deliveries, rep.P50, rep.P99 = len(lat), lat[len(lat)/2], lat[len(lat)*99/100]

	logf("ingest rate with the triggers: %d rounds of %d records beside the fleet at 1 Hz, its webhooks firing…", o.RateRounds, o.Vehicles)
	if rep.RateWith, err = g.besideOneHz(ctx, c, f, o.RateRounds); err != nil {
		return nil, err
	}
	rep.DropPercent = 100 * (1 - rep.RateWith/rep.RateWithout)

	// Interleaved: the same webhooks, silent (the fleet sends 0, so no condition holds) and firing, in turn.
	// The pairs alternate their order (silent then firing, firing then silent, …): the rate declines slowly
	// as the node fills, with or without webhooks (the control), and in a fixed order that decline would
	// count against the phase that always comes second.
	for k := range o.Pairs {
		order, desc := []bool{true, false}, "silent, then firing"
		if k%2 == 1 {
			order, desc = []bool{false, true}, "firing, then silent"
		}
		logf("ingest rate, pair %d of %d: the webhooks %s (%d rounds each)…", k+1, o.Pairs, desc, o.RateRounds)
		for _, silent := range order {
			f.silent.Store(silent)
			rate, err := g.besideOneHz(ctx, c, f, o.RateRounds)
			if err != nil {
				return nil, err
			}
			if silent {
				rep.RatesSilent = append(rep.RatesSilent, rate)
			} else {
				rep.RatesFiring = append(rep.RatesFiring, rate)
			}
		}
	}
	f.silent.Store(false)

	// The control: the same node, as much data later, with the firing webhooks deleted.
	logf("ingest rate again with the webhooks deleted (the control): %d rounds…", o.RateRounds)
	for _, h := range firing {
		if err := hookCall(ctx, "DELETE", h.url, h.token, nil, http.StatusNoContent, nil); err != nil {
			return nil, err
		}
	}
	if rep.RateAfter, err = g.besideOneHz(ctx, c, f, o.RateRounds); err != nil {
		return nil, err
	}

	// Armed triggers: every vehicle sent flat out has a webhook whose condition (a threshold crossing, as in
	// docs/webhooks.md) each of its values is evaluated against.
	logf("ingest rate with %d armed triggers on the vehicles sent flat out: %d rounds…", len(g.ids), o.RateRounds)
	for i, id := range g.ids {
		k := i * len(apps) / len(g.ids)
		hooks := bn.url + "/v1/apps/" + crypto.PubkeyToAddress(apps[k].PublicKey).Hex() + "/webhooks"
		if err := hookCall(ctx, "POST", hooks, tokens[k], map[string]any{"url": rcv.URL, "vehicles": []uint64{id},
			"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 120.0 && previousValue <= 120.0"}},
			http.StatusCreated, nil); err != nil {
			return nil, err
		}
	}
	if rep.RateArmed, err = g.besideOneHz(ctx, c, f, o.RateRounds); err != nil {
		return nil, err
	}
	if bn.pid != 0 {
		rep.PeakRSSBytes = peakRSS(bn.pid)
	}
	return rep, nil
}

// hookCall makes one call of the webhooks API and decodes the answer into out.
func hookCall(ctx context.Context, method, url, token string, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// startedFleet is a fleet startPushFleet registered: device keys, vehicle ids and owner keys.
type startedFleet struct {
	devs, owners []*ecdsa.PrivateKey
	ids          []uint64
}

// startPushFleet starts a node (startPushNode) and registers and pairs vehicles on it; the caller stops
// the node.
func startPushFleet(ctx context.Context, binary string, vehicles int, logf func(string, ...any)) (*benchNode, *client.Client, startedFleet, error) {
	bn, err := startPushNode(ctx, binary)
	if err != nil {
		return nil, nil, startedFleet{}, err
	}
	c := client.New(bn.url)
	logf("registering and pairing %d vehicles…", vehicles)
	devs, ids, owners, err := fleetWithOwners(ctx, c, vehicles)
	if err != nil {
		bn.stop()
		return nil, nil, startedFleet{}, err
	}
	return bn, c, startedFleet{devs: devs, owners: owners, ids: ids}, nil
}

// SubscriptionOptions sizes the subscription benchmark; zero fields take the defaults.
type SubscriptionOptions struct {
	Binary      string // run the node as this glovebox binary (RSS reported); empty: in this process
	Subscribers int    // concurrent WebSocket subscribers; default 1,000
	Vehicles    int    // vehicles they watch, evenly; default 100
	Rounds      int    // rounds of one record per vehicle, one a second; default 30
	Progress    io.Writer
}

// SubscriptionReport is what the subscription benchmark measured.
type SubscriptionReport struct {
	Cores, Subscribers, Vehicles, Pushes int
	// P50 and P99 are from a record's acknowledgement to its arrival at a subscriber.
	P50, P99     time.Duration
	PeakRSSBytes int64 // the node process's peak resident memory (child process only)
}

// Print writes the report as a Markdown table.
func (r *SubscriptionReport) Print(w io.Writer) {
	fmt.Fprintf(w, "| subscriptions: %d WebSocket subscribers (graphql-transport-ws) on %d vehicles (%d cores) | |\n|---|---|\n",
		r.Subscribers, r.Vehicles, r.Cores)
	fmt.Fprintf(w, "| pushes | %d |\n| push latency p50 | %.1f ms |\n| push latency p99 | %.1f ms |\n",
		r.Pushes, float64(r.P50.Microseconds())/1000, float64(r.P99.Microseconds())/1000)
	if r.PeakRSSBytes > 0 {
		fmt.Fprintf(w, "| node peak RSS | %.0f MB |\n", float64(r.PeakRSSBytes)/1e6)
	}
}

// Subscriptions measures GraphQL subscriptions over WebSocket: Subscribers connections, each subscribed
// to signalsLatest of one of Vehicles vehicles as its owner, and the time from a record's acknowledgement
// to its push to every subscriber of the vehicle.
func Subscriptions(ctx context.Context, o SubscriptionOptions) (*SubscriptionReport, error) {
	if o.Subscribers == 0 {
		o.Subscribers = 1000
	}
	if o.Vehicles == 0 {
		o.Vehicles = 100
	}
	if o.Rounds == 0 {
		o.Rounds = 30
	}
	logf := func(format string, args ...any) { logTo(o.Progress, format, args...) }
	rep := &SubscriptionReport{Cores: runtime.NumCPU(), Subscribers: o.Subscribers, Vehicles: o.Vehicles}
	bn, c, fl, err := startPushFleet(ctx, o.Binary, o.Vehicles, logf)
	if err != nil {
		return nil, err
	}
	defer bn.stop()
	devs, ids, owners := fl.devs, fl.ids, fl.owners
	tokens := map[common.Address]string{}
	for _, k := range owners {
		if tokens[crypto.PubkeyToAddress(k.PublicKey)], err = SignIn(ctx, bn.url, k); err != nil {
			return nil, err
		}
	}
	logf("opening %d subscriptions…", o.Subscribers)
	var mu sync.Mutex
	arrivals := map[string][]time.Time{} // vehicle/timestamp → arrival at each subscriber
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: the subscribers end with their context
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan error, o.Subscribers)
	warm := make([]atomic.Bool, o.Subscribers) // the subscriber got a push
	for j := range o.Subscribers {
		v := j % o.Vehicles
		token := tokens[crypto.PubkeyToAddress(owners[v%len(owners)].PublicKey)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			subscribe(subCtx, bn.url, token, ids[v], func(err error) { ready <- err }, func(ts int64, at time.Time) {
				warm[j].Store(true)
				mu.Lock()
				k := fmt.Sprintf("%d/%d", ids[v], ts)
				arrivals[k] = append(arrivals[k], at)
				mu.Unlock()
			})
		}()
	}
	for range o.Subscribers {
		if err := <-ready; err != nil {
			return nil, err
		}
	}
	// Nothing is pushed on subscribing, and a subscription starts when the node has read the subscribe
	// message: records are sent until every subscriber got one, before measuring.
	f := &pushFleet{devs: devs, ids: ids}
	logf("warming up until every subscriber got a push…")
	for deadline := time.Now().Add(time.Minute); ; {
		subs, err := f.round(time.Now(), 0)
		if err != nil {
			return nil, err
		}
		if err := post(ctx, c, subs, nil); err != nil {
			return nil, err
		}
		time.Sleep(200 * time.Millisecond)
		all := true
		for j := range warm {
			all = all && warm[j].Load()
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			return nil, errors.New("a subscriber got no push within a minute")
		}
	}
	logf("%d rounds of one record per vehicle…", o.Rounds)
	perVehicle := o.Subscribers / o.Vehicles
	var lat []time.Duration
	for r := range o.Rounds {
		at := time.Now().Truncate(time.Millisecond)
		subs, err := f.round(at, float64(1+r%200))
		if err != nil {
			return nil, err
		}
		acked := make([]time.Time, len(ids))
		if err := post(ctx, c, subs, func(i int, now time.Time) { acked[i] = now }); err != nil {
			return nil, err
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			n := 0
			for i, id := range ids {
				n += min(len(arrivals[fmt.Sprintf("%d/%d", id, at.UnixMilli())]), perVehicle+boolInt(i < o.Subscribers%o.Vehicles))
			}
			mu.Unlock()
			if n == o.Subscribers {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("round %d: %d of %d pushes arrived within 30 s", r, n, o.Subscribers)
			}
		}
		mu.Lock()
		for i, id := range ids {
			for _, a := range arrivals[fmt.Sprintf("%d/%d", id, at.UnixMilli())] {
				lat = append(lat, max(a.Sub(acked[i]), 0))
			}
		}
		mu.Unlock()
		time.Sleep(time.Until(at.Add(time.Second)))
	}
	slices.Sort(lat)
	rep.Pushes, rep.P50, rep.P99 = len(lat), lat[len(lat)/2], lat[len(lat)*99/100]
	if bn.pid != 0 {
		rep.PeakRSSBytes = peakRSS(bn.pid)
	}
	cancel()
	return rep, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// subscribe opens one graphql-transport-ws subscription to signalsLatest of vehicle, calls ready with nil
// once it is sent (or with the error that stopped it before), then calls got with each pushed speed's
// timestamp (unix ms) and its arrival until ctx ends.
func subscribe(ctx context.Context, base, token string, vehicle uint64, ready func(error), got func(ts int64, at time.Time)) {
	conn, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		ready(fmt.Errorf("couldn't open a subscriber's WebSocket: %w", err))
		return
	}
	defer conn.CloseNow()
	type msg struct {
		ID      string          `json:"id,omitempty"`
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload,omitempty"`
	}
	send := func(m msg) error {
		b, _ := json.Marshal(m)
		return conn.Write(ctx, websocket.MessageText, b)
	}
	read := func() (msg, error) {
		var m msg
		_, b, err := conn.Read(ctx)
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		return m, err
	}
	if err := send(msg{Type: "connection_init", Payload: json.RawMessage(fmt.Sprintf(`{"Authorization": "Bearer %s"}`, token))}); err != nil {
		ready(fmt.Errorf("connection_init: %w", err))
		return
	}
	if m, err := read(); err != nil || m.Type != "connection_ack" {
		ready(fmt.Errorf("connection_init: %+v %v", m, err))
		return
	}
	q, _ := json.Marshal(map[string]string{"query": fmt.Sprintf(`subscription { signalsLatest(tokenId: %d) { speed { timestamp } } }`, vehicle)})
	if err := send(msg{ID: "1", Type: "subscribe", Payload: q}); err != nil {
		ready(fmt.Errorf("subscribe: %w", err))
		return
	}
	ready(nil)
	for {
		m, err := read()
		now := time.Now()
		if err != nil {
			return
		}
		switch m.Type {
		case "ping":
			send(msg{Type: "pong"})
		case "next":
			var p struct {
				Data struct {
					SignalsLatest struct {
						Speed *struct{ Timestamp time.Time }
					}
				}
			}
			if json.Unmarshal(m.Payload, &p) == nil && p.Data.SignalsLatest.Speed != nil {
				got(p.Data.SignalsLatest.Speed.Timestamp.UnixMilli(), now)
			}
		}
	}
}

// fetchProfile writes a CPU profile of seconds of the node whose runtime profiles are at debug to w.
func fetchProfile(ctx context.Context, debug string, seconds int, w io.Writer) error {
	resp, err := debugGet(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", debug, seconds))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// debugGet GETs url from a node's debug listener (serve --debug) and refuses any answer but 200.
func debugGet(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp, nil
}

// median returns the median of xs (the mean of the middle two of an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// rates formats records/s figures for a report.
func rates(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ", ")
}
