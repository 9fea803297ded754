package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/internal/bench"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/webhook"
)

// request is one request a receiver got.
type request struct {
	header http.Header
	body   []byte
	event  webhook.CloudEvent
	at     time.Time
}

// receiver is an app's webhook endpoint: it answers verification challenges, answers everything else as
// respond says (200 when nil), and keeps every request to be checked with a stock Standard Webhooks
// library once the test knows the secret.
type receiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	got     []request
	respond func(ev webhook.CloudEvent, attempt int) (int, http.Header)
	arrived chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{arrived: make(chan struct{}, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev webhook.CloudEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("a delivery is not a CloudEvent: %v: %s", err, body)
		}
		r.mu.Lock()
		r.got = append(r.got, request{req.Header.Clone(), body, ev, time.Now()})
		attempt := 0
		for _, g := range r.got {
			if g.header.Get("webhook-id") == req.Header.Get("webhook-id") {
				attempt++
			}
		}
		respond := r.respond
		r.mu.Unlock()
		r.arrived <- struct{}{}
		if ev.Type == webhook.VerifyType {
			var data struct{ Challenge string }
			json.Unmarshal(ev.Data, &data)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"challenge": data.Challenge})
			return
		}
		code := http.StatusOK
		if respond != nil {
			var h http.Header
			code, h = respond(ev, attempt)
			for k, v := range h {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setRespond(f func(ev webhook.CloudEvent, attempt int) (int, http.Header)) {
	r.mu.Lock()
	r.respond = f
	r.mu.Unlock()
}

// requests returns the requests of type typ received so far.
func (r *receiver) requests(typ string) []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []request
	for _, g := range r.got {
		if g.event.Type == typ {
			out = append(out, g)
		}
	}
	return out
}

// waitFor waits until the receiver holds n requests of type typ.
func (r *receiver) waitFor(t *testing.T, typ string, n int) []request {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if got := r.requests(typ); len(got) >= n {
			return got
		}
		select {
		case <-r.arrived:
		case <-deadline:
			t.Fatalf("got %d requests of type %s, want %d", len(r.requests(typ)), typ, n)
		}
	}
}

