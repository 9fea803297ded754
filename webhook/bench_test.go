package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/bench"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/webhook"
)

// BenchmarkSignalTriggerToDelivery measures, on a real node served over loopback, the time from a record's
// acknowledgement to the arrival of the webhook it fires at a local receiver: 100 vehicles, one signal
// webhook each (condition true on every value), each vehicle sending one record per second.
func BenchmarkSignalTriggerToDelivery(b *testing.B) {
	const vehicles = 100
	n := testnode.Start(b, testnode.Options{Webhooks: webhook.Options{Policy: webhook.Policy{AllowHTTP: true, AllowPrivate: true}, Heartbeat: -1}})
	var mu sync.Mutex
	arrived := map[string]time.Time{} // record id → arrival
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
		var data webhook.SignalData
		json.Unmarshal(ev.Data, &data)
		mu.Lock()
		arrived[fmt.Sprintf("%d/%s", data.VehicleID, data.Signal.Timestamp.Format(time.RFC3339Nano))] = time.Now()
		mu.Unlock()
	}))
	defer rcv.Close()
	owner := testnode.NewKey(b)
	app := n.App(b, owner)
	token, err := bench.SignIn(context.Background(), n.URL, app.Key)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]uint64, vehicles)
	devs := make([]testnode.Key, vehicles)
	for i := range ids {
		ids[i] = n.Vehicle(b, owner)
		devs[i] = n.PairedDevice(b, owner, ids[i], "hardware")
		n.Grant(b, owner, ids[i], app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals, ledger.PermStream)
		req, _ := http.NewRequest("POST", n.URL+"/v1/apps/"+app.Address.Hex()+"/webhooks", jsonBody(map[string]any{"url": rcv.URL,
			"vehicles": []uint64{ids[i]}, "trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 0.0"}}))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			b.Fatalf("POST webhooks: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	time.Sleep(time.Second) // verifications
	acked := map[string]time.Time{}
	var amu sync.Mutex
	b.ResetTimer()
	start := time.Now().Truncate(time.Millisecond)
	for s := 0; s < b.N; s++ {
		at := start.Add(time.Duration(s) * time.Second)
		for time.Now().Before(at) {
			time.Sleep(time.Until(at))
		}
		var wg sync.WaitGroup
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sub := testnode.Record(b, devs[i], ids[i], fmt.Sprintf("r%d", s), at, telemetry.EventSignal{Name: "speed", Timestamp: at, Value: 50.0 + float64(s)})
				res, err := n.Client.PostEvents(context.Background(), []telemetry.Submission{sub})
				if err != nil || res[0].Status != telemetry.StatusAccepted {
					b.Errorf("record: %v %+v", err, res)
					return
				}
				amu.Lock()
				acked[fmt.Sprintf("%d/%s", ids[i], at.UTC().Format(time.RFC3339Nano))] = time.Now()
				amu.Unlock()
			}()
		}
		wg.Wait()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := len(arrived)
		mu.Unlock()
		if got >= len(acked) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	for k, a := range acked {
		if r, ok := arrived[k]; ok {
			lat = append(lat, max(r.Sub(a), 0))
		}
	}
	if len(lat) < len(acked) {
		b.Fatalf("%d of %d deliveries arrived", len(lat), len(acked))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(lat)), "deliveries")
}

func jsonBody(v any) io.Reader {
	r, w := io.Pipe()
	go func() { json.NewEncoder(w).Encode(v); w.Close() }()
	return r
}
