package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/bench"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/webhook"
)

// A webhook registered through a process of a cluster that does not sequence is verified and seen by the
// others; a process killed with kill -9 while it delivers leaves the delivery to another, which delivers
// it with the same webhook-id once the killed one's lease ran out.
func TestClusterWebhookSurvivesKillingTheDeliveringProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills real processes")
	}
	ctx := context.Background()
	dsn, pool, ns := pgBackend(t, true)
	data := t.TempDir()

	// The receiver holds the first signal delivery open until the test lets it go (or its sender dies),
	// and accepts every later one.
	type got struct {
		id   string
		port int // the sender's source port
		req  *http.Request
		body []byte
	}
	var mu sync.Mutex
	var signals []got
	arrived := make(chan got, 1000)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev webhook.CloudEvent
		json.Unmarshal(body, &ev)
		if ev.Type == webhook.VerifyType {
			var data struct{ Challenge string }
			json.Unmarshal(ev.Data, &data)
			json.NewEncoder(w).Encode(map[string]string{"challenge": data.Challenge})
			return
		}
		if ev.Type != webhook.TypeSignal {
			return
		}
		_, port, _ := net.SplitHostPort(r.RemoteAddr)
		p, _ := strconv.Atoi(port)
		g := got{id: r.Header.Get("webhook-id"), port: p, req: r, body: body}
		mu.Lock()
		signals = append(signals, g)
		first := len(signals) == 1
		mu.Unlock()
		arrived <- g
		if first {
			<-r.Context().Done() // the sender is killed mid-delivery
			return
		}
	}))
	defer rcv.Close()
	rcvPort := rcv.Listener.Addr().(*net.TCPAddr).Port

	// One public URL for the cluster (behind its load balancer): a token of one process is good at all.
	flags := []string{"--public-url", "http://glovebox.cluster.test", "--webhook-allow-http", "--webhook-allow-private", "--webhook-lease", "3s"}
	p1 := startClusterProcess(t, data, dsn, ns.URL(), "sequencer,api,ingest", flags...)
	waitFor(t, 30*time.Second, "the first process to take the lease", func() bool {
		_, url, _, err := postgres.Leader(ctx, pool)
		return err == nil && url == p1.url
	})
	p2 := startClusterProcess(t, data, dsn, ns.URL(), "sequencer,api,ingest", flags...)
	procs := map[int]*proc{p1.cmd.Process.Pid: p1, p2.cmd.Process.Pid: p2}

	// Everything goes through p2, which forwards transactions to the sequencer p1.
	c1, c2 := client.New(p1.url), client.New(p2.url)
	d, err := c2.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var last int64 // the index of the last transaction
	submit := func(tx *ledger.Tx, keys ...testnode.Key) *ledger.Result {
		t.Helper()
		client.Prepare(tx, time.Hour)
		for _, k := range keys {
			if err := d.Sign(tx, k.Key); err != nil {
				t.Fatal(err)
			}
		}
		rc, err := c2.Submit(ctx, tx)
		if err != nil {
			t.Fatalf("%s: %v", tx.Type, err)
		}
		last = rc.Index
		return rc.Result
	}
	owner, dev, app := testnode.NewKey(t), testnode.NewKey(t), testnode.NewKey(t)
	vehicle := submit(&ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Volvo", Model: "XC40", Year: 2023}, owner).VehicleID
	submit(&ledger.Tx{Type: ledger.TypeRegisterDevice, Device: dev.Address, Kind: "hardware"}, dev)
	pair := &ledger.Tx{Type: ledger.TypePairDevice, Device: dev.Address}
	pair.VehicleID.SetUint64(vehicle)
	submit(pair, owner, dev)
	submit(&ledger.Tx{Type: ledger.TypeRegisterApp, App: app.Address, Owner: owner.Address, Name: "Fleet",
		RedirectURIs: []string{"https://fleet.example/cb"}}, owner, app)
	grant := &ledger.Tx{Type: ledger.TypeGrant, App: app.Address, Permissions: []string{"signals", "stream"}, Purpose: "alerts"}
	grant.VehicleID.SetUint64(vehicle)
	grant.ExpiresAt.SetUint64(uint64(time.Now().Add(24 * time.Hour).Unix()))
	submit(grant, owner)
	for _, c := range []*client.Client{c1, c2} {
		waitFor(t, 30*time.Second, "both processes to follow the grant", func() bool {
			_, err := c.Transaction(ctx, last)
			return err == nil
		})
	}

	token, err := bench.SignIn(ctx, p2.url, app.Key)
	if err != nil {
		t.Fatal(err)
	}
	call := func(base, method, path string, body any) (int, []byte) {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+"/v1/apps/"+app.Address.Hex()+"/webhooks"+path, r)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, b := call(p2.url, "POST", "", map[string]any{"url": rcv.URL, "vehicles": []uint64{vehicle},
		"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 120.0"}})
	if code != http.StatusCreated {
		t.Fatalf("POST webhooks through the standby: %d %s", code, b)
	}
	var hook struct{ ID, Secret, Status string }
	json.Unmarshal(b, &hook)
	// The sequencer's process reads it from the shared store, verified by p2.
	waitFor(t, 30*time.Second, "the webhook to be active, read through the other process", func() bool {
		code, b := call(p1.url, "GET", "/"+hook.ID, nil)
		var h struct{ Status string }
		json.Unmarshal(b, &h)
		if h.Status == string(webhook.StatusVerificationFailed) {
			t.Fatalf("the webhook: %s", b)
		}
		return code == http.StatusOK && h.Status == string(webhook.StatusActive)
	})

	// The sequencer's process hears of the webhook within a second (ClusterWebhookReload): fast values
	// are sent until a delivery arrives.
	var first got
	for i := 0; first.id == ""; i++ {
		if i == 120 {
			t.Fatal("no delivery attempt")
		}
		at := time.Now()
		sub := testnode.Record(t, dev, vehicle, fmt.Sprintf("fast-%d", i), at, telemetry.EventSignal{Name: "speed", Timestamp: at, Value: 130.0})
		if res, err := c1.PostEvents(ctx, []telemetry.Submission{sub}); err != nil || res[0].Status != telemetry.StatusAccepted {
			t.Fatalf("record: %v %+v", err, res)
		}
		select {
		case first = <-arrived:
		case <-time.After(500 * time.Millisecond):
		}
	}
	pid := socketOwner(t, first.port, rcvPort, procs)
	killed := procs[pid]
	killed.cmd.Process.Signal(syscall.SIGKILL)
	killed.cmd.Wait()
	delete(procs, pid)
	var survivor *proc
	for _, p := range procs {
		survivor = p
	}

	var second got
	select {
	case second = <-arrived:
	case <-time.After(90 * time.Second):
		t.Fatal("the delivery of the killed process was not taken over")
	}
	if second.id != first.id {
		t.Fatalf("the delivery came again as %s, not %s", second.id, first.id)
	}
	stock, err := standardwebhooks.NewWebhook(hook.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := stock.Verify(second.body, second.req.Header); err != nil {
		t.Errorf("the stock library refuses the delivery: %v", err)
	}
	// The oldest delivery (the one held open) is delivered, and every later one after it.
	waitFor(t, 30*time.Second, "every delivery to be recorded delivered", func() bool {
		code, b := call(survivor.url, "GET", "/"+hook.ID+"/deliveries", nil)
		var out struct{ Deliveries []webhook.Delivery }
		json.Unmarshal(b, &out)
		if code != http.StatusOK || len(out.Deliveries) == 0 || out.Deliveries[len(out.Deliveries)-1].ID != first.id {
			return false
		}
		for _, d := range out.Deliveries {
			if d.Status != webhook.DeliveryDelivered || d.LastCode != http.StatusOK {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, g := range signals {
		if g.id == first.id {
			n++
		}
	}
	if n != 2 {
		t.Errorf("the receiver got delivery %s %d times, want 2 (the attempt cut short and the one after the take-over)", first.id, n)
	}
}

// socketOwner returns the pid among procs whose TCP socket has local port local and remote port remote
// (the sender of a request the test's receiver holds open), from /proc.
func socketOwner(t *testing.T, local, remote int, procs map[int]*proc) int {
	t.Helper()
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || !strings.HasSuffix(fs[1], fmt.Sprintf(":%04X", local)) || !strings.HasSuffix(fs[2], fmt.Sprintf(":%04X", remote)) {
				continue
			}
			inodes["socket:["+fs[9]+"]"] = true
		}
		fh.Close()
	}
	for pid := range procs {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && inodes[l] {
				return pid
			}
		}
	}
	t.Fatalf("no cluster process holds the connection from port %d (inodes %v)", local, inodes)
	return 0
}