// checkSignatures verifies every request the receiver got with the stock library (v1, the webhook's
// secret) and with the node's published Ed25519 key (v1a).
func (r *receiver) checkSignatures(t *testing.T, secret, nodeURL string, ignoreTime bool) {
	t.Helper()
	stock, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var keys api.WebhookKeys
	getJSON(t, nodeURL+api.WebhookKeysPath, "", &keys)
	if len(keys.Keys) != 1 || keys.Keys[0].Algorithm != "ed25519" {
		t.Fatalf("the node publishes %+v", keys)
	}
	pub, err := webhook.ParsePublicKey(keys.Keys[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.got {
		verify := stock.Verify
		if ignoreTime {
			verify = stock.VerifyIgnoringTimestamp
		}
		if err := verify(g.body, g.header); err != nil {
			t.Errorf("the stock library refused delivery %s: %v", g.header.Get("webhook-id"), err)
		}
		at := time.Now()
		if ignoreTime {
			var ts int64
			fmt.Sscan(g.header.Get("webhook-timestamp"), &ts)
			at = time.Unix(ts, 0)
		}
		if err := webhook.Verify(g.header, g.body, nil, pub, at); err != nil {
			t.Errorf("the v1a signature of %s does not verify under the published key: %v", g.header.Get("webhook-id"), err)
		}
		if g.header.Get("webhook-id") != g.event.ID {
			t.Errorf("webhook-id %s differs from the CloudEvent id %s", g.header.Get("webhook-id"), g.event.ID)
		}
	}
}

func do(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, url, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// waitAccess reads the owner's access log until done holds or five seconds pass, and returns the last
// entries read and whether done held. The node records accesses in the background, so an entry may land
// a moment after the access it records was acknowledged.
func waitAccess(t *testing.T, f *fixture, done func([]accesslog.Entry) bool) ([]accesslog.Entry, bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var page api.AccessPage
		getJSON(t, fmt.Sprintf("%s/v1/vehicles/%d/access", f.n.URL, f.vehicle), f.owned, &page)
		if done(page.Entries) {
			return page.Entries, true
		}
		if time.Now().After(deadline) {
			return page.Entries, false
		}
	}
}

func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	code, body := do(t, "GET", url, token, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// fixture is a node with a car, its device, and an app granted signals and stream, signed in.
type fixture struct {
	n            *testnode.Node
	owner, dev   testnode.Key
	appKey       testnode.Key
	vehicle      uint64
	token, owned string // the app's and the owner's bearer tokens
	hooks        string // the app's webhooks URL
	seq          int
}

func setup(t *testing.T, opts testnode.Options) *fixture {
	t.Helper()
	opts.Webhooks.Policy = webhook.Policy{AllowHTTP: true, AllowPrivate: true}
	if opts.Webhooks.RetryBase == 0 {
		opts.Webhooks.RetryBase = 50 * time.Millisecond
	}
	if opts.Webhooks.Tick == 0 {
		opts.Webhooks.Tick = 20 * time.Millisecond
	}
	if opts.Webhooks.Heartbeat == 0 {
		opts.Webhooks.Heartbeat = -1
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	n := testnode.Start(t, opts)
	f := &fixture{n: n, owner: testnode.NewKey(t)}
	f.vehicle = n.Vehicle(t, f.owner)
	f.dev = n.PairedDevice(t, f.owner, f.vehicle, "hardware")
	f.appKey = n.App(t, f.owner)
	n.Grant(t, f.owner, f.vehicle, f.appKey.Address, now().Add(24*time.Hour).Unix(), ledger.PermSignals, ledger.PermStream)
	var err error
	if f.token, err = bench.SignIn(context.Background(), n.URL, f.appKey.Key); err != nil {
		t.Fatal(err)
	}
	if f.owned, err = bench.SignIn(context.Background(), n.URL, f.owner.Key); err != nil {
		t.Fatal(err)
	}
	f.hooks = n.URL + "/v1/apps/" + f.appKey.Address.Hex() + "/webhooks"
	return f
}

// create registers a webhook and waits until it is active.
func (f *fixture) create(t *testing.T, body map[string]any) api.WebhookView {
	t.Helper()
	code, out := do(t, "POST", f.hooks, f.token, body)
	if code != http.StatusCreated {
		t.Fatalf("POST webhooks: %d %s", code, out)
	}
	var v api.WebhookView
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.Secret, "whsec_") || v.Status != webhook.StatusPending || v.ID == "" {
		t.Fatalf("the creation answer is %s", out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got api.WebhookView
		getJSON(t, f.hooks+"/"+v.ID, f.token, &got)
		if got.Status == webhook.StatusActive {
			break
		}
		if got.Status != webhook.StatusPending || time.Now().After(deadline) {
			t.Fatalf("the webhook is %s (%s), want active", got.Status, got.Reason)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return v
}

// send posts one record of the device with the given signals at time at.
func (f *fixture) send(t *testing.T, at time.Time, signals ...telemetry.EventSignal) {
	t.Helper()
	f.seq++
	res, err := f.n.Client.PostEvents(context.Background(), []telemetry.Submission{
		testnode.Record(t, f.dev, f.vehicle, fmt.Sprintf("rec-%d", f.seq), at, signals...)})
	if err != nil || res[0].Status != telemetry.StatusAccepted {
		t.Fatalf("record %d: %v %+v", f.seq, err, res)
	}
}

func speed(at time.Time, v float64) telemetry.EventSignal {
	return telemetry.EventSignal{Name: "speed", Timestamp: at, Value: v}
}

func (f *fixture) deliveries(t *testing.T, id string) []webhook.Delivery {
	t.Helper()
	var page struct{ Deliveries []webhook.Delivery }
	getJSON(t, f.hooks+"/"+id+"/deliveries", f.token, &page)
	return page.Deliveries
}

func TestASignalTriggerDeliversSignedCloudEventsWhenItsConditionHolds(t *testing.T) {
	// The node's clock jumps ahead once the device is paired, so that the values (6 s from the pairing
	// on) are not ahead of it and are answered at once.
	var ahead atomic.Int64
	f := setup(t, testnode.Options{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	ahead.Store(int64(10 * time.Second))
	rcv := newReceiver(t)
	hook := f.create(t, map[string]any{"url": rcv.srv.URL + "/hooks", "description": "speeding", "vehicles": []uint64{f.vehicle},
		"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 120.0 && previousValue <= 120.0"}})
	start := time.Now().Truncate(time.Second).Add(time.Second)
	for i, v := range []float64{100, 130, 140, 110, 125, 119} {
		f.send(t, start.Add(time.Duration(i)*time.Second), speed(start.Add(time.Duration(i)*time.Second), v))
	}
	got := rcv.waitFor(t, webhook.TypeSignal, 2)
	time.Sleep(100 * time.Millisecond) // nothing more may come
	got = rcv.requests(webhook.TypeSignal)
	if len(got) != 2 {
		t.Fatalf("got %d signal events, want 2", len(got))
	}
	for i, want := range []struct{ value, prev float64 }{{130, 100}, {125, 110}} {
		var data webhook.SignalData
		if err := json.Unmarshal(got[i].event.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.Signal.Name != "speed" || data.Signal.Value != want.value || data.PreviousValue != want.prev || data.VehicleID != f.vehicle ||
			data.WebhookID != hook.ID || data.Signal.Unit != "km/h" {
			t.Errorf("event %d: %+v, want speed %v after %v", i, data, want.value, want.prev)
		}
		ev := got[i].event
		if ev.Source != f.n.URL || ev.Subject != fmt.Sprint(f.vehicle) || ev.SpecVersion != "1.0" || ev.Type != webhook.TypeSignal {
			t.Errorf("event %d envelope: %+v", i, ev)
		}
	}
	rcv.checkSignatures(t, hook.Secret, f.n.URL, false)
	// The verification challenge came first, and the deliveries are listed as delivered.
	if v := rcv.requests(webhook.VerifyType); len(v) != 1 {
		t.Fatalf("%d verification challenges", len(v))
	}
	ds := f.deliveries(t, hook.ID)
	if len(ds) != 2 || ds[0].Status != webhook.DeliveryDelivered || ds[0].Attempts != 1 || ds[0].LastCode != 200 {
		t.Fatalf("deliveries: %+v", ds)
	}
	// Every delivery is in the owner's access log.
	n := 0
	entries, _ := waitAccess(t, f, func(entries []accesslog.Entry) bool {
		n = 0
		for _, e := range entries {
			if strings.HasPrefix(e.Query, "webhook "+webhook.TypeSignal) && e.Caller == f.appKey.Address && e.Outcome == "ok" {
				n++
			}
		}
		return n >= 2
	})
	if n != 2 {
		t.Fatalf("the owner's access log shows %d webhook deliveries, want 2: %+v", n, entries)
	}
}

func TestCooldownHoldsBackRepeatedFirings(t *testing.T) {
	// The node's clock jumps 30 s ahead once the device is paired, so that the values, 28 s of them
	// from the pairing on, are not ahead of it (a record dated ahead is held until its time).
	var ahead atomic.Int64
	f := setup(t, testnode.Options{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	ahead.Store(int64(30 * time.Second))
	rcv := newReceiver(t)
	f.create(t, map[string]any{"url": rcv.srv.URL, "vehicles": "all-granted",
		"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 50.0", "cooldownSeconds": 10}})
	start := time.Now().Truncate(time.Second).Add(time.Second)
	for i := range 15 {
		at := start.Add(time.Duration(i) * 2 * time.Second)
		f.send(t, at, speed(at, 60))
	}
	// Values every 2 s for 28 s with a 10 s cooldown fire at 0, 10 and 20 s.
	rcv.waitFor(t, webhook.TypeSignal, 3)
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.requests(webhook.TypeSignal)); n != 3 {
		t.Fatalf("%d firings, want 3", n)
	}
}

func TestFailedDeliveriesAreRetriedWithTheSameIDAndRetryAfterIsHonoured(t *testing.T) {
	f := setup(t, testnode.Options{})
	rcv := newReceiver(t)
	rcv.setRespond(func(ev webhook.CloudEvent, attempt int) (int, http.Header) {
		switch attempt {
		case 1:
			return http.StatusInternalServerError, nil
		case 2:
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}
		return http.StatusOK, nil
	})
	hook := f.create(t, map[string]any{"url": rcv.srv.URL, "vehicles": []uint64{f.vehicle},
		"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 120.0"}})
	at := time.Now()
	f.send(t, at, speed(at, 130))
	got := rcv.waitFor(t, webhook.TypeSignal, 3)
	if got[0].header.Get("webhook-id") != got[1].header.Get("webhook-id") || got[1].header.Get("webhook-id") != got[2].header.Get("webhook-id") {
		t.Fatalf("the webhook-id changed between attempts")
	}
	if gap := got[2].at.Sub(got[1].at); gap < time.Second {
		t.Fatalf("the attempt after Retry-After: 1 came %v later", gap)
	}
	if !bytes.Equal(got[0].body, got[2].body) {
		t.Fatalf("the body changed between attempts")
	}
	rcv.checkSignatures(t, hook.Secret, f.n.URL, false)
	waitDelivery(t, f, hook.ID, func(d webhook.Delivery) bool { return d.Status == webhook.DeliveryDelivered && d.Attempts == 3 })
}

func waitDelivery(t *testing.T, f *fixture, hook string, ok func(webhook.Delivery) bool) webhook.Delivery {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds := f.deliveries(t, hook)
		if len(ds) > 0 && ok(ds[0]) {
			return ds[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery is %+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitStatus(t *testing.T, f *fixture, hook string, want webhook.Status) api.WebhookView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var v api.WebhookView
		getJSON(t, f.hooks+"/"+hook, f.token, &v)
		if v.Status == want {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook is %s, want %s", v.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestA410DisablesTheWebhook(t *testing.T) {
	f := setup(t, testnode.Options{})
	rcv := newReceiver(t)
	rcv.setRespond(func(webhook.CloudEvent, int) (int, http.Header) { return http.StatusGone, nil })
	hook := f.create(t, map[string]any{"url": rcv.srv.URL, "vehicles": []uint64{f.vehicle},
		"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 120.0"}})
	at := time.Now()
	f.send(t, at, speed(at, 130))
	v := waitStatus(t, f, hook.ID, webhook.StatusDisabled)
	if !strings.Contains(v.Reason, "410") {
		t.Fatalf("disabled because %q", v.Reason)
	}
	d := waitDelivery(t, f, hook.ID, func(d webhook.Delivery) bool { return d.Status == webhook.DeliveryFailed })
	if d.LastCode != http.StatusGone {
		t.Fatalf("%+v", d)
	}
	// A disabled webhook gets nothing more, and no test event.
	f.send(t, at.Add(time.Second), speed(at.Add(time.Second), 100))
	f.send(t, at.Add(2*time.Second), speed(at.Add(2*time.Second), 130))
	if code, body := do(t, "POST", f.hooks+"/"+hook.ID+"/test", f.token, nil); code != http.StatusConflict || !strings.Contains(string(body), api.CodeWebhookNotActive) {
		t.Fatalf("test event to a disabled webhook: %d %s", code, body)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(rcv.requests(webhook.TypeSignal)); n != 1 {
		t.Fatalf("%d deliveries reached a disabled webhook", n)
	}
	// PATCH status active verifies it again and re-enables it.
	rcv.setRespond(nil)
	if code, body := do(t, "PATCH", f.hooks+"/"+hook.ID, f.token, map[string]any{"status": "active"}); code != http.StatusOK {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	waitStatus(t, f, hook.ID, webhook.StatusActive)
	if code, body := do(t, "POST", f.hooks+"/"+hook.ID+"/test", f.token, nil); code != http.StatusAccepted {
		t.Fatalf("test event: %d %s", code, body)
	}
	rcv.waitFor(t, webhook.TypeTest, 1)
}

func TestTheLastFailedRetryDisablesTheWebhook(t *testing.T) {
	f := setup(t, testnode.Options{Webhooks: webhook.Options{RetryWindow: 500 * time.Millisecond}})
	rcv := newReceiver(t)
	rcv.setRespond(func(webhook.CloudEvent, int) (int, http.Header) { return http.StatusServiceUnavailable, nil })
	hook := f.create(t, map[string]any{"url": rcv.srv.URL, "vehicles": []uint64{f.vehicle},
		"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 120.0"}})
	at := time.Now()
	f.send(t, at, speed(at, 130))
	v := waitStatus(t, f, hook.ID, webhook.StatusDisabled)
	if !strings.Contains(v.Reason, "last retry") {
		t.Fatalf("disabled because %q", v.Reason)
	}
	d := waitDelivery(t, f, hook.ID, func(d webhook.Delivery) bool { return d.Status == webhook.DeliveryFailed })
	if d.Attempts < 2 || d.LastCode != http.StatusServiceUnavailable {
		t.Fatalf("%+v", d)
	}
	// A manual retry after the endpoint recovered (and the webhook was re-enabled) delivers it.
	rcv.setRespond(nil)
	do(t, "PATCH", f.hooks+"/"+hook.ID, f.token, map[string]any{"status": "active"})
	waitStatus(t, f, hook.ID, webhook.StatusActive)
	if code, body := do(t, "POST", f.hooks+"/"+hook.ID+"/deliveries/"+d.ID+"/retry", f.token, nil); code != http.StatusAccepted {
		t.Fatalf("retry: %d %s", code, body)
	}
	waitDelivery(t, f, hook.ID, func(d webhook.Delivery) bool { return d.Status == webhook.DeliveryDelivered })
}

func TestARevokeDropsPendingDeliveriesAndStopsFurtherOnes(t *testing.T) {
	f := setup(t, testnode.Options{Webhooks: webhook.Options{RetryBase: time.Hour}})
	rcv := newReceiver(t)
	rcv.setRespond(func(webhook.CloudEvent, int) (int, http.Header) { return http.StatusInternalServerError, nil })
	hook := f.create(t, map[string]any{"url": rcv.srv.URL, "vehicles": []uint64{f.vehicle},
		"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 120.0"}})
	at := time.Now()
	f.send(t, at, speed(at, 130))
	rcv.waitFor(t, webhook.TypeSignal, 1)
	d := waitDelivery(t, f, hook.ID, func(d webhook.Delivery) bool { return d.Attempts == 1 })
	if d.Status != webhook.DeliveryPending {
		t.Fatalf("%+v", d)
	}
	tx := &ledger.Tx{Type: ledger.TypeRevoke, App: f.appKey.Address}
	tx.VehicleID.SetUint64(f.vehicle)
	f.n.Submit(t, tx, f.owner)
	d = waitDelivery(t, f, hook.ID, func(d webhook.Delivery) bool { return d.Status == webhook.DeliveryDropped })
	if !strings.Contains(d.LastError, "revoked") {
		t.Fatalf("dropped because %q", d.LastError)
	}
	// New values fire nothing: the app holds no grant.
	rcv.setRespond(nil)
	f.send(t, at.Add(time.Second), speed(at.Add(time.Second), 100))
	f.send(t, at.Add(2*time.Second), speed(at.Add(2*time.Second), 130))
	time.Sleep(200 * time.Millisecond)
	if n := len(f.deliveries(t, hook.ID)); n != 1 {
		t.Fatalf("%d deliveries after the revoke", n)
	}
	if n := len(rcv.requests(webhook.TypeSignal)); n != 1 {
		t.Fatalf("%d requests reached the endpoint", n)
	}
	if entries, ok := waitAccess(t, f, func(entries []accesslog.Entry) bool {
		for _, e := range entries {
			if strings.Contains(e.Query, d.ID) && e.Outcome == "dropped" {
				return true
			}
		}
		return false
	}); !ok {
		t.Fatalf("the owner's access log does not record the dropped delivery: %+v", entries)
	}
}

func TestGrantTriggersHearOfGrantsRevokesAndTransfers(t *testing.T) {
	f := setup(t, testnode.Options{})
	rcv := newReceiver(t)
	hook := f.create(t, map[string]any{"url": rcv.srv.URL, "vehicles": "all-granted", "trigger": map[string]any{"kind": "grant"}})
	second := f.n.Vehicle(t, f.owner)
	f.n.Grant(t, f.owner, second, f.appKey.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals)
	granted := rcv.waitFor(t, webhook.TypeGranted, 1)
	var data webhook.GrantData
	json.Unmarshal(granted[0].event.Data, &data)
	if data.VehicleID != second || data.App != f.appKey.Address.Hex() || len(data.Permissions) != 1 || data.LogIndex == nil {
		t.Fatalf("granted: %+v", data)
	}
	tx := &ledger.Tx{Type: ledger.TypeRevoke, App: f.appKey.Address}
	tx.VehicleID.SetUint64(second)
	f.n.Submit(t, tx, f.owner)
	rcv.waitFor(t, webhook.TypeRevoked, 1)
	buyer := testnode.NewKey(t)
	tr := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
	tr.VehicleID.SetUint64(f.vehicle)
	f.n.Submit(t, tr, f.owner)
	moved := rcv.waitFor(t, webhook.TypeTransferred, 1)
	json.Unmarshal(moved[0].event.Data, &data)
	if data.VehicleID != f.vehicle {
		t.Fatalf("transferred: %+v", data)
	}
	rcv.checkSignatures(t, hook.Secret, f.n.URL, false)
}

func TestAGrantThatExpiresIsReportedAndEndsDeliveries(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	f := setup(t, testnode.Options{Now: clock.Now})
	rcv := newReceiver(t)
	f.create(t, map[string]any{"url": rcv.srv.URL, "vehicles": "all-granted", "trigger": map[string]any{"kind": "grant"}})
	second := f.n.Vehicle(t, f.owner)
	f.n.Grant(t, f.owner, second, f.appKey.Address, clock.Now().Add(time.Hour).Unix(), ledger.PermSignals)
	rcv.waitFor(t, webhook.TypeGranted, 1)
	clock.Add(2 * time.Hour)
	got := rcv.waitFor(t, webhook.TypeExpired, 1)
	var data webhook.GrantData
	json.Unmarshal(got[0].event.Data, &data)
	if data.VehicleID != second || data.LogIndex != nil {
		t.Fatalf("expired: %+v", data)
	}
	time.Sleep(100 * time.Millisecond) // the fixture's grant of a day has not expired
	if n := len(rcv.requests(webhook.TypeExpired)); n != 1 {
		t.Fatalf("%d expiries", n)
	}
}

func TestConnectivityTriggersCallASilentVehicleOfflineAndBackOnline(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	f := setup(t, testnode.Options{Now: clock.Now})
	rcv := newReceiver(t)
	hook := f.create(t, map[string]any{"url": rcv.srv.URL, "vehicles": []uint64{f.vehicle}, "trigger": map[string]any{"kind": "connectivity", "silenceSeconds": 60}})
	f.send(t, clock.Now(), speed(clock.Now(), 50))
	time.Sleep(100 * time.Millisecond)
	clock.Add(61 * time.Second)
	off := rcv.waitFor(t, webhook.TypeOffline, 1)
	var data webhook.ConnectivityData
	json.Unmarshal(off[0].event.Data, &data)
	if data.Status != "offline" || data.VehicleID != f.vehicle || data.SilenceSeconds != 60 {
		t.Fatalf("offline: %+v", data)
	}
	f.send(t, clock.Now(), speed(clock.Now(), 50))
	rcv.waitFor(t, webhook.TypeOnline, 1)
	rcv.checkSignatures(t, hook.Secret, f.n.URL, true)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBadInputGetsAStableCodeNamingTheFieldAndCreatesNothing(t *testing.T) {
	f := setup(t, testnode.Options{})
	f.n.Grant(t, f.owner, f.n.Vehicle(t, f.owner), f.appKey.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals) // no stream
	other := f.n.Vehicle(t, f.owner)
	f.n.Grant(t, f.owner, other, f.appKey.Address, time.Now().Add(time.Hour).Unix(), ledger.PermStream) // no signals
	signal := map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 1.0"}
	good := func(change func(m map[string]any)) map[string]any {
		m := map[string]any{"url": "https://hooks.example.com/x", "vehicles": []uint64{f.vehicle}, "trigger": signal}
		change(m)
		return m
	}
	for _, tc := range []struct {
		name        string
		body        any
		code, field string
	}{
		{"invalid CEL", good(func(m map[string]any) {
			m["trigger"] = map[string]any{"kind": "signal", "signal": "speed", "condition": "value >>> 1"}
		}), webhook.CodeInvalidCondition, "trigger.condition"},
		{"a non-boolean condition", good(func(m map[string]any) {
			m["trigger"] = map[string]any{"kind": "signal", "signal": "speed", "condition": "value * 2.0"}
		}), webhook.CodeInvalidCondition, "trigger.condition"},
		{"an unknown signal", good(func(m map[string]any) {
			m["trigger"] = map[string]any{"kind": "signal", "signal": "flux", "condition": "value > 1.0"}
		}), webhook.CodeUnknownSignal, "trigger.signal"},
		{"a signal the grant does not cover", good(func(m map[string]any) {
			m["vehicles"] = []uint64{other}
		}), webhook.CodeNotGranted, "trigger.signal"},
		{"a location signal with a signals grant", good(func(m map[string]any) {
			m["trigger"] = map[string]any{"kind": "signal", "signal": "currentLocationCoordinates", "condition": "value.latitude > 1.0"}
		}), webhook.CodeNotGranted, "trigger.signal"},
		{"a trip trigger without insights", good(func(m map[string]any) { m["trigger"] = map[string]any{"kind": "trip"} }),
			webhook.CodeNotGranted, "trigger.kind"},
		{"an event trigger without insights", good(func(m map[string]any) {
			m["trigger"] = map[string]any{"kind": "event", "name": "behavior.harshBraking"}
		}), webhook.CodeNotGranted, "trigger.kind"},
		{"an unknown driving event", good(func(m map[string]any) { m["trigger"] = map[string]any{"kind": "event", "name": "behavior.dozing"} }),
			webhook.CodeInvalidTrigger, "trigger.name"},
		{"a vehicle without stream", good(func(m map[string]any) { m["vehicles"] = []uint64{f.vehicle + 1} }), webhook.CodeNotGranted, "vehicles"},
		{"an unknown vehicle", good(func(m map[string]any) { m["vehicles"] = []uint64{999} }), webhook.CodeNotGranted, "vehicles"},
		{"a plain HTTP URL", good(func(m map[string]any) { m["url"] = "ftp://hooks.example.com/x" }), webhook.CodeInvalidURL, "url"},
		{"a URL over 2 KiB", good(func(m map[string]any) { m["url"] = "https://hooks.example.com/" + strings.Repeat("a", 2048) }), webhook.CodeInvalidURL, "url"},
		{"no URL", good(func(m map[string]any) { delete(m, "url") }), webhook.CodeInvalidURL, "url"},
		{"no trigger", good(func(m map[string]any) { delete(m, "trigger") }), webhook.CodeInvalidTrigger, "trigger"},
		{"an unknown kind", good(func(m map[string]any) { m["trigger"] = map[string]any{"kind": "mood"} }), webhook.CodeInvalidTrigger, "trigger.kind"},
		{"vehicles neither a list nor all-granted", good(func(m map[string]any) { m["vehicles"] = "all" }), webhook.CodeInvalidField, "vehicles"},
		{"duplicate vehicles", good(func(m map[string]any) { m["vehicles"] = []uint64{f.vehicle, f.vehicle} }), webhook.CodeInvalidField, "vehicles"},
		{"an unknown field", good(func(m map[string]any) { m["secret"] = "whsec_x" }), webhook.CodeInvalidField, "secret"},
		{"a wrong type", good(func(m map[string]any) { m["description"] = 5 }), webhook.CodeInvalidField, "description"},
		{"not JSON", "{", webhook.CodeInvalidField, "body"},
	} {
		code, body := do(t, "POST", f.hooks, f.token, tc.body)
		var e struct{ Error api.WebhookErrorDetail }
		json.Unmarshal(body, &e)
		if code != http.StatusBadRequest || e.Error.Code != tc.code || e.Error.Field != tc.field {
			t.Errorf("%s: %d %s, want 400 %s on %s", tc.name, code, body, tc.code, tc.field)
		}
	}
	// Plain HTTP is refused without the operator's flag: a node with the default policy.
	strict := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	app := strict.App(t, owner)
	token, _ := bench.SignIn(context.Background(), strict.URL, app.Key)
	for _, url := range []string{"http://hooks.example.com/x", "https://127.0.0.1/x", "https://[::1]/x", "https://localhost/x"} {
		code, body := do(t, "POST", strict.URL+"/v1/apps/"+app.Address.Hex()+"/webhooks", token,
			map[string]any{"url": url, "vehicles": "all-granted", "trigger": map[string]any{"kind": "grant"}})
		if code != http.StatusBadRequest || !strings.Contains(string(body), webhook.CodeInvalidURL) {
			t.Errorf("%s without the flag: %d %s", url, code, body)
		}
	}
	var list struct{ Webhooks []api.WebhookView }
	getJSON(t, f.hooks, f.token, &list)
	if len(list.Webhooks) != 0 {
		t.Fatalf("bad input created %d webhooks", len(list.Webhooks))
	}
}

func TestOnlyTheAppAndItsOwnerManageItsWebhooks(t *testing.T) {
	f := setup(t, testnode.Options{})
	rcv := newReceiver(t)
	hook := f.create(t, map[string]any{"url": rcv.srv.URL, "vehicles": "all-granted", "trigger": map[string]any{"kind": "grant"}})
	stranger := testnode.NewKey(t)
	st, _ := bench.SignIn(context.Background(), f.n.URL, stranger.Key)
	for _, tc := range []struct{ method, path string }{
		{"GET", ""}, {"POST", ""}, {"GET", "/" + hook.ID}, {"PATCH", "/" + hook.ID}, {"DELETE", "/" + hook.ID},
		{"GET", "/" + hook.ID + "/deliveries"}, {"POST", "/" + hook.ID + "/test"},
	} {
		body := any(nil)
		if tc.method != "GET" && tc.method != "DELETE" {
			body = map[string]any{"description": "x"}
		}
		if code, out := do(t, tc.method, f.hooks+tc.path, st, body); code != http.StatusForbidden {
			t.Errorf("a stranger's %s %s: %d %s", tc.method, tc.path, code, out)
		}
		if code, _ := do(t, tc.method, f.hooks+tc.path, "", body); code != http.StatusUnauthorized {
			t.Errorf("no token %s %s: %d", tc.method, tc.path, code)
		}
	}
	// The app's owner (the fixture's owner registered the app) lists and deletes it.
	var list struct{ Webhooks []api.WebhookView }
	getJSON(t, f.hooks, f.owned, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].Secret != "" {
		t.Fatalf("the owner lists %+v (the secret is shown only at creation)", list.Webhooks)
	}
	if code, out := do(t, "DELETE", f.hooks+"/"+hook.ID, f.owned, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", code, out)
	}
	if code, _ := do(t, "GET", f.hooks+"/"+hook.ID, f.token, nil); code != http.StatusNotFound {
		t.Fatalf("GET after DELETE: %d", code)
	}
}

func TestAnEndpointThatFailsTheChallengeStaysInactive(t *testing.T) {
	f := setup(t, testnode.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"challenge":"wrong"}`))
	}))
	defer srv.Close()
	code, out := do(t, "POST", f.hooks, f.token, map[string]any{"url": srv.URL, "vehicles": "all-granted", "trigger": map[string]any{"kind": "grant"}})
	if code != http.StatusCreated {
		t.Fatalf("%d %s", code, out)
	}
	var v api.WebhookView
	json.Unmarshal(out, &v)
	got := waitStatus(t, f, v.ID, webhook.StatusVerificationFailed)
	if !strings.Contains(got.Reason, "challenge") {
		t.Fatalf("failed because %q", got.Reason)
	}
}

func TestAGrantOfOneSignalIsEnoughForATriggerOnThatSignalAndNoOther(t *testing.T) {
	f := setup(t, testnode.Options{})
	app := testnode.NewKey(t)
	f.n.Submit(t, &ledger.Tx{Type: ledger.TypeRegisterApp, App: app.Address, Owner: f.owner.Address, Name: "Speed Watch",
		RedirectURIs: []string{"https://speed.example/callback"}}, f.owner, app)
	f.n.Grant(t, f.owner, f.vehicle, app.Address, time.Now().Add(time.Hour).Unix(), ledger.SignalPermission("speed"), ledger.PermStream)
	token := f.n.SignIn(t, app)
	hooks := f.n.URL + "/v1/apps/" + app.Address.Hex() + "/webhooks"
	rcv := newReceiver(t)
	body := func(signal string) map[string]any {
		return map[string]any{"url": rcv.srv.URL, "vehicles": []uint64{f.vehicle},
			"trigger": map[string]any{"kind": "signal", "signal": signal, "condition": "value > 100.0"}}
	}
	code, out := do(t, "POST", hooks, token, body("powertrainRange"))
	var e struct{ Error api.WebhookErrorDetail }
	json.Unmarshal(out, &e)
	if code != http.StatusBadRequest || e.Error.Code != webhook.CodeNotGranted || e.Error.Field != "trigger.signal" {
		t.Fatalf("a trigger on a signal outside the grant: %d %s", code, out)
	}
	code, out = do(t, "POST", hooks, token, body("speed"))
	if code != http.StatusCreated {
		t.Fatalf("a trigger on the granted signal: %d %s", code, out)
	}
	var created api.WebhookView
	json.Unmarshal(out, &created)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var got api.WebhookView
		getJSON(t, hooks+"/"+created.ID, token, &got)
		if got.Status == webhook.StatusActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook is %s", got.Status)
		}
	}
	at := time.Now().Add(time.Second).Truncate(time.Millisecond)
	f.send(t, at, speed(at, 130))
	got := rcv.waitFor(t, webhook.TypeSignal, 1)
	var data webhook.SignalData
	json.Unmarshal(got[0].event.Data, &data)
	if data.Signal.Value != 130.0 {
		t.Fatalf("delivered %s", got[0].body)
	}
}

// With one delivery slot, every record fires more deliveries than a slot takes: those handed to the
// dispatcher wait for the slot (or for a claim), and each arrives once.
func TestDeliveriesBeyondTheFreeSlotsWaitAndArriveOnce(t *testing.T) {
	var ahead atomic.Int64
	f := setup(t, testnode.Options{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) },
		Webhooks: webhook.Options{Workers: 1}})
	ahead.Store(int64(10 * time.Second))
	rcv := newReceiver(t)
	rcv.setRespond(func(webhook.CloudEvent, int) (int, http.Header) {
		time.Sleep(20 * time.Millisecond) // the slot stays busy while the next record's deliveries come
		return http.StatusOK, nil
	})
	var hooks []string
	for range 3 {
		hooks = append(hooks, f.create(t, map[string]any{"url": rcv.srv.URL, "vehicles": []uint64{f.vehicle},
			"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 0.0"}}).ID)
	}
	start := time.Now().Truncate(time.Second).Add(time.Second)
	for i := range 4 {
		at := start.Add(time.Duration(i) * time.Second)
		f.send(t, at, speed(at, float64(10+i)))
	}
	sent := time.Now()
	rcv.waitFor(t, webhook.TypeSignal, 12)
	if d := time.Since(sent); d > 10*time.Second { // a delivery left waiting goes back to the outbox after 15 s
		t.Errorf("the deliveries took %s", d)
	}
	time.Sleep(200 * time.Millisecond) // nothing more may come
	ids := map[string]bool{}
	for _, r := range rcv.requests(webhook.TypeSignal) {
		ids[r.header.Get("webhook-id")] = true
	}
	if n := len(rcv.requests(webhook.TypeSignal)); n != 12 || len(ids) != 12 {
		t.Fatalf("%d requests with %d ids, want 12 of each", n, len(ids))
	}
	for _, h := range hooks {
		ds := f.deliveries(t, h)
		for _, d := range ds {
			if d.Status != webhook.DeliveryDelivered || d.Attempts != 1 {
				t.Errorf("webhook %s: delivery %+v", h, d)
			}
		}
		if len(ds) != 4 {
			t.Errorf("webhook %s lists %d deliveries, want 4", h, len(ds))
		}
	}
}
