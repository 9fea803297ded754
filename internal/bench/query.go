package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/telemetry"
)

// QueryOptions sizes a query benchmark; zero fields take the defaults.
type QueryOptions struct {
	Vehicles   int           // vehicles of one owner, each with a paired device (default 25)
	History    time.Duration // telemetry per vehicle, ending about a minute before the measurements (default 2 h)
	Interval   time.Duration // between two records of a vehicle, 10 signals each (default 1 s)
	PerRequest int           // records per POST /v1/events while loading (default 1,000)

	Clients       []int         // concurrent clients of the fixed-rate runs, one connection each (default 1, 50, 200)
	PerClientRate float64       // requests per second each client sends, on a fixed schedule (default 10)
	StepDuration  time.Duration // each run at one rate (default 3 s)

	// The search for the highest rate with p99 under TargetP99: RampClients connections, starting at
	// RampStart requests/s and multiplying by RampFactor until a run fails (p99 ≥ TargetP99, an error, or
	// under 95% of the rate achieved), then bisecting RampRefine times. MaxRate ends the search.
	TargetP99   time.Duration // default 50 ms
	RampClients int           // default 200
	RampStart   float64       // default 2,000/s
	RampFactor  float64       // default 1.5
	RampRefine  int           // default 2
	MaxRate     float64       // default 200,000/s

	StoreDuration time.Duration // the bare store query, measured for this long on one goroutine (default 2 s)
	Progress      io.Writer
}

func (o *QueryOptions) defaults() {
	if o.Vehicles == 0 {
		o.Vehicles = 25
	}
	if o.History == 0 {
		o.History = 2 * time.Hour
	}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.PerRequest == 0 {
		o.PerRequest = 1000
	}
	if o.Clients == nil {
		o.Clients = []int{1, 50, 200}
	}
	if o.PerClientRate == 0 {
		o.PerClientRate = 10
	}
	if o.StepDuration == 0 {
		o.StepDuration = 3 * time.Second
	}
	if o.TargetP99 == 0 {
		o.TargetP99 = 50 * time.Millisecond
	}
	if o.RampClients == 0 {
		o.RampClients = 200
	}
	if o.RampStart == 0 {
		o.RampStart = 2000
	}
	if o.RampFactor <= 1 {
		o.RampFactor = 1.5
	}
	if o.RampRefine == 0 {
		o.RampRefine = 2
	}
	if o.MaxRate == 0 {
		o.MaxRate = 200000
	}
	if o.StoreDuration == 0 {
		o.StoreDuration = 2 * time.Second
	}
}

func (o *QueryOptions) logf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// QueryLevel is one open-loop run at a fixed request rate.
type QueryLevel struct {
	Clients  int
	Rate     float64 // requests/s scheduled
	Achieved float64 // answers/s received
	Sent     int
	Errors   int // transport errors, non-200 answers and answers with GraphQL errors
	P50, P99 time.Duration
}

// ok says whether the run met the target: no errors, p99 under target, 95% of the rate achieved.
func (l QueryLevel) ok(target time.Duration) bool {
	return l.Errors == 0 && l.P99 < target && l.Achieved >= 0.95*l.Rate
}

// QueryReport is what a query benchmark measured.
type QueryReport struct {
	Cores         int
	Vehicles      int
	History       time.Duration
	Interval      time.Duration
	Records       int // records stored, 10 signals each
	LatestRows    int // rows of the latest table
	IngestPerSec  float64
	IndexDuration time.Duration
	Fields        int // signal fields asked by the query
	Levels        []QueryLevel
	TargetP99     time.Duration
	Ramp          []QueryLevel
	MaxRate       float64 // the highest rate run with p99 < TargetP99 (0 if none)
	MaxRateLevel  QueryLevel
	StoreQueries  int
	StoreP50      time.Duration
	StoreP99      time.Duration
	StorePerSec   float64 // the bare query on every core
}

