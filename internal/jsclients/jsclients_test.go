package jsclients_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/webhook"
)

// install copies package.json, its lock and the scripts to a directory in the user's cache named after
// the lock, runs npm ci there once, and returns the directory.
func install(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	lock, err := os.ReadFile("package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256(lock)
	dir := filepath.Join(cache, "glovebox", "jsclients-"+hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"package.json", "package-lock.json", "subscribe.mjs", "receiver.mjs"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	return dir
}

// proc is a running Node script whose standard output is one JSON object per line.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan map[string]any
}

func run(t *testing.T, dir, script string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdin: stdin, lines: make(chan map[string]any, 100)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("%s printed %q", script, sc.Text())
				continue
			}
			p.lines <- m
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return p
}

// next returns the script's next line.
func (p *proc) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m, ok := <-p.lines:
		if !ok {
			t.Fatal("the script ended")
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("the script printed nothing for 30 s")
	}
	return nil
}

// fixture is a node with a car, its paired device, and an app granted perms, all signed in.
type fixture struct {
	n            *testnode.Node
	owner, dev   testnode.Key
	app          testnode.Key
	vehicle      uint64
	token, owned string
	seq          int
}

func setup(t *testing.T, perms ...string) *fixture {
	t.Helper()
	n := testnode.Start(t, testnode.Options{Webhooks: webhook.Options{Policy: webhook.Policy{AllowHTTP: true, AllowPrivate: true},
		Tick: 20 * time.Millisecond, Heartbeat: -1}})
	f := &fixture{n: n, owner: testnode.NewKey(t)}
	f.vehicle = n.Vehicle(t, f.owner)
	f.dev = n.PairedDevice(t, f.owner, f.vehicle, "hardware")
	f.app = n.App(t, f.owner)
	n.Grant(t, f.owner, f.vehicle, f.app.Address, time.Now().Add(time.Hour).Unix(), perms...)
	f.token, f.owned = n.SignIn(t, f.app), n.SignIn(t, f.owner)
	return f
}

func (f *fixture) send(t *testing.T, sub telemetry.Submission) {
	t.Helper()
	res, err := f.n.Client.PostEvents(context.Background(), []telemetry.Submission{sub})
	if err != nil || res[0].Status != telemetry.StatusAccepted {
		t.Fatalf("record: %v %+v", err, res)
	}
}

func (f *fixture) speed(t *testing.T, at time.Time, kph float64) {
	t.Helper()
	f.seq++
	f.send(t, testnode.Record(t, f.dev, f.vehicle, fmt.Sprintf("rec-%d", f.seq), at, telemetry.EventSignal{Name: "speed", Timestamp: at, Value: kph}))
}

// subscribed waits until the node holds n subscriptions.
func (f *fixture) subscribed(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for f.n.Live.Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the node holds %d subscriptions, want %d", f.n.Live.Subscribers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") + "/graphql" }

func TestTheStockGraphQLWSClientReceivesSignalsLatestUntilTheGrantIsRevoked(t *testing.T) {
	dir := install(t)
	f := setup(t, ledger.PermSignals, ledger.PermStream)
	q := fmt.Sprintf("subscription { signalsLatest(tokenId: %d) { speed { value timestamp } lastSeen } }", f.vehicle)
	p := run(t, dir, "subscribe.mjs", wsURL(f.n.URL), f.token, q)
	if m := p.next(t); m["connected"] != true {
		t.Fatalf("first line %v", m)
	}
	f.subscribed(t, 1)
	start := time.Now().Truncate(time.Millisecond)
	for i, kph := range []float64{50, 64.5} {
		at := start.Add(time.Duration(i) * time.Second)
		f.speed(t, at, kph)
		m := p.next(t)
		var got struct {
			Next struct {
				Data struct {
					SignalsLatest struct {
						Speed struct {
							Value     float64
							Timestamp time.Time
						}
						LastSeen time.Time
					}
				}
				Errors []any
			}
		}
		b, _ := json.Marshal(m)
		json.Unmarshal(b, &got)
		s := got.Next.Data.SignalsLatest
		if s.Speed.Value != kph || !s.Speed.Timestamp.Equal(at) || !s.LastSeen.Equal(at) || got.Next.Errors != nil {
			t.Fatalf("push %d: %s, want speed %v at %s", i, b, kph, at)
		}
	}
	// The owner revokes: the subscription ends with FORBIDDEN at once, without another record.
	tx := &ledger.Tx{Type: ledger.TypeRevoke, App: f.app.Address}
	tx.VehicleID.SetUint64(f.vehicle)
	f.n.Submit(t, tx, f.owner)
	m := p.next(t)
	b, _ := json.Marshal(m)
	var end struct {
		Next struct {
			Data   any
			Errors []struct{ Extensions map[string]any }
		}
	}
	json.Unmarshal(b, &end)
	if len(end.Next.Errors) != 1 || end.Next.Errors[0].Extensions["code"] != "FORBIDDEN" || end.Next.Data != nil {
		t.Fatalf("after the revoke: %s, want a FORBIDDEN error", b)
	}
	if m := p.next(t); m["complete"] != true {
		t.Fatalf("after the error: %v, want complete", m)
	}
	f.subscribed(t, 0)
}

