package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/bench"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/webhook"
)

// A delivery enqueued before a kill -9 is delivered after the restart, with the same webhook-id.
func TestKill9KeepsPendingWebhookDeliveries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	var mu sync.Mutex
	fail := true
	var ids []string // webhook-ids of signal deliveries, in order of arrival
	arrived := make(chan struct{}, 100)
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
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		failing := fail
		mu.Unlock()
		arrived <- struct{}{}
		if failing {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer rcv.Close()

	dir := t.TempDir()
	flags := []string{"--webhook-allow-http", "--webhook-allow-private"}
	cmd, url := startNode(t, dir, flags...)
	ctx := context.Background()
	c := client.New(url)
	d, err := c.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	submit := func(tx *ledger.Tx, keys ...testnode.Key) *ledger.Result {
		t.Helper()
		client.Prepare(tx, time.Hour)
		for _, k := range keys {
			if err := d.Sign(tx, k.Key); err != nil {
				t.Fatal(err)
			}
		}
		rc, err := c.Submit(ctx, tx)
		if err != nil {
			t.Fatalf("%s: %v", tx.Type, err)
		}
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
	token, err := bench.SignIn(ctx, url, app.Key)
	if err != nil {
		t.Fatal(err)
	}
	hooks := url + "/v1/apps/" + app.Address.Hex() + "/webhooks"
	body, _ := json.Marshal(map[string]any{"url": rcv.URL, "vehicles": []uint64{vehicle},
		"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 120.0"}})
	req, _ := http.NewRequest("POST", hooks, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST webhooks: %v %v", err, resp)
	}
	var hook struct{ ID, Status string }
	json.NewDecoder(resp.Body).Decode(&hook)
	resp.Body.Close()
	for deadline := time.Now().Add(30 * time.Second); hook.Status != string(webhook.StatusActive); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the webhook is %s", hook.Status)
		}
		req, _ := http.NewRequest("GET", hooks+"/"+hook.ID, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&hook)
		resp.Body.Close()
	}
	at := time.Now()
	sub := testnode.Record(t, dev, vehicle, "fast-1", at, telemetry.EventSignal{Name: "speed", Timestamp: at, Value: 130.0})
	if res, err := c.PostEvents(ctx, []telemetry.Submission{sub}); err != nil || res[0].Status != telemetry.StatusAccepted {
		t.Fatalf("record: %v %+v", err, res)
	}
	select {
	case <-arrived: // the first attempt failed: the delivery waits in the outbox for its retry
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery attempt")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	mu.Lock()
	fail = false
	first := ids[0]
	mu.Unlock()

	startNode(t, dir, flags...)
	select {
	case <-arrived:
	case <-time.After(60 * time.Second):
		t.Fatal("the pending delivery was not attempted after the restart")
	}
	mu.Lock()
	defer mu.Unlock()
	if ids[len(ids)-1] != first {
		t.Fatalf("after the restart the delivery came as %s, not %s", ids[len(ids)-1], first)
	}
	if n := len(ids); n < 2 {
		t.Fatalf("%d attempts", n)
	}
}