// latestQueryFields are the ten signals tenSignals writes, as signalsLatest selections.
var latestQueryFields = []string{
	"speed { timestamp value }",
	"currentLocationCoordinates { timestamp value { latitude longitude hdop } }",
	"currentLocationHeading { timestamp value }",
	"powertrainTransmissionTravelledDistance { timestamp value }",
	"powertrainFuelSystemRelativeLevel { timestamp value }",
	"powertrainCombustionEngineSpeed { timestamp value }",
	"powertrainCombustionEngineECT { timestamp value }",
	"exteriorAirTemperature { timestamp value }",
	"lowVoltageBatteryCurrentVoltage { timestamp value }",
	"isIgnitionOn { timestamp value }",
}

// latestSQL is the query the signalsLatest resolver runs (api/graphql/resolver.go).
const latestSQL = `SELECT n.name, l.time, l.val FROM latest l JOIN names n ON n.id = l.name WHERE l.vehicle = ? AND l.time >= ?`

// Query runs a node, loads a fleet's telemetry through signed records, signs the owner in over HTTP and
// measures signalsLatest over HTTP (open loop: each client sends on a fixed schedule and latency runs from
// the scheduled time, so a slow answer delays the next request's clock too), then the same SQL against
// the bare store.
func Query(ctx context.Context, opts QueryOptions) (*QueryReport, error) {
	opts.defaults()
	perVehicle := int(opts.History / opts.Interval)
	if perVehicle < 1 || opts.PerRequest > 1000 {
		return nil, fmt.Errorf("bench: history %s at %s gives no record, or more than 1,000 records per request", opts.History, opts.Interval)
	}
	rep := &QueryReport{Cores: runtime.NumCPU(), Vehicles: opts.Vehicles, History: opts.History, Interval: opts.Interval,
		Fields: len(latestQueryFields), TargetP99: opts.TargetP99}

	// The sequencer's clock starts History (and a margin) in the past, so that the devices are paired
	// before the first record; it then jumps to the present, before any record is sent.
	var behind atomic.Int64
	behind.Store(int64(opts.History + 2*time.Minute))
	clock := func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }
	qn, err := startQueryNode(ctx, clock)
	if err != nil {
		return nil, err
	}
	defer qn.stop()
	c := client.New(qn.url)
	opts.logf("registering and pairing %d vehicles of one owner…", opts.Vehicles)
	owner, _ := crypto.GenerateKey()
	devs, ids, err := ownedFleet(ctx, c, owner, opts.Vehicles, clock)
	if err != nil {
		return nil, err
	}
	first := clock().Add(time.Second).Truncate(time.Second)
	behind.Store(0)

	n := opts.Vehicles * perVehicle
	rep.Records = n
	opts.logf("signing %d records of 10 signals (%s at %s for each vehicle)…", n, opts.History, opts.Interval)
	subs := make([]telemetry.Submission, n)
	var signErr atomic.Value
	parallel(n, func(i int) {
		v, seq := i%opts.Vehicles, i/opts.Vehicles
		at := first.Add(time.Duration(seq) * opts.Interval)
		ev, err := telemetry.NewEvent(crypto.PubkeyToAddress(devs[v].PublicKey), ids[v], strconv.Itoa(seq), at, tenSignals(at, seq))
		if err == nil {
			subs[i], err = telemetry.Sign(ev, devs[v])
		}
		if err != nil {
			signErr.Store(err)
		}
	})
	if err, ok := signErr.Load().(error); ok {
		return nil, err
	}
	var bodies [][]byte
	for i := 0; i < n; i += opts.PerRequest {
		b, err := json.Marshal(subs[i:min(i+opts.PerRequest, n)])
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, postRequest("/v1/events", b))
	}
	subs = nil
	opts.logf("ingesting them through POST /v1/events…")
	addr := strings.TrimPrefix(qn.url, "http://")
	_, dur, err := sendAll(ctx, addr, bodies, 16, func(body []byte) error {
		if strings.Count(string(body), `"status":"accepted"`) != strings.Count(string(body), `"status":`) {
			return fmt.Errorf("a record was not accepted: %.300s", body)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	bodies = nil
	rep.IngestPerSec = float64(n) / dur.Seconds()
	opts.logf("indexing…")
	t0 := time.Now()
	if _, err := qn.n.Telemetry.Index(ctx); err != nil {
		return nil, err
	}
	rep.IndexDuration = time.Since(t0)
	db := qn.n.Telemetry.SignalsDB()
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM latest`).Scan(&rep.LatestRows); err != nil {
		return nil, err
	}

	opts.logf("signing the owner in over HTTP…")
	token, err := siweSignIn(ctx, qn.url, owner)
	if err != nil {
		return nil, err
	}
	reqs := make([][]byte, len(ids))
	for i, id := range ids {
		q := fmt.Sprintf("{ signalsLatest(tokenId: %d) { lastSeen %s } }", id, strings.Join(latestQueryFields, " "))
		body, _ := json.Marshal(map[string]string{"query": q})
		reqs[i] = graphQLRequest(token, body)
	}
	if err := checkLatestAnswers(addr, reqs); err != nil {
		return nil, err
	}

	for _, clients := range opts.Clients {
		opts.logf("signalsLatest: %d clients × %.0f/s for %s…", clients, opts.PerClientRate, opts.StepDuration)
		lv, err := openLoop(ctx, addr, reqs, clients, float64(clients)*opts.PerClientRate, opts.StepDuration)
		if err != nil {
			return nil, err
		}
		rep.Levels = append(rep.Levels, lv)
	}

	run := func(rate float64) (QueryLevel, error) {
		clients := max(1, min(opts.RampClients, int(rate/opts.PerClientRate)))
		opts.logf("signalsLatest: %.0f/s from %d clients for %s…", rate, clients, opts.StepDuration)
		lv, err := openLoop(ctx, addr, reqs, clients, rate, opts.StepDuration)
		if err == nil {
			rep.Ramp = append(rep.Ramp, lv)
			if lv.ok(opts.TargetP99) && lv.Rate > rep.MaxRate {
				rep.MaxRate, rep.MaxRateLevel = lv.Rate, lv
			}
		}
		return lv, err
	}
	lo, hi := 0.0, 0.0
	for rate := opts.RampStart; rate <= opts.MaxRate; rate *= opts.RampFactor {
		lv, err := run(rate)
		if err != nil {
			return nil, err
		}
		if !lv.ok(opts.TargetP99) {
			hi = rate
			break
		}
		lo = rate
	}
	for i := 0; i < opts.RampRefine && hi > 0 && lo > 0; i++ {
		mid := (lo + hi) / 2
		lv, err := run(mid)
		if err != nil {
			return nil, err
		}
		if lv.ok(opts.TargetP99) {
			lo = mid
		} else {
			hi = mid
		}
	}

	opts.logf("the same query on the bare store…")
	if err := measureStore(ctx, qn.n, ids, opts.StoreDuration, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// queryNode is an in-process node with a settable clock.
type queryNode struct {
	url  string
	n    *node.Node
	stop func()
}

func startQueryNode(ctx context.Context, now func() time.Time) (*queryNode, error) {
	dir, err := os.MkdirTemp("", "glovebox-bench-query-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	url := "http://" + ln.Addr().String()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Open(ctx, node.Config{DataDir: dir, Logger: quiet, Now: now, PublicURL: url})
	if err != nil {
		ln.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(runCtx); close(done) }()
	srv := &http.Server{Handler: n.API}
	go srv.Serve(ln)
	return &queryNode{url: url, n: n, stop: func() {
		srv.Close()
		cancel()
		<-done
		n.Close()
		os.RemoveAll(dir)
	}}, nil
}

// ownedFleet registers vehicles owned by owner, each with a paired hardware device, through signed
// batches, with deadlines on the sequencer's clock now.
func ownedFleet(ctx context.Context, c *client.Client, owner *ecdsa.PrivateKey, vehicles int, now func() time.Time) ([]*ecdsa.PrivateKey, []uint64, error) {
	d, err := c.Domain(ctx)
	if err != nil {
		return nil, nil, err
	}
	addr := func(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }
	devs := make([]*ecdsa.PrivateKey, vehicles)
	for i := range devs {
		devs[i], _ = crypto.GenerateKey()
	}
	ids := make([]uint64, vehicles)
	sign := func(tx *ledger.Tx, keys ...*ecdsa.PrivateKey) *ledger.Tx {
		tx.Deadline.SetUint64(uint64(now().Add(time.Hour).Unix()))
		client.Prepare(tx, time.Hour)
		for _, k := range keys {
			d.Sign(tx, k)
		}
		return tx
	}
	step := func(build func(i int) *ledger.Tx, result func(i int, it uint64)) error {
		for start := 0; start < vehicles; start += 1000 {
			end := min(start+1000, vehicles)
			txs := make([]*ledger.Tx, end-start)
			parallel(len(txs), func(j int) { txs[j] = build(start + j) })
			items, err := c.SubmitBatch(ctx, txs)
			if err != nil {
				return err
			}
			for j, it := range items {
				if it.Error != nil {
					return fmt.Errorf("setup refused: %s: %s", it.Error.Code, it.Error.Message)
				}
				if result != nil {
					result(start+j, it.Result.VehicleID)
				}
			}
		}
		return nil
	}
	if err := step(func(i int) *ledger.Tx {
		return sign(&ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: addr(owner), Make: "Bench", Model: "Query", Year: 2024}, owner)
	}, func(i int, id uint64) { ids[i] = id }); err != nil {
		return nil, nil, err
	}
	if err := step(func(i int) *ledger.Tx {
		return sign(&ledger.Tx{Type: ledger.TypeRegisterDevice, Device: addr(devs[i]), Kind: ledger.KindHardware}, devs[i])
	}, nil); err != nil {
		return nil, nil, err
	}
	if err := step(func(i int) *ledger.Tx {
		tx := &ledger.Tx{Type: ledger.TypePairDevice, Device: addr(devs[i])}
		tx.VehicleID.SetUint64(ids[i])
		return sign(tx, owner, devs[i])
	}, nil); err != nil {
		return nil, nil, err
	}
	return devs, ids, nil
}

// siweSignIn signs key in over HTTP: challenge, personal_sign of the exact message, token.
func siweSignIn(ctx context.Context, base string, key *ecdsa.PrivateKey) (string, error) {
	addr := crypto.PubkeyToAddress(key.PublicKey)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/auth/challenge?address="+addr.Hex(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	var ch struct{ Message string }
	err = json.NewDecoder(resp.Body).Decode(&ch)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("sign-in challenge: HTTP %d (%v)", resp.StatusCode, err)
	}
	h := telemetry.PersonalHash([]byte(ch.Message))
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		return "", err
	}
	sig[64] += 27
	form := url.Values{"grant_type": {"urn:glovebox:params:oauth:grant-type:siwe"}, "message": {ch.Message},
		"signature": {"0x" + common.Bytes2Hex(sig)}}
	req, _ = http.NewRequestWithContext(ctx, "POST", base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("sign-in token: HTTP %d (%v)", resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// graphQLRequest builds the bytes of a POST /graphql request with a bearer token.
func graphQLRequest(token string, body []byte) []byte {
	head := fmt.Sprintf("POST /graphql HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		token, len(body))
	return append([]byte(head), body...)
}

// answerError says what is wrong with a signalsLatest answer, or nil.
func answerError(status int, body []byte) error {
	switch {
	case status == http.StatusTooManyRequests:
		return fmt.Errorf("HTTP 429: the node rate-limits the benchmark's caller; run it without rate limits")
	case status != http.StatusOK:
		return fmt.Errorf("HTTP %d: %.300s", status, body)
	case bytes.Contains(body, []byte(`"errors"`)):
		return fmt.Errorf("GraphQL errors: %.300s", body)
	}
	return nil
}

// checkLatestAnswers asks every vehicle once and checks that each of the ten signals is answered.
func checkLatestAnswers(addr string, reqs [][]byte) error {
	conn, err := dialRaw(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, req := range reqs {
		status, body, err := conn.do(req, nil)
		if err != nil {
			return err
		}
		if err := answerError(status, body); err != nil {
			return err
		}
		var out struct {
			Data struct {
				SignalsLatest map[string]any `json:"signalsLatest"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return err
		}
		for _, f := range latestQueryFields {
			name, _, _ := strings.Cut(f, " ")
			if out.Data.SignalsLatest[name] == nil {
				return fmt.Errorf("signalsLatest has no %s: %.300s", name, body)
			}
		}
	}
	return nil
}