func TestTheStockGraphQLWSClientReceivesDrivingEventsAsTheOwner(t *testing.T) {
	dir := install(t)
	f := setup(t, ledger.PermSignals)
	q := fmt.Sprintf("subscription { events(tokenId: %d) { name source timestamp durationNs metadata } }", f.vehicle)
	p := run(t, dir, "subscribe.mjs", wsURL(f.n.URL), f.owned, q)
	if m := p.next(t); m["connected"] != true {
		t.Fatalf("first line %v", m)
	}
	f.subscribed(t, 1)
	start := time.Now().Truncate(time.Millisecond)
	// 100 → 80 km/h in a second is harsh braking; the next steady value ends the event.
	for i, kph := range []float64{100, 80, 80} {
		f.speed(t, start.Add(time.Duration(i)*time.Second), kph)
	}
	// A collision the device signs itself.
	ev, err := telemetry.NewEventsRecord(f.dev.Address, f.vehicle, "ev-1", start.Add(5*time.Second),
		[]telemetry.EventItem{{Name: "safety.collision", Timestamp: start.Add(5 * time.Second), Duration: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := telemetry.Sign(ev, f.dev.Key)
	if err != nil {
		t.Fatal(err)
	}
	f.send(t, sub)
	want := []struct {
		name, source string
		at           time.Time
		durationNs   float64
	}{
		{"behavior.harshBraking", telemetry.DerivedSource, start, 1e9},
		{"safety.collision", f.dev.Address.Hex(), start.Add(5 * time.Second), 1e9},
	}
	for i, w := range want {
		m := p.next(t)
		b, _ := json.Marshal(m)
		var got struct {
			Next struct {
				Data struct {
					Events struct {
						Name, Source string
						Timestamp    time.Time
						DurationNs   float64
					}
				}
			}
		}
		json.Unmarshal(b, &got)
		e := got.Next.Data.Events
		if e.Name != w.name || e.Source != w.source || !e.Timestamp.Equal(w.at) || e.DurationNs != w.durationNs {
			t.Fatalf("event %d: %s, want %+v", i, b, w)
		}
	}
}

func TestASubscriptionWithoutStreamOrWithABadTokenIsRefused(t *testing.T) {
	dir := install(t)
	f := setup(t, ledger.PermSignals) // no stream
	q := fmt.Sprintf("subscription { signalsLatest(tokenId: %d) { speed { value } } }", f.vehicle)
	p := run(t, dir, "subscribe.mjs", wsURL(f.n.URL), f.token, q)
	p.next(t) // connected
	b, _ := json.Marshal(p.next(t))
	if !bytes.Contains(b, []byte(`"code":"FORBIDDEN"`)) || !bytes.Contains(b, []byte(`"permission":"stream"`)) {
		t.Fatalf("without stream: %s", b)
	}
	// A token that does not verify closes the socket with 4403 Forbidden.
	p = run(t, dir, "subscribe.mjs", wsURL(f.n.URL), f.token+"x", q)
	for {
		m := p.next(t)
		if m["connected"] == true {
			t.Fatal("connected with a forged token")
		}
		if e, ok := m["error"].(map[string]any); ok {
			if e["closeCode"] != float64(4403) {
				t.Fatalf("with a forged token: %v, want close code 4403", m)
			}
			break
		}
	}
}

func TestAStockStandardWebhooksReceiverVerifiesEveryDelivery(t *testing.T) {
	dir := install(t)
	f := setup(t, ledger.PermSignals, ledger.PermStream)
	rcv := run(t, dir, "receiver.mjs")
	port := rcv.next(t)["port"]
	body, _ := json.Marshal(map[string]any{"url": fmt.Sprintf("http://127.0.0.1:%v/hook", port), "vehicles": []uint64{f.vehicle},
		"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 100.0 && previousValue <= 100.0"}})
	hooks := f.n.URL + "/v1/apps/" + f.app.Address.Hex() + "/webhooks"
	req, _ := http.NewRequest("POST", hooks, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID, Secret string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST webhooks: %d", resp.StatusCode)
	}
	fmt.Fprintln(rcv.stdin, created.Secret)
	expect := func(typ string) map[string]any {
		t.Helper()
		m := rcv.next(t)
		if m["verified"] != true || m["type"] != typ {
			t.Fatalf("the stock library says %v, want a verified %s", m, typ)
		}
		return m
	}
	expect(webhook.VerifyType)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("GET", hooks+"/"+created.ID, nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var w struct{ Status string }
		json.NewDecoder(resp.Body).Decode(&w)
		resp.Body.Close()
		if w.Status == string(webhook.StatusActive) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook is %s", w.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now().Truncate(time.Millisecond)
	for i, kph := range []float64{90, 120} {
		f.speed(t, start.Add(time.Duration(i)*time.Second), kph)
	}
	m := expect(webhook.TypeSignal)
	ev := m["event"].(map[string]any)
	data := ev["data"].(map[string]any)
	if ev["id"] != m["id"] || ev["subject"] != fmt.Sprint(f.vehicle) || data["previousValue"] != float64(90) ||
		data["signal"].(map[string]any)["value"] != float64(120) {
		t.Fatalf("the delivery is %v", m)
	}
	req, _ = http.NewRequest("POST", hooks+"/"+created.ID+"/test", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST test: %v %v", err, resp)
	}
	expect(webhook.TypeTest)
}
