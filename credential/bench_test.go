package credential_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// monthNode is a node holding a month (30 days) of one car's records at 1 Hz, as the other benchmarks
// build it (internal/bench's loadHistory): a record every 30 s of 30 samples of 10 signals (2.59 M
// samples per signal, 86,400 signed records of about 27 KB), the car driving an hour each morning and
// evening and parked otherwise, and the VIN once a day; indexed and rolled up.
//
// With GLOVEBOX_BENCH_CACHE set to a directory, the loaded node is kept there and later runs reopen it
// instead of loading the month again (several minutes on two cores).
type monthNode struct {
	n          *testnode.Node
	token      string
	car        uint64
	start, end time.Time
}

// monthMeta is what a cached month needs besides the node's directory.
type monthMeta struct {
	Owner      string // hex private key
	Car        uint64
	Start, End time.Time
}

func newMonthNode(b *testing.B) *monthNode {
	b.Helper()
	cache := os.Getenv("GLOVEBOX_BENCH_CACHE")
	if cache != "" {
		if raw, err := os.ReadFile(filepath.Join(cache, "month.json")); err == nil {
			var meta monthMeta
			if err := json.Unmarshal(raw, &meta); err != nil {
				b.Fatal(err)
			}
			k, err := crypto.HexToECDSA(meta.Owner)
			if err != nil {
				b.Fatal(err)
			}
			n := testnode.Start(b, testnode.Options{Dir: filepath.Join(cache, "node")})
			owner := testnode.Key{Key: k, Address: crypto.PubkeyToAddress(k.PublicKey)}
			return &monthNode{n: n, token: n.SignIn(b, owner), car: meta.Car, start: meta.Start, end: meta.End}
		}
	}
	ctx := context.Background()
	var behind atomic.Int64
	behind.Store(int64(32 * 24 * time.Hour))
	clock := func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }
	opts := testnode.Options{Now: clock}
	if cache != "" {
		opts.Dir = filepath.Join(cache, "node")
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	n := testnode.Start(b, opts)
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
	m := &monthNode{n: n, car: car, start: time.Now().Add(-31 * 24 * time.Hour).Truncate(24 * time.Hour).Add(24 * time.Hour)}
	m.end = m.start.Add(30 * 24 * time.Hour)
	const per = 30 // samples to a record
	// The drive: the samples' values follow from their time alone, so that records can be signed in any order.
	sample := func(ts time.Time) []telemetry.EventSignal {
		days := ts.Sub(m.start) / (24 * time.Hour)
		h, sec := ts.Hour(), float64(ts.Minute()*60+ts.Second())
		km := 20000 + float64(days)*100 // 50 km each morning and evening
		speed, rpm, heading, ignition := 0.0, 0.0, 0.0, false
		a := 0.0 // the angle on the circle driven: half of it out in the morning, back in the evening
		switch {
		case h == 8:
			km, speed, rpm, heading, ignition, a = km+sec*50/3600, 50, 1800, sec/10, true, sec/3600*math.Pi
		case h == 18:
			km, speed, rpm, heading, ignition, a = km+50+sec*50/3600, 50, 1800, 180+sec/10, true, math.Pi+sec/3600*math.Pi
		case h > 8 && h < 18:
			km, a = km+50, math.Pi
		case h > 18:
			km = km + 100
		}
		lat, lon := 48.80+0.1*(1-math.Cos(a))/2, 2.30+0.1*math.Sin(a)/2
		return []telemetry.EventSignal{
			{Name: "speed", Timestamp: ts, Value: speed},
			{Name: credential.SignalLocation, Timestamp: ts, Value: telemetry.Location{Latitude: lat, Longitude: lon, HDOP: 0.8}},
			{Name: "currentLocationHeading", Timestamp: ts, Value: math.Mod(heading, 360)},
			{Name: credential.SignalOdometer, Timestamp: ts, Value: math.Round(km*1000) / 1000},
			{Name: "powertrainFuelSystemRelativeLevel", Timestamp: ts, Value: float64(80 - int(days)%50)},
			{Name: "powertrainCombustionEngineSpeed", Timestamp: ts, Value: rpm},
			{Name: "powertrainCombustionEngineECT", Timestamp: ts, Value: 20 + rpm/30},
			{Name: "exteriorAirTemperature", Timestamp: ts, Value: 14.5},
			{Name: "lowVoltageBatteryCurrentVoltage", Timestamp: ts, Value: 14.1},
			{Name: "isIgnitionOn", Timestamp: ts, Value: ignition},
		}
	}
	total := int(m.end.Sub(m.start) / (per * time.Second))
	const batch = 1000
	recs := make([]*telemetry.Record, batch)
	for from := 0; from < total; from += batch {
		k := min(batch, total-from)
		var wg sync.WaitGroup
		var failed atomic.Value
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Go(func() {
				for j := w; j < k; j += workers {
					t := m.start.Add(time.Duration(from+j) * per * time.Second)
					sigs := make([]telemetry.EventSignal, 0, 10*per+1)
					for s := range per {
						sigs = append(sigs, sample(t.Add(time.Duration(s)*time.Second))...)
					}
					if t.Hour() == 8 && t.Minute() == 0 && t.Second() == 0 {
						sigs = append(sigs, telemetry.EventSignal{Name: credential.SignalVIN, Timestamp: t, Value: "YV1XZ16H9P2000001"})
					}
					ev, err := telemetry.NewEvent(dev.Address, car, "h"+strconv.Itoa(from+j), t, sigs)
					var sub telemetry.Submission
					if err == nil {
						sub, err = telemetry.Sign(ev, dev.Key)
					}
					var r *telemetry.Record
					if err == nil {
						r, err = telemetry.DefaultCatalog.Parse(&sub, time.Now().Add(time.Minute).UnixMilli())
					}
					if err != nil {
						failed.Store(err)
						return
					}
					copy(r.Signature[:], sub.Signature)
					recs[j] = r
				}
			})
		}
		wg.Wait()
		if err, ok := failed.Load().(error); ok {
			b.Fatal(err)
		}
		var missing bool
		n.Sequencer.Read(func(st *ledger.State) {
			for _, r := range recs[:k] {
				p, ok := st.PairingAt(r.Source, r.VehicleID, r.Time)
				missing = missing || !ok
				r.Pairing, r.Received = p, time.Now().UnixMilli()
			}
		})
		if missing {
			b.Fatal("a record outside the pairing")
		}
		if _, err := n.Telemetry.Write(ctx, recs[:k]); err != nil {
			b.Fatal(err)
		}
	}
	for {
		k, err := n.Telemetry.Index(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if k == 0 {
			break
		}
	}
	if _, err := n.Telemetry.Seal(ctx); err != nil {
		b.Fatal(err)
	}
	m.token = n.SignIn(b, owner)
	if cache != "" {
		raw, _ := json.Marshal(monthMeta{Owner: hex.EncodeToString(crypto.FromECDSA(owner.Key)), Car: car, Start: m.start, End: m.end})
		if err := os.WriteFile(filepath.Join(cache, "month.json"), raw, 0o600); err != nil {
			b.Fatal(err)
		}
	}
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
			if cache := os.Getenv("GLOVEBOX_BENCH_CACHE"); cache != "" { // for profiling Verify alone
				os.WriteFile(filepath.Join(cache, typ+".sd-jwt"), []byte(issued), 0o600)
				os.WriteFile(filepath.Join(cache, "logkey"), []byte(m.n.LogKey), 0o600)
			}
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
