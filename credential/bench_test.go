package credential_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// monthNode is a node holding 30 days of one car's records at 1 Hz: a record every 30 s carrying 30
// samples each of the odometer, speed and position (2.59 M samples per signal, 86,400 signed records),
// the car driving an hour each morning and evening and parked otherwise, and the VIN once a day.
type monthNode struct {
	n          *testnode.Node
	token      string
	car        uint64
	start, end time.Time
}

func newMonthNode(b *testing.B) *monthNode {
	b.Helper()
	ctx := context.Background()
	var behind atomic.Int64
	behind.Store(int64(31 * 24 * time.Hour))
	clock := func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }
	n := testnode.Start(b, testnode.Options{Now: clock})
	owner, dev := testnode.NewKey(b), testnode.NewKey(b)
	submit := func(tx *ledger.Tx, keys ...testnode.Key) uint64 {
		tx.Deadline.SetUint64(uint64(clock().Add(time.Hour).Unix())) // the sequencer's clock is a month behind
		rc := n.Submit(b, tx, keys...)
		if rc.Result == nil {
			return 0
		}
		return rc.Result.VehicleID
	}
	car := submit(&ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Volvo", Model: "XC40", Year: 2023}, owner)
	submit(&ledger.Tx{Type: ledger.TypeRegisterDevice, Device: dev.Address, Kind: "hardware"}, dev)
	pair := &ledger.Tx{Type: ledger.TypePairDevice, Device: dev.Address}
	pair.VehicleID.SetUint64(car)
	submit(pair, owner, dev)
	behind.Store(0)
	m := &monthNode{n: n, car: car, start: time.Now().Add(-30 * 24 * time.Hour).Truncate(24 * time.Hour).Add(24 * time.Hour)}
	m.end = m.start.Add(29 * 24 * time.Hour)
	km, lat, lon := 20000.0, 48.80, 2.30
	var batch []*telemetry.Record
	flush := func() {
		var missing bool
		n.Sequencer.Read(func(st *ledger.State) {
			for _, r := range batch {
				p, ok := st.PairingAt(r.Source, r.VehicleID, r.Time)
				missing = missing || !ok
				r.Pairing, r.Received = p, time.Now().UnixMilli()
			}
		})
		if missing {
			b.Fatal("a record outside the pairing")
		}
		if _, err := n.Telemetry.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for t := m.start; t.Before(m.end); t = t.Add(30 * time.Second) {
		var sigs []telemetry.EventSignal
		for s := range 30 {
			ts := t.Add(time.Duration(s) * time.Second)
			h := ts.Hour()
			speed := 0.0
			if h == 8 || h == 18 { // an hour's drive, 50 km/h: half a circle out in the morning, back in the evening
				speed = 50
				km += 50.0 / 3600
				a := float64(ts.Unix()%3600) / 3600 * math.Pi
				if h == 18 {
					a += math.Pi
				}
				lat += 0.0001 * math.Cos(a)
				lon += 0.0001 * math.Sin(a)
			}
			sigs = append(sigs,
				telemetry.EventSignal{Name: credential.SignalOdometer, Timestamp: ts, Value: math.Round(km*1000) / 1000},
				telemetry.EventSignal{Name: "speed", Timestamp: ts, Value: speed},
				telemetry.EventSignal{Name: credential.SignalLocation, Timestamp: ts, Value: map[string]any{"latitude": lat, "longitude": lon}})
		}
		if t.Hour() == 8 && t.Minute() == 0 && t.Second() == 0 {
			sigs = append(sigs, telemetry.EventSignal{Name: credential.SignalVIN, Timestamp: t, Value: "YV1XZ16H9P2000001"})
		}
		sub := testnode.Record(b, dev, car, fmt.Sprint(t.Unix()), t, sigs...)
		r, err := telemetry.DefaultCatalog.Parse(&sub, time.Now().Add(time.Minute).UnixMilli())
		if err != nil {
			b.Fatal(err)
		}
		copy(r.Signature[:], sub.Signature)
		batch = append(batch, r)
		if len(batch) == 1000 {
			flush()
		}
	}
	flush()
	for {
		k, err := n.Telemetry.Index(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if k == 0 {
			break
		}
	}
	m.token = n.SignIn(b, owner)
	return m
}

func (m *monthNode) issue(b *testing.B, body string) string {
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/vehicles/%d/credentials", m.n.URL, m.car), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+m.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body2, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b.Fatalf("%s: %d %s", body, resp.StatusCode, body2)
	}
	return string(body2)
}

// BenchmarkCredentials issues each type over HTTP from a month of 1 Hz data (target p99 < 50 ms) and
// verifies it offline with its evidence (target < 10 ms), reporting p50 and p99 of each.
//
//	go test ./credential -run XXX -bench Credentials -benchtime 100x
func BenchmarkCredentials(b *testing.B) {
	m := newMonthNode(b)
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	bodies := map[string]func(i int) string{
		"odometer": func(i int) string {
			return `{"type":"odometer","at":"` + rfc(m.start.Add(time.Duration(i%29)*24*time.Hour+time.Duration(i%24)*time.Hour)) + `"}`
		},
		"mileage":  func(int) string { return `{"type":"mileage","from":"` + rfc(m.start) + `","to":"` + rfc(m.end) + `"}` },
		"movement": func(int) string { return `{"type":"movement","from":"` + rfc(m.start) + `","to":"` + rfc(m.end) + `"}` },
		"vin":      func(int) string { return `{"type":"vin"}` },
	}
	for _, typ := range credential.Types {
		var issued string
		b.Run("issue/"+typ, func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				issued = m.issue(b, bodies[typ](i))
				ds = append(ds, time.Since(t0))
			}
			report(b, ds)
			b.ReportMetric(float64(len(issued)), "bytes")
		})
		b.Run("verify/"+typ, func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				if _, err := credential.Verify(issued, m.n.LogKey, time.Now()); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t0))
			}
			report(b, ds)
		})
	}
}

func report(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
