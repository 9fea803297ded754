package graphql_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/uber/h3-go/v4"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// The trip of the insights fixture ends here (Gothenburg's fixture starts at lat, lon).
const endLat, endLon = 57.72101, 11.94012

// newTripFixture adds to the fixture a 90 s ignition trip from base, a hard stop in its first seconds
// (derived harsh braking), and a harsh cornering the device reports.
func newTripFixture(t *testing.T) *fixture {
	f := newFixture(t)
	b := f.base
	sig := func(name string, at time.Time, v any) telemetry.EventSignal {
		return telemetry.EventSignal{Name: name, Timestamp: at, Value: v}
	}
	f.post(t,
		testnode.Record(t, f.dev, f.vehicle, "t3", b.Add(3*time.Second), sig("speed", b.Add(3*time.Second), 50.0)),
		testnode.Record(t, f.dev, f.vehicle, "t4", b.Add(4*time.Second), sig("speed", b.Add(4*time.Second), 30.0)),
		testnode.Record(t, f.dev, f.vehicle, "t5", b.Add(5*time.Second), sig("speed", b.Add(5*time.Second), 29.0)),
		testnode.Record(t, f.dev, f.vehicle, "t90", b.Add(90*time.Second), sig("isIgnitionOn", b.Add(90*time.Second), false),
			sig("speed", b.Add(90*time.Second), 0.0),
			sig(telemetry.SignalLocation, b.Add(90*time.Second), telemetry.Location{Latitude: endLat, Longitude: endLon, HDOP: 1})),
	)
	ev, err := telemetry.NewEventsRecord(f.dev.Address, f.vehicle, "e30", b.Add(30*time.Second), []telemetry.EventItem{
		{Name: "behavior.harshCornering", Timestamp: b.Add(30 * time.Second), Duration: 800 * time.Millisecond, Metadata: map[string]any{"lateralG": 0.45}}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := telemetry.Sign(ev, f.dev.Key)
	if err != nil {
		t.Fatal(err)
	}
	f.post(t, sub)
	f.setNow(b.Add(10 * time.Minute))
	return f
}

func (f *fixture) insightsQuery() string {
	// The range starts an hour before the trip, but not before its UTC day: dailyActivity's first day is
	// the trip's at any time of day (from 00:00 to 01:00 UTC the first day was the day before, empty).
	from := f.base.Add(-time.Hour)
	if day := f.base.UTC().Truncate(24 * time.Hour); from.Before(day) {
		from = day
	}
	to := f.base.Add(10 * time.Minute).Format(time.RFC3339)
	return fmt.Sprintf(`{
  segments(tokenId: %[1]d, from: %[2]q, to: %[3]q, mechanism: ignitionDetection, config: {minSegmentDurationSeconds: 60}) {
    id start { timestamp value { latitude longitude hdop } } end { timestamp value { latitude longitude } } duration isOngoing startedBeforeRange
    signals { name agg value } eventCounts { name count } }
  events(tokenId: %[1]d, from: %[2]q, to: %[3]q) { timestamp name source durationNs metadata }
  dailyActivity(tokenId: %[1]d, from: %[2]q, to: %[3]q, mechanism: ignitionDetection, config: {minSegmentDurationSeconds: 60}) {
    segmentCount duration start { value { latitude longitude } } end { value { latitude longitude } } }
}`, f.vehicle, from.Format(time.RFC3339), to)
}

func TestTheOwnerReadsTripsDailyActivityAndEvents(t *testing.T) {
	f := newTripFixture(t)
	r := do(t, f.h, f.owner.Address, f.insightsQuery())
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	checks := map[string]any{
		"segments.0.start.timestamp":           f.base.UTC().Format(time.RFC3339Nano),
		"segments.0.end.timestamp":             f.base.Add(90 * time.Second).UTC().Format(time.RFC3339Nano),
		"segments.0.duration":                  90.0,
		"segments.0.isOngoing":                 false,
		"segments.0.startedBeforeRange":        false,
		"segments.0.start.value.latitude":      lat,
		"segments.0.end.value.latitude":        endLat,
		"events.0.name":                        "behavior.harshBraking",
		"events.0.source":                      telemetry.DerivedSource,
		"events.0.durationNs":                  1e9,
		"events.1.name":                        "behavior.harshCornering",
		"events.1.source":                      f.dev.Address.Hex(),
		"events.1.metadata":                    `{"lateralG":0.45}`,
		"dailyActivity.0.segmentCount":         1.0,
		"dailyActivity.0.duration":             90.0,
		"dailyActivity.0.start.value.latitude": lat,
	}
	for path, want := range checks {
		if got := r.get(path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	counts := fmt.Sprint(r.get("segments.0.eventCounts"))
	if !strings.Contains(counts, "behavior.harshBraking") || !strings.Contains(counts, "behavior.harshCornering") {
		t.Errorf("eventCounts %s", counts)
	}
	sigs := fmt.Sprint(r.get("segments.0.signals"))
	if !strings.Contains(sigs, "agg:MAX name:speed value:50.25") {
		t.Errorf("signals %s, want speed MAX 50.25", sigs)
	}
	// The segment id is the same in another query that sees the start.
	id := r.get("segments.0.id")
	r2 := do(t, f.h, f.owner.Address, fmt.Sprintf(`{ segments(tokenId: %d, from: %q, to: %q, mechanism: ignitionDetection, config: {minSegmentDurationSeconds: 60}) { id } }`,
		f.vehicle, f.base.Add(-2*time.Hour).Format(time.RFC3339), f.base.Add(5*time.Minute).Format(time.RFC3339)))
	if r2.get("segments.0.id") != id || id == nil {
		t.Errorf("segment id %v, then %v", id, r2.get("segments.0.id"))
	}
	// dataSummary lists the events by name.
	r = do(t, f.h, f.owner.Address, fmt.Sprintf(`{ dataSummary(tokenId: %d) { eventDataSummary { name numberOfEvents } } }`, f.vehicle))
	if got := fmt.Sprint(r.get("dataSummary.eventDataSummary")); got != "[map[name:behavior.harshBraking numberOfEvents:1] map[name:behavior.harshCornering numberOfEvents:1]]" {
		t.Errorf("eventDataSummary %s", got)
	}
}

// The permission matrix of the insights queries, and no position for a caller holding insights alone.
func TestInsightsPermissionMatrix(t *testing.T) {
	f := newTripFixture(t)
	hour := f.base.Add(time.Hour).Unix()
	grantee := func(perms ...string) common.Address {
		app := f.n.App(t, f.owner)
		f.n.Grant(t, f.owner, f.vehicle, app.Address, hour, perms...)
		return app.Address
	}
	insights := grantee(ledger.PermInsights)
	approx := grantee(ledger.PermInsights, ledger.PermLocationApproximate)
	precise := grantee(ledger.PermInsights, ledger.PermLocation)
	signalsOnly := grantee(ledger.PermSignals)
	expiring := f.n.App(t, f.owner)
	f.n.Grant(t, f.owner, f.vehicle, expiring.Address, f.base.Add(5*time.Minute).Unix(), ledger.PermInsights)
	revoked := grantee(ledger.PermInsights)
	tx := &ledger.Tx{Type: ledger.TypeRevoke, App: revoked}
	tx.VehicleID.SetUint64(f.vehicle)
	f.n.Submit(t, tx, f.owner)

	centre := h3.CellToLatLng(h3.LatLngToCell(h3.NewLatLng(lat, lon), 6))
	precisePos := []string{fmt.Sprint(lat), fmt.Sprint(lon), fmt.Sprint(endLat), fmt.Sprint(endLon)}
	cases := []struct {
		name      string
		caller    common.Address
		code      string // of every error, "" for none
		startLat  any    // segments.0.start.value.latitude
		dayStart  any    // dailyActivity.0.start
		noPrecise bool   // the answer holds no precise coordinate
	}{
		{"the owner", f.owner.Address, "", lat, map[string]any{"value": map[string]any{"latitude": lat, "longitude": lon}}, false},
		{"insights only", insights, "", 0.0, nil, true},
		{"insights and approximate location", approx, "", centre.Lat, map[string]any{"value": map[string]any{"latitude": centre.Lat, "longitude": centre.Lng}}, true},
		{"insights and location", precise, "", lat, map[string]any{"value": map[string]any{"latitude": lat, "longitude": lon}}, false},
		{"signals only", signalsOnly, "FORBIDDEN", nil, nil, true},
		{"an expired grant", expiring.Address, "FORBIDDEN", nil, nil, true},
		{"a revoked grant", revoked, "FORBIDDEN", nil, nil, true},
		{"a stranger", testnode.NewKey(t).Address, "FORBIDDEN", nil, nil, true},
		{"nobody signed in", common.Address{}, "UNAUTHENTICATED", nil, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, f.h, c.caller, f.insightsQuery())
			for _, e := range r.Errors {
				if e.Extensions["code"] != c.code {
					t.Errorf("code %v, want %q: %s", e.Extensions["code"], c.code, r.Raw)
				}
				if c.code == "FORBIDDEN" && e.Extensions["permission"] != ledger.PermInsights {
					t.Errorf("FORBIDDEN names %v, want insights", e.Extensions["permission"])
				}
			}
			if c.code != "" && len(r.Errors) != 3 {
				t.Errorf("%d errors, want one per query field: %s", len(r.Errors), r.Raw)
			}
			if got := r.get("segments.0.start.value.latitude"); got != c.startLat {
				t.Errorf("start latitude %v, want %v", got, c.startLat)
			}
			if got := r.get("dailyActivity.0.start"); fmt.Sprint(got) != fmt.Sprint(c.dayStart) {
				t.Errorf("day start %v, want %v", got, c.dayStart)
			}
			if c.noPrecise {
				for _, p := range precisePos {
					if strings.Contains(string(r.Raw), p) {
						t.Errorf("a precise coordinate %s in %s", p, r.Raw)
					}
				}
			}
		})
	}
	// insights alone cannot ask for a location signal's aggregate.
	r := do(t, f.h, insights, fmt.Sprintf(`{ segments(tokenId: %d, from: %q, to: %q, mechanism: ignitionDetection,
  signalRequests: [{name: "currentLocationAltitude", agg: MAX}]) { duration } }`,
		f.vehicle, f.base.Add(-time.Hour).Format(time.RFC3339), f.base.Add(5*time.Minute).Format(time.RFC3339)))
	if r.codes()["segments"] != "FORBIDDEN" {
		t.Errorf("a location signal's aggregate with insights alone: %s", r.Raw)
	}
}

func TestInsightsBadInputNamesTheArgument(t *testing.T) {
	f := newFixture(t)
	from, to := f.base.Add(-time.Hour).Format(time.RFC3339), f.base.Add(time.Minute).Format(time.RFC3339)
	seg := func(args string) string {
		return fmt.Sprintf(`{ segments(tokenId: %d, from: %q, to: %q, %s) { duration } }`, f.vehicle, from, to, args)
	}
	for _, c := range []struct{ name, query, want string }{
		{"an unknown mechanism", seg(`mechanism: teleport`), "teleport"},
		{"maxGapSeconds below its bound", seg(`mechanism: frequencyAnalysis, config: {maxGapSeconds: 10}`), "maxGapSeconds"},
		{"maxIdleRpm above its bound", seg(`mechanism: idling, config: {maxIdleRpm: 9000}`), "maxIdleRpm"},
		{"a limit over 200", seg(`mechanism: refuel, limit: 201`), "limit"},
		{"an unknown event request", seg(`mechanism: refuel, eventRequests: [{name: "behavior.donut"}]`), "eventRequests"},
		{"a range over 31 days", fmt.Sprintf(`{ segments(tokenId: %d, from: "2026-01-01T00:00:00Z", to: "2026-03-01T00:00:00Z", mechanism: refuel) { duration } }`, f.vehicle), "31 days"},
		{"dailyActivity with idling", fmt.Sprintf(`{ dailyActivity(tokenId: %d, from: %q, to: %q, mechanism: idling) { duration } }`, f.vehicle, from, to), "mechanism"},
		{"an unknown timezone", fmt.Sprintf(`{ dailyActivity(tokenId: %d, from: %q, to: %q, mechanism: idling, timezone: "Mars/Olympus") { duration } }`, f.vehicle, from, to), "mechanism"},
		{"a bad timezone", fmt.Sprintf(`{ dailyActivity(tokenId: %d, from: %q, to: %q, mechanism: ignitionDetection, timezone: "Mars/Olympus") { duration } }`, f.vehicle, from, to), "timezone"},
		{"an unknown event name filter", fmt.Sprintf(`{ events(tokenId: %d, from: %q, to: %q, filter: {name: {eq: "behavior.donut"}}) { name } }`, f.vehicle, from, to), "filter.name"},
		{"a malformed polygon", fmt.Sprintf(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { currentLocationCoordinates(agg: LAST, filter: {inPolygon: [{latitude: 1, longitude: 1}]}) { latitude } } }`, f.vehicle, from, to), "filter.inPolygon"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, f.h, f.owner.Address, c.query)
			if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "BAD_REQUEST" || !strings.Contains(r.Errors[0].Message, c.want) {
				t.Errorf("want BAD_REQUEST naming %q: %s", c.want, r.Raw)
			}
		})
	}
	_ = context.Background
}

// TestDailyActivityCutsATripAtTheCallersMidnight: a trip from 23:30 to 00:45 in Kolkata (UTC+5:30)
// counts on both days there, and on one day in UTC.
func TestDailyActivityCutsATripAtTheCallersMidnight(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	f := newFixture(t)
	b := f.base.In(kolkata)
	midnight := time.Date(b.Year(), b.Month(), b.Day()+1, 0, 0, 0, 0, kolkata)
	if midnight.Sub(b) < time.Hour {
		midnight = midnight.AddDate(0, 0, 1)
	}
	on, off := midnight.Add(-30*time.Minute), midnight.Add(45*time.Minute)
	f.advanceNode(time.Until(off.Add(time.Minute)))
	ign := func(id string, at time.Time, v bool) telemetry.Submission {
		return testnode.Record(t, f.dev, f.vehicle, id, at, telemetry.EventSignal{Name: "isIgnitionOn", Timestamp: at, Value: v})
	}
	// The fixture's first record turned the ignition on: a few seconds' trip, too short to count.
	f.post(t, ign("off0", f.base.Add(10*time.Second), false), ign("on", on, true), ign("off", off, false))
	f.setNow(midnight.Add(2 * time.Hour))
	from, to := midnight.Add(-12*time.Hour).Format(time.RFC3339), midnight.Add(90*time.Minute).Format(time.RFC3339)
	for _, c := range []struct{ zone, want string }{
		{"Asia/Kolkata", "[[1 1800] [1 2700]]"},
		{"UTC", "[[1 4500]]"},
	} {
		r := do(t, f.h, f.owner.Address, fmt.Sprintf(`{ dailyActivity(tokenId: %d, from: %q, to: %q, mechanism: ignitionDetection, timezone: %q) { segmentCount duration } }`,
			f.vehicle, from, to, c.zone))
		if len(r.Errors) != 0 {
			t.Fatalf("%s: %s", c.zone, r.Raw)
		}
		var got []string
		for _, d := range r.Data["dailyActivity"].([]any) {
			m := d.(map[string]any)
			if m["segmentCount"].(float64) > 0 {
				got = append(got, fmt.Sprint([]any{m["segmentCount"], m["duration"]}))
			}
		}
		if s := "[" + strings.Join(got, " ") + "]"; s != c.want {
			t.Errorf("%s: days with trips %s, want %s (%s)", c.zone, s, c.want, r.Raw)
		}
	}
}
