package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// event builds and signs a record of dev for vehicle id at t.
func event(t *testing.T, dev testnode.Key, id uint64, recID string, at time.Time, signals ...telemetry.EventSignal) telemetry.Submission {
	t.Helper()
	if signals == nil {
		signals = []telemetry.EventSignal{
			{Name: "speed", Timestamp: at, Value: 42.5},
			{Name: "isIgnitionOn", Timestamp: at, Value: true},
			{Name: "currentLocationCoordinates", Timestamp: at, Value: telemetry.Location{Latitude: 38.7223, Longitude: -9.1393, HDOP: 0.9}},
			{Name: "obdDTCList", Timestamp: at, Value: []string{"P0420"}},
			{Name: "powertrainType", Timestamp: at, Value: "COMBUSTION"},
		}
	}
	return testnode.Record(t, dev, id, recID, at, signals...)
}

func post1(t *testing.T, n *testnode.Node, subs ...telemetry.Submission) []telemetry.Result {
	t.Helper()
	res, err := n.Client.PostEvents(context.Background(), subs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func count(t *testing.T, n *testnode.Node, q string, args ...any) int {
	t.Helper()
	var c int
	if err := n.Telemetry.DB().QueryRow(q, args...).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEveryRecordGetsItsOwnVerdict submits one batch holding a good record and one for each way a record
// can be refused; each gets its own status, the good ones are stored, and a bad one blocks nothing.
func TestEveryRecordGetsItsOwnVerdict(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, vid, ledger.KindHardware)
	stranger := testnode.NewKey(t)
	now := time.Now()

	good := event(t, dev, vid, "r1", now)
	forged := event(t, dev, vid, "r2", now)
	forged.Signature = event(t, stranger, vid, "r2", now).Signature // signed by someone else
	tampered := event(t, dev, vid, "r3", now)
	tampered.Event = []byte(strings.Replace(string(tampered.Event), `"value":42.5`, `"value":142.5`, 1)) // not the time, which may hold 42.5
	otherVehicle := n.Vehicle(t, owner)
	cases := []struct {
		name string
		sub  telemetry.Submission
		want telemetry.Status
	}{
		{"a good record is accepted", good, telemetry.StatusAccepted},
		{"the same record again is a duplicate", good, telemetry.StatusDuplicate},
		{"other bytes under the same id are a conflict", event(t, dev, vid, "r1", now.Add(time.Millisecond)), telemetry.StatusConflict},
		{"a signature by another key is refused", forged, telemetry.StatusBadSignature},
		{"bytes changed after signing are refused", tampered, telemetry.StatusBadSignature},
		{"a device that is not paired to the subject is refused", event(t, dev, otherVehicle, "r4", now), telemetry.StatusNotPaired},
		{"an unregistered key is refused", event(t, stranger, vid, "r5", now), telemetry.StatusNotPaired},
		{"a record from before the pairing is refused", event(t, dev, vid, "r6", now.Add(-time.Hour)), telemetry.StatusNotPaired},
		{"a record eleven seconds ahead is refused", event(t, dev, vid, "r7", now.Add(11*time.Second)), telemetry.StatusFutureTime},
		{"an unknown signal is refused", event(t, dev, vid, "r8", now, telemetry.EventSignal{Name: "warpDrive", Timestamp: now, Value: 1.0}), telemetry.StatusUnknownSignal},
		{"a speed of -5 is refused", event(t, dev, vid, "r9", now, telemetry.EventSignal{Name: "speed", Timestamp: now, Value: -5.0}), telemetry.StatusBadValue},
		{"a string where a number belongs is refused", event(t, dev, vid, "r10", now, telemetry.EventSignal{Name: "speed", Timestamp: now, Value: "fast"}), telemetry.StatusBadValue},
		{"a fractional gear is refused", event(t, dev, vid, "r11", now, telemetry.EventSignal{Name: "powertrainTransmissionCurrentGear", Timestamp: now, Value: 2.5}), telemetry.StatusBadValue},
		{"a latitude of 91 is refused", event(t, dev, vid, "r12", now, telemetry.EventSignal{Name: "currentLocationCoordinates", Timestamp: now, Value: telemetry.Location{Latitude: 91}}), telemetry.StatusBadValue},
		{"a signal timestamp before the pairing is refused", event(t, dev, vid, "r13", now, telemetry.EventSignal{Name: "speed", Timestamp: now.Add(-time.Hour), Value: 1.0}), telemetry.StatusNotPaired},
		{"an event that is not JSON is refused", telemetry.Submission{Event: []byte("not json"), Signature: good.Signature}, telemetry.StatusMalformed},
		{"a second good record is accepted", event(t, dev, vid, "r14", now), telemetry.StatusAccepted},
	}
	subs := make([]telemetry.Submission, len(cases))
	for i, c := range cases {
		subs[i] = c.sub
	}
	// The duplicate and the conflict are judged against what is stored, so send the first record alone.
	if got := post1(t, n, subs[0])[0]; got.Status != telemetry.StatusAccepted {
		t.Fatalf("the first record: %+v", got)
	}
	res := post1(t, n, subs[1:]...)
	for i, c := range cases[1:] {
		t.Run(c.name, func(t *testing.T) {
			if res[i].Status != c.want {
				t.Fatalf("got %+v, want %s", res[i], c.want)
			}
			if c.want != telemetry.StatusAccepted && c.want != telemetry.StatusDuplicate && res[i].Message == "" {
				t.Fatalf("a refusal without a message: %+v", res[i])
			}
		})
	}
	if got := count(t, n, `SELECT count(*) FROM records`); got != 2 {
		t.Fatalf("%d records stored, want 2 (r1 and r14)", got)
	}
}

// TestPairingIntervalsDecideWhichRecordsVerify follows a device through pair, unpair and re-pair (to
// another vehicle) and a transfer: a record verifies exactly when its time falls in a pairing of its
// source to its subject, so a backfilled record from before the unpair still verifies.
func TestPairingIntervalsDecideWhichRecordsVerify(t *testing.T) {
	var clock atomicTime
	clock.set(time.Now().Add(-2 * time.Hour))
	n := testnode.Start(t, testnode.Options{Now: clock.get})
	owner, buyer := testnode.NewKey(t), testnode.NewKey(t)
	v1, v2 := n.Vehicle(t, owner), n.Vehicle(t, owner)
	clock.add(time.Minute)
	dev := n.PairedDevice(t, owner, v1, ledger.KindHardware) // paired at T0+1m
	pairedAt := clock.get()
	clock.add(10 * time.Minute)
	up := &ledger.Tx{Type: ledger.TypeUnpairDevice, Device: dev.Address}
	up.VehicleID.SetUint64(v1)
	n.Submit(t, up, owner) // unpaired at T0+11m
	unpairedAt := clock.get()
	clock.add(10 * time.Minute)
	pair := &ledger.Tx{Type: ledger.TypePairDevice, Device: dev.Address}
	pair.VehicleID.SetUint64(v2)
	n.Submit(t, pair, owner, dev) // re-paired to v2 at T0+21m
	repairedAt := clock.get()
	clock.add(10 * time.Minute)
	tr := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
	tr.VehicleID.SetUint64(v2)
	n.Submit(t, tr, owner) // v2 sold at T0+31m: a hardware device stays paired
	clock.set(time.Now())

	cases := []struct {
		name    string
		vehicle uint64
		at      time.Time
		want    telemetry.Status
	}{
		{"before the first pairing", v1, pairedAt.Add(-time.Second), telemetry.StatusNotPaired},
		{"at the pairing's accept time", v1, pairedAt.Truncate(time.Millisecond), telemetry.StatusAccepted},
		{"backfilled from while paired to v1", v1, unpairedAt.Add(-time.Minute), telemetry.StatusAccepted},
		{"at the unpairing", v1, unpairedAt.Truncate(time.Millisecond), telemetry.StatusNotPaired},
		{"for v1 after the unpairing", v1, repairedAt.Add(time.Minute), telemetry.StatusNotPaired},
		{"for v2 between the pairings", v2, unpairedAt.Add(time.Minute), telemetry.StatusNotPaired},
		{"for v2 after the re-pairing", v2, repairedAt.Add(time.Minute), telemetry.StatusAccepted},
		{"for v2 after its transfer", v2, time.Now(), telemetry.StatusAccepted},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub := event(t, dev, c.vehicle, fmt.Sprint("p", i), c.at, telemetry.EventSignal{Name: "speed", Timestamp: c.at, Value: 10.0})
			if got := post1(t, n, sub)[0]; got.Status != c.want {
				t.Fatalf("got %+v, want %s", got, c.want)
			}
		})
	}
}