// openLoop sends reqs (round robin) from clients connections at rate requests/s in total for d. Each
// client sends on its own fixed schedule, phase-shifted from the others; latency is measured from the
// scheduled time, so when the node falls behind, the queueing shows in the latencies instead of slowing
// the load down. Requests still unsent 5 s after the end are counted as errors.
func openLoop(ctx context.Context, addr string, reqs [][]byte, clients int, rate float64, d time.Duration) (QueryLevel, error) {
	lv := QueryLevel{Clients: clients, Rate: rate}
	period := time.Duration(float64(clients) / rate * float64(time.Second))
	perClient := int(d / period)
	if perClient < 1 {
		perClient = 1
	}
	conns := make([]*rawConn, clients)
	for i := range conns {
		c, err := dialRaw(addr)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return lv, err
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	lat := make([][]time.Duration, clients)
	var errs atomic.Int64
	var limited atomic.Bool
	var last atomic.Int64 // unix nanoseconds of the last answer
	start := time.Now().Add(50 * time.Millisecond)
	hardStop := start.Add(d + 5*time.Second)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := conns[c]
			phase := time.Duration(int64(period) * int64(c) / int64(clients))
			var buf []byte
			lat[c] = make([]time.Duration, 0, perClient)
			for k := 0; k < perClient; k++ {
				sched := start.Add(phase + time.Duration(k)*period)
				now := time.Now()
				if now.After(hardStop) || ctx.Err() != nil {
					errs.Add(int64(perClient - k))
					return
				}
				if wait := sched.Sub(now); wait > 0 {
					time.Sleep(wait)
				}
				status, body, err := conn.do(reqs[(c+k*clients)%len(reqs)], buf)
				done := time.Now()
				if err == nil {
					err = answerError(status, body)
				}
				if err != nil {
					errs.Add(int64(perClient - k))
					if status == http.StatusTooManyRequests {
						limited.Store(true)
					}
					return
				}
				buf = body
				lat[c] = append(lat[c], done.Sub(sched))
				for {
					l := last.Load()
					if done.UnixNano() <= l || last.CompareAndSwap(l, done.UnixNano()) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if limited.Load() {
		return lv, answerError(http.StatusTooManyRequests, nil)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	lv.Sent = len(all) + int(errs.Load())
	lv.Errors = int(errs.Load())
	if len(all) > 0 {
		lv.P50, lv.P99 = percentile(all, 0.5), percentile(all, 0.99)
		// The answers came between start and the last answer; the schedule spans at least d.
		span := max(time.Duration(perClient)*period, time.Unix(0, last.Load()).Sub(start))
		lv.Achieved = float64(len(all)) / span.Seconds()
	}
	return lv, nil
}

// measureStore runs the resolver's SQL against the signals database: latencies on one goroutine, then
// throughput on every core.
func measureStore(ctx context.Context, n *node.Node, ids []uint64, d time.Duration, rep *QueryReport) error {
	db := n.Telemetry.SignalsDB()
	one := func(vehicle uint64) error {
		rows, err := db.QueryContext(ctx, latestSQL, vehicle, int64(0))
		if err != nil {
			return err
		}
		defer rows.Close()
		var count int
		for rows.Next() {
			var name string
			var ms int64
			var raw any
			if err := rows.Scan(&name, &ms, &raw); err != nil {
				return err
			}
			count++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if count == 0 {
			return fmt.Errorf("vehicle %d has no latest values", vehicle)
		}
		return nil
	}
	var lat []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end); {
		s := time.Now()
		if err := one(ids[len(lat)%len(ids)]); err != nil {
			return err
		}
		lat = append(lat, time.Since(s))
	}
	rep.StoreQueries = len(lat)
	rep.StoreP50, rep.StoreP99 = percentile(lat, 0.5), percentile(lat, 0.99)
	var count atomic.Int64
	var failed atomic.Value
	end := time.Now().Add(d / 2)
	t0 := time.Now()
	parallel(runtime.NumCPU(), func(w int) {
		for i := w; time.Now().Before(end); i++ {
			if err := one(ids[i%len(ids)]); err != nil {
				failed.Store(err)
				return
			}
			count.Add(1)
		}
	})
	if err, ok := failed.Load().(error); ok {
		return err
	}
	rep.StorePerSec = float64(count.Load()) / time.Since(t0).Seconds()
	return nil
}

// Print writes the report as a table.
func (r *QueryReport) Print(w io.Writer) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
	fmt.Fprintf(w, "cores: %d; %d vehicles of one owner, %s of telemetry each at one record of 10 signals per %s (%d records, %d latest rows);\n",
		r.Cores, r.Vehicles, r.History, r.Interval, r.Records, r.LatestRows)
	fmt.Fprintf(w, "loaded at %.0f records/s through POST /v1/events, indexed in %s. The history is short of the 30 days the\n",
		r.IngestPerSec, r.IndexDuration.Round(time.Millisecond))
	fmt.Fprintf(w, "target asks for; signalsLatest reads the latest table, one row per vehicle and signal, whose size does not grow\n")
	fmt.Fprintf(w, "with the history (only the database files around it do).\n")
	fmt.Fprintf(w, "signalsLatest asks for %d signals (+ lastSeen) as the vehicles' owner (whose reads are not access-logged),\n", r.Fields)
	fmt.Fprintf(w, "over HTTP/1.1 keep-alive, open loop (latency from the scheduled send time).\n")
	fmt.Fprintf(w, "| clients | scheduled | achieved | p50 | p99 | errors |\n|---|---|---|---|---|---|\n")
	for _, l := range r.Levels {
		fmt.Fprintf(w, "| %d | %.0f/s | %.0f/s | %s | %s | %d |\n", l.Clients, l.Rate, l.Achieved, ms(l.P50), ms(l.P99), l.Errors)
	}
	fmt.Fprintf(w, "search for the highest rate with p99 < %s:\n", r.TargetP99)
	fmt.Fprintf(w, "| clients | scheduled | achieved | p50 | p99 | errors | met |\n|---|---|---|---|---|---|---|\n")
	for _, l := range r.Ramp {
		fmt.Fprintf(w, "| %d | %.0f/s | %.0f/s | %s | %s | %d | %v |\n", l.Clients, l.Rate, l.Achieved, ms(l.P50), ms(l.P99), l.Errors, l.ok(r.TargetP99))
	}
	if r.MaxRate > 0 {
		fmt.Fprintf(w, "highest rate sustained with p99 < %s: %.0f/s (achieved %.0f/s, p50 %s, p99 %s)\n",
			r.TargetP99, r.MaxRate, r.MaxRateLevel.Achieved, ms(r.MaxRateLevel.P50), ms(r.MaxRateLevel.P99))
	} else {
		fmt.Fprintf(w, "no rate tried kept p99 under %s\n", r.TargetP99)
	}
	fmt.Fprintf(w, "the resolver's SQL on the bare store: p50 %s, p99 %s (%d queries, one goroutine); %.0f/s on all cores\n",
		ms(r.StoreP50), ms(r.StoreP99), r.StoreQueries, r.StorePerSec)
}