// TestSignalsAreIndexedAndReindexRebuildsThem checks the derived tables against the records, then
// deletes them and rebuilds them with Reindex.
func TestSignalsAreIndexedAndReindexRebuildsThem(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, vid, ledger.KindHardware)
	start := time.Now()
	var subs []telemetry.Submission
	for i := 0; i < 30; i++ {
		at := start.Add(time.Duration(i) * 10 * time.Millisecond) // at most 0.3 s ahead: held until then
		subs = append(subs, event(t, dev, vid, fmt.Sprint("s", i), at,
			telemetry.EventSignal{Name: "speed", Timestamp: at, Value: float64(i)},
			telemetry.EventSignal{Name: "isIgnitionOn", Timestamp: at, Value: i%2 == 0}))
	}
	for _, r := range post1(t, n, subs...) {
		if r.Status != telemetry.StatusAccepted {
			t.Fatalf("%+v", r)
		}
	}
	ctx := context.Background()
	check := func(when string) {
		if _, err := n.Telemetry.Index(ctx); err != nil {
			t.Fatal(err)
		}
		var got int
		n.Telemetry.SignalsDB().QueryRow(`SELECT (SELECT COALESCE(SUM(cnt), 0) FROM open_values WHERE vehicle = ?1) + (SELECT COALESCE(SUM(cnt), 0) FROM chunk_sums WHERE vehicle = ?1)`, vid).Scan(&got)
		if got != 60 {
			t.Fatalf("%s: %d signal values, want 60", when, got)
		}
		rows, err := n.Telemetry.Latest(ctx, vid, 0)
		if err != nil {
			t.Fatal(err)
		}
		var latest any
		for _, r := range rows {
			if r.Name == "speed" {
				latest = r.Val
			}
		}
		if latest != 29.0 {
			t.Fatalf("%s: latest speed %v; want 29", when, latest)
		}
		if lag, err := n.Telemetry.Lag(ctx); err != nil || lag != 0 {
			t.Fatalf("%s: lag %d %v", when, lag, err)
		}
	}
	check("after ingest")
	if _, err := n.Telemetry.SignalsDB().Exec(`DELETE FROM open_values; DELETE FROM chunk_sums; DELETE FROM chunk_data; DELETE FROM latest_values`); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Telemetry.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	check("after reindex")
}

func TestTheCatalogueIsServed(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	status, body := get(t, n.URL+"/v1/signals")
	if status != 200 {
		t.Fatalf("HTTP %d", status)
	}
	var sigs []map[string]any
	if err := json.Unmarshal(body, &sigs); err != nil {
		t.Fatal(err)
	}
	if len(sigs) != len(telemetry.DefaultCatalog.Signals) || len(sigs) != 117 {
		t.Fatalf("%d signals served", len(sigs))
	}
	for _, s := range sigs {
		if s["name"] == "currentLocationCoordinates" && s["permission"] != ledger.PermLocation {
			t.Fatalf("location guarded by %v", s["permission"])
		}
		if s["name"] == "speed" && (s["unit"] != "km/h" || s["permission"] != ledger.PermSignals || s["vssPath"] != "Vehicle.Speed") {
			t.Fatalf("speed: %v", s)
		}
	}
}

func TestABadEventBodyIsRefusedWhole(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	for _, c := range []struct{ body, code string }{
		{"{", "malformed"},
		{`"x"`, "malformed"},
		{"[" + strings.TrimSuffix(strings.Repeat(`{"event":"{}","signature":"0x00"},`, 1001), ",") + "]", "too_large"},
	} {
		status, body := post(t, n.URL+"/v1/events", c.body)
		if got := errCode(t, body); got != c.code || status < 400 {
			t.Errorf("%.30s: %d %s", c.body, status, body)
		}
	}
}
