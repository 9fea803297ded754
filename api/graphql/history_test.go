package graphql_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api/graphql"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// series is a second vehicle of the fixture's owner with a fixed history, offsets from t0:
//
//	offset  speed  powertrainType  isIgnitionOn  currentLocationAltitude  currentLocationCoordinates
//	0s      10     BEV             true          100                      loc0
//	10s     20     PHEV            false                                  loc1
//	20s     60     PHEV            true
//	70s     5      ICE
//	80s     15     BEV
//	200s    7
//
// With interval 1m from t0 the minutes hold 0–20s, 70–80s, nothing, and 200s.
type series struct {
	*fixture
	vehicle uint64
	sdev    testnode.Key // the series vehicle's device
	t0      time.Time
	// h records access entries into the node's access log and reads them back (accessLog).
	h http.Handler
}

// The locations of the series, a kilometre or so apart.
var (
	loc0 = telemetry.Location{Latitude: 57.70887, Longitude: 11.97456, HDOP: 1.2}
	loc1 = telemetry.Location{Latitude: 57.71887, Longitude: 11.98456, HDOP: 0.8}
)

func newSeries(t *testing.T) *series {
	t.Helper()
	f := newFixture(t)
	s := &series{fixture: f}
	s.vehicle = f.n.Vehicle(t, f.owner)
	dev := f.n.PairedDevice(t, f.owner, s.vehicle, ledger.KindHardware)
	s.sdev = dev
	s.t0 = time.Now().Add(time.Second).Truncate(time.Second)
	at := func(sec int) time.Time { return s.t0.Add(time.Duration(sec) * time.Second) }
	type point struct {
		sec  int
		sigs []telemetry.EventSignal
	}
	sig := func(sec int, name string, v any) telemetry.EventSignal {
		return telemetry.EventSignal{Name: name, Timestamp: at(sec), Value: v}
	}
	for i, p := range []point{
		{sec: 0, sigs: []telemetry.EventSignal{sig(0, "speed", 10.0), sig(0, "powertrainType", "BEV"), sig(0, "isIgnitionOn", true), sig(0, "currentLocationAltitude", 100.0),
			sig(0, telemetry.SignalLocation, loc0)}},
		{sec: 10, sigs: []telemetry.EventSignal{sig(10, "speed", 20.0), sig(10, "powertrainType", "PHEV"), sig(10, "isIgnitionOn", false),
			sig(10, telemetry.SignalLocation, loc1)}},
		{sec: 20, sigs: []telemetry.EventSignal{sig(20, "speed", 60.0), sig(20, "powertrainType", "PHEV"), sig(20, "isIgnitionOn", true)}},
		{sec: 70, sigs: []telemetry.EventSignal{sig(70, "speed", 5.0), sig(70, "powertrainType", "ICE")}},
		{sec: 80, sigs: []telemetry.EventSignal{sig(80, "speed", 15.0), sig(80, "powertrainType", "BEV")}},
		{sec: 200, sigs: []telemetry.EventSignal{sig(200, "speed", 7.0)}},
	} {
		f.post(t, testnode.Record(t, dev, s.vehicle, fmt.Sprintf("s%d", i), at(p.sec), p.sigs...))
	}
	s.h = graphql.NewHandler(graphql.Config{
		State:     f.n.Sequencer.Read,
		Telemetry: f.n.Telemetry,
		Now:       f.clock,
		Record: func(e accesslog.Entry) {
			if err := f.n.AccessLog.Append(context.Background(), []accesslog.Entry{e}); err != nil {
				t.Error(err)
			}
		},
		AccessLog: f.n.AccessLog,
	})
	return s
}

// clock is the fixture handler's clock.
func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.now.IsZero() {
		return time.Now()
	}
	return f.now
}

// rfc is t as the API writes it.
func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// history asks the series vehicle's signals from t0+fromSec to t0+toSec by interval, with fields.
func (s *series) history(t *testing.T, caller common.Address, interval string, fromSec, toSec int, fields string) *response {
	t.Helper()
	q := fmt.Sprintf(`{ signals(tokenId: %d, interval: %q, from: %q, to: %q) { timestamp %s } }`, s.vehicle, interval,
		rfc(s.t0.Add(time.Duration(fromSec)*time.Second)), rfc(s.t0.Add(time.Duration(toSec)*time.Second)), fields)
	return do(t, s.h, caller, q)
}

// buckets returns the rows of a signals answer.
func (r *response) buckets() []map[string]any {
	var out []map[string]any
	list, _ := r.Data["signals"].([]any)
	for _, b := range list {
		out = append(out, b.(map[string]any))
	}
	return out
}

const everyAgg = `
  speedAvg: speed(agg: AVG) speedMed: speed(agg: MED) speedMax: speed(agg: MAX) speedMin: speed(agg: MIN)
  speedFirst: speed(agg: FIRST) speedLast: speed(agg: LAST)
  ignitionAvg: isIgnitionOn(agg: AVG) ignitionMax: isIgnitionOn(agg: MAX)
  typeTop: powertrainType(agg: TOP) typeUnique: powertrainType(agg: UNIQUE)
  typeFirst: powertrainType(agg: FIRST) typeLast: powertrainType(agg: LAST)
  exteriorAirTemperature(agg: AVG)
  locAvg: currentLocationCoordinates(agg: AVG) { latitude longitude hdop }
  locFirst: currentLocationCoordinates(agg: FIRST) { latitude longitude hdop }
  approxLast: currentLocationApproximateCoordinates(agg: LAST) { latitude longitude hdop }`

func TestEveryAggregationMatchesTheHandComputedValue(t *testing.T) {
	s := newSeries(t)
	r := s.history(t, s.owner.Address, "1m", 0, 240, everyAgg)
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	bs := r.buckets()
	if len(bs) != 3 {
		t.Fatalf("%d buckets, want 3 (the third minute is empty): %s", len(bs), r.Raw)
	}
	for _, tc := range []struct {
		name   string
		bucket int
		field  string
		want   any
	}{
		{"the first bucket starts at from", 0, "timestamp", rfc(s.t0)},
		{"the second bucket starts a minute later", 1, "timestamp", rfc(s.t0.Add(time.Minute))},
		{"the empty third minute is left out, so the last bucket is the fourth", 2, "timestamp", rfc(s.t0.Add(3 * time.Minute))},
		{"the mean of 10, 20, 60 is 30", 0, "speedAvg", 30.0},
		{"the median of 10, 20, 60 is 20", 0, "speedMed", 20.0},
		{"the median of 5, 15 is their mean, 10", 1, "speedMed", 10.0},
		{"the maximum of the first minute is 60", 0, "speedMax", 60.0},
		{"the minimum of the second minute is 5", 1, "speedMin", 5.0},
		{"the first of the first minute is 10", 0, "speedFirst", 10.0},
		{"the last of the first minute is 60", 0, "speedLast", 60.0},
		{"the last of the second minute is 15", 1, "speedLast", 15.0},
		{"a single value is every aggregation of it", 2, "speedAvg", 7.0},
		{"a single value is its own median", 2, "speedMed", 7.0},
		{"booleans average as 0/1: true, false, true is 2/3", 0, "ignitionAvg", 2.0 / 3},
		{"booleans max as 0/1", 0, "ignitionMax", 1.0},
		{"a bucket without a value of the signal gives null", 1, "ignitionAvg", nil},
		{"the most frequent string wins", 0, "typeTop", "PHEV"},
		{"among equally frequent strings the smallest wins", 1, "typeTop", "BEV"},
		{"the distinct strings are a sorted JSON array", 0, "typeUnique", `["BEV","PHEV"]`},
		{"the distinct strings of the second minute", 1, "typeUnique", `["BEV","ICE"]`},
		{"the first string", 1, "typeFirst", "ICE"},
		{"the last string", 0, "typeLast", "PHEV"},
		{"a string signal without values in a bucket gives null", 2, "typeTop", nil},
		{"a signal without any data gives null", 0, "exteriorAirTemperature", nil},
		{"the mean latitude", 0, "locAvg.latitude", (loc0.Latitude + loc1.Latitude) / 2},
		{"the mean longitude", 0, "locAvg.longitude", (loc0.Longitude + loc1.Longitude) / 2},
		{"the mean hdop", 0, "locAvg.hdop", (loc0.HDOP + loc1.HDOP) / 2},
		{"the first location keeps its hdop", 0, "locFirst.hdop", loc0.HDOP},
		{"the first location", 0, "locFirst.latitude", loc0.Latitude},
		{"the approximate last location is its H3 cell's centre", 0, "approxLast.latitude", graphql.ApproximateLocation(loc1.Latitude, loc1.Longitude).Latitude},
		{"the approximate location has no hdop", 0, "approxLast.hdop", 0.0},
		{"a bucket without locations gives a null location", 1, "locAvg", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got any = bs[tc.bucket]
			for _, k := range strings.Split(tc.field, ".") {
				got, _ = got.(map[string]any)[k]
			}
			if got != tc.want {
				t.Errorf("bucket %d %s = %v, want %v", tc.bucket, tc.field, got, tc.want)
			}
		})
	}
}

func TestBucketsAreAlignedToFrom(t *testing.T) {
	s := newSeries(t)
	// From t0+15s by minutes: [15s, 75s) holds 60 and 5, [75s, 135s) holds 15, [135s, 195s) nothing and
	// [195s, 255s) holds 7; 0s and 10s are before from.
	r := s.history(t, s.owner.Address, "1m", 15, 255, `speed(agg: AVG) n: speed(agg: FIRST)`)
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	var got []string
	for _, b := range r.buckets() {
		got = append(got, fmt.Sprintf("%s %v %v", b["timestamp"], b["speed"], b["n"]))
	}
	want := []string{
		fmt.Sprintf("%s 32.5 60", rfc(s.t0.Add(15*time.Second))),
		fmt.Sprintf("%s 15 15", rfc(s.t0.Add(75*time.Second))),
		fmt.Sprintf("%s 7 7", rfc(s.t0.Add(195*time.Second))),
	}
	if !slices.Equal(got, want) {
		t.Errorf("buckets\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// to is exclusive: up to t0+200s leaves the last value out.
	if r := s.history(t, s.owner.Address, "1m", 15, 200, `speed(agg: MAX)`); len(r.buckets()) != 2 {
		t.Errorf("to is not exclusive: %s", r.Raw)
	}
	// Asking only for signals without data gives no buckets at all.
	if r := s.history(t, s.owner.Address, "1m", 0, 240, `exteriorAirTemperature(agg: MAX)`); len(r.Errors) != 0 || len(r.buckets()) != 0 {
		t.Errorf("empty buckets are not left out: %s", r.Raw)
	}
}

func TestRandIsOneOfTheValuesAndStable(t *testing.T) {
	s := newSeries(t)
	q := `r: speed(agg: RAND) s: powertrainType(agg: RAND)`
	first := s.history(t, s.owner.Address, "1m", 0, 240, q)
	if len(first.Errors) != 0 {
		t.Fatalf("errors: %s", first.Raw)
	}
	speeds := [][]any{{10.0, 20.0, 60.0}, {5.0, 15.0}, {7.0}}
	types := [][]any{{"BEV", "PHEV"}, {"ICE", "BEV"}, {nil}}
	for i, b := range first.buckets() {
		if !slices.Contains(speeds[i], b["r"]) || !slices.Contains(types[i], b["s"]) {
			t.Errorf("bucket %d: RAND gave %v and %v, not values of the bucket", i, b["r"], b["s"])
		}
	}
	for range 3 {
		if again := s.history(t, s.owner.Address, "1m", 0, 240, q); !bytes.Equal(again.Raw, first.Raw) {
			t.Fatalf("RAND is not stable:\n%s\n%s", first.Raw, again.Raw)
		}
	}
}

func TestGoldenSignals(t *testing.T) {
	s := newSeries(t)
	r := s.history(t, s.owner.Address, "1m", 0, 240, everyAgg)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, r.Raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	got := pretty.String()
	for m := 0; m < 5; m++ {
		got = strings.ReplaceAll(got, rfc(s.t0.Add(time.Duration(m)*time.Minute)), fmt.Sprintf("<t0 + %dm>", m))
	}
	got += "\n"
	checkGolden(t, "signals.golden", got)
}

func TestSignalsLimits(t *testing.T) {
	s := newSeries(t)
	from := s.t0.Truncate(time.Minute).Add(-time.Hour + time.Second) // not on a minute boundary
	day := s.t0.UTC().Truncate(24*time.Hour).AddDate(0, -6, 0)       // midnight UTC, the data within the year after
	minute := s.t0.Truncate(time.Minute).AddDate(0, -6, 0)
	for _, tc := range []struct {
		name     string
		interval string
		to       time.Time
		want     string    // a part of the message, or "" for no error
		from     time.Time // when set, the query asks fields from from instead of speed MAX from the default from
		fields   string
	}{
		{"31 days by days pass", "24h", from.Add(31 * 24 * time.Hour), "", time.Time{}, ""},
		{"a range longer than 31 days from a time that is no minute boundary is refused", "24h", from.Add(31*24*time.Hour + time.Second), "at most 31 days", time.Time{}, ""},
		{"10,000 buckets pass", "1s", from.Add(10_000 * time.Second), "", time.Time{}, ""},
		{"10,001 buckets are refused", "1s", from.Add(10_001 * time.Second), "at most 10000", time.Time{}, ""},
		{"a part of a bucket counts as a bucket", "1s", from.Add(10_000*time.Second + time.Millisecond), "at most 10000", time.Time{}, ""},
		{"an interval that is no duration is refused", "5 minutes", from.Add(time.Hour), "not a duration", time.Time{}, ""},
		{"an interval under a second is refused", "500ms", from.Add(time.Hour), "shorter than 1s", time.Time{}, ""},
		{"a negative interval is refused", "-1h", from.Add(time.Hour), "shorter than 1s", time.Time{}, ""},
		{"the longest duration Go parses makes one bucket", "2562047h", from.Add(time.Hour), "", time.Time{}, ""},
		{"from equal to to is refused", "1h", from, "must be before to", time.Time{}, ""},
		{"from after to is refused", "1h", from.Add(-time.Hour), "must be before to", time.Time{}, ""},
		{"a year of daily roll-ups from midnight answers", "24h", day.AddDate(1, 0, 0), "", day,
			"speed(agg: AVG) m: speed(agg: MAX) n: speed(agg: MIN) f: powertrainType(agg: FIRST) l: currentLocationCoordinates(agg: LAST) { latitude }"},
		{"a year of hourly roll-ups from a minute boundary answers", "1h", minute.Add(365 * 24 * time.Hour), "", minute, "speed(agg: LAST)"},
		{"over 31 days with MED is refused", "24h", day.AddDate(1, 0, 0), "at most 31 days", day, "speed(agg: MED)"},
		{"over 31 days with a filter is refused", "24h", day.AddDate(1, 0, 0), "at most 31 days", day, "speed(agg: MAX, filter: {gt: 1})"},
		{"over 31 days with the mean of a location is refused", "24h", day.AddDate(1, 0, 0), "at most 31 days", day, "currentLocationCoordinates(agg: AVG) { latitude }"},
		{"over 31 days by intervals that are no whole minutes is refused", "3601s", day.AddDate(0, 2, 0), "at most 31 days", day, "speed(agg: MAX)"},
		{"a year of daily roll-ups still counts its buckets", "1h", day.AddDate(2, 0, 0), "at most 10000", day, "speed(agg: MAX)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := fmt.Sprintf(`{ signals(tokenId: %d, interval: %q, from: %q, to: %q) { timestamp speed(agg: MAX) } }`,
				s.vehicle, tc.interval, rfc(from), rfc(tc.to))
			if tc.from != (time.Time{}) {
				q = fmt.Sprintf(`{ signals(tokenId: %d, interval: %q, from: %q, to: %q) { timestamp %s } }`,
					s.vehicle, tc.interval, rfc(tc.from), rfc(tc.to), tc.fields)
			}
			r := do(t, s.h, s.owner.Address, q)
			if tc.want == "" {
				if len(r.Errors) != 0 {
					t.Fatalf("errors: %s", r.Raw)
				}
				return
			}
			if r.codes()["signals"] != "BAD_REQUEST" || !strings.Contains(r.Errors[0].Message, tc.want) {
				t.Errorf("want BAD_REQUEST saying %q: %s", tc.want, r.Raw)
			}
		})
	}
}

func TestPermissionsOfTheNewQueries(t *testing.T) {
	s := newSeries(t)
	signalsApp, commandsApp, expiredApp, unrelated := s.n.App(t, s.owner), s.n.App(t, s.owner), s.n.App(t, s.owner), s.n.App(t, s.owner)
	approxApp := s.n.App(t, s.owner)
	expiry := time.Now().Add(time.Hour)
	s.n.Grant(t, s.owner, s.vehicle, signalsApp.Address, expiry.Add(time.Hour).Unix(), ledger.PermSignals)
	s.n.Grant(t, s.owner, s.vehicle, commandsApp.Address, expiry.Add(time.Hour).Unix(), ledger.PermCommands)
	s.n.Grant(t, s.owner, s.vehicle, approxApp.Address, expiry.Add(time.Hour).Unix(), ledger.PermLocationApproximate)
	s.n.Grant(t, s.owner, s.vehicle, expiredApp.Address, expiry.Unix(), ledger.PermSignals, ledger.PermLocation)
	s.setNow(expiry.Add(time.Second))

	window := fmt.Sprintf(`tokenId: %d, interval: "1m", from: %q, to: %q`, s.vehicle, rfc(s.t0), rfc(s.t0.Add(5*time.Minute)))
	queries := map[string]string{
		"signals":          fmt.Sprintf(`{ signals(%s) { timestamp speed(agg: MAX) } }`, window),
		"signals location": fmt.Sprintf(`{ signals(%s) { timestamp speed(agg: MAX) currentLocationAltitude(agg: MAX) } }`, window),
		"approximate":      fmt.Sprintf(`{ signals(%s) { timestamp currentLocationApproximateCoordinates(agg: LAST) { latitude } } }`, window),
		"precise":          fmt.Sprintf(`{ signals(%s) { timestamp currentLocationCoordinates(agg: LAST) { latitude } } }`, window),
		"dataSummary":      fmt.Sprintf(`{ dataSummary(tokenId: %d) { numberOfSignals availableSignals } }`, s.vehicle),
		"vehicle":          fmt.Sprintf(`{ vehicle(tokenId: %d) { tokenId owner myGrant { permissions } } }`, s.vehicle),
		"vehicles":         `{ vehicles { totalCount nodes { tokenId } } }`,
		"accessLog":        fmt.Sprintf(`{ accessLog(tokenId: %d) { nodes { query } } }`, s.vehicle),
	}
	for _, tc := range []struct {
		name       string
		caller     common.Address
		query      string
		code       string // "" for an answer without errors
		permission string // extensions.permission of a FORBIDDEN
	}{
		{"the owner reads the history", s.owner.Address, "signals location", "", ""},
		{"the owner reads the summary", s.owner.Address, "dataSummary", "", ""},
		{"the owner reads the vehicle", s.owner.Address, "vehicle", "", ""},
		{"the owner reads the access log", s.owner.Address, "accessLog", "", ""},
		{"a signals-only app reads the history of speed", signalsApp.Address, "signals", "", ""},
		{"a signals-only app asking a location field is refused naming location", signalsApp.Address, "signals location", "FORBIDDEN", "location"},
		{"a signals-only app asking the approximate location is refused naming location:approximate", signalsApp.Address, "approximate", "FORBIDDEN", "location:approximate"},
		{"an approximate-location app reads the approximate history", approxApp.Address, "approximate", "", ""},
		{"an approximate-location app asking the precise location is refused naming location", approxApp.Address, "precise", "FORBIDDEN", "location"},
		{"an approximate-location app asking speed is refused naming signals", approxApp.Address, "signals", "FORBIDDEN", "signals"},
		{"the owner reads the precise location history", s.owner.Address, "precise", "", ""},
		{"a signals-only app reads the summary", signalsApp.Address, "dataSummary", "", ""},
		{"a signals-only app reads the vehicle", signalsApp.Address, "vehicle", "", ""},
		{"a signals-only app may not read the access log", signalsApp.Address, "accessLog", "FORBIDDEN", ""},
		{"a commands-only app reads the vehicle", commandsApp.Address, "vehicle", "", ""},
		{"a commands-only app may not read the history", commandsApp.Address, "signals", "FORBIDDEN", "signals"},
		{"a commands-only app may not read the summary", commandsApp.Address, "dataSummary", "FORBIDDEN", "signals"},
		{"an expired grant reads no history", expiredApp.Address, "signals", "FORBIDDEN", "signals"},
		{"an expired grant reads no summary", expiredApp.Address, "dataSummary", "FORBIDDEN", "signals"},
		{"an expired grant does not read the vehicle", expiredApp.Address, "vehicle", "FORBIDDEN", ""},
		{"an unrelated app reads no history", unrelated.Address, "signals", "FORBIDDEN", "signals"},
		{"an unrelated app does not read the vehicle", unrelated.Address, "vehicle", "FORBIDDEN", ""},
		{"an unrelated app does not read the access log", unrelated.Address, "accessLog", "FORBIDDEN", ""},
		{"nobody signed in reads no history", common.Address{}, "signals", "UNAUTHENTICATED", ""},
		{"nobody signed in reads no summary", common.Address{}, "dataSummary", "UNAUTHENTICATED", ""},
		{"nobody signed in reads no vehicle", common.Address{}, "vehicle", "UNAUTHENTICATED", ""},
		{"nobody signed in lists no vehicles", common.Address{}, "vehicles", "UNAUTHENTICATED", ""},
		{"nobody signed in reads no access log", common.Address{}, "accessLog", "UNAUTHENTICATED", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, s.h, tc.caller, queries[tc.query])
			if tc.code == "" {
				if len(r.Errors) != 0 {
					t.Fatalf("errors: %s", r.Raw)
				}
				return
			}
			if len(r.Errors) == 0 {
				t.Fatalf("no error: %s", r.Raw)
			}
			for _, e := range r.Errors {
				if e.Extensions["code"] != tc.code {
					t.Errorf("code %v, want %s: %s", e.Extensions["code"], tc.code, r.Raw)
				}
				if tc.permission != "" && e.Extensions["permission"] != tc.permission {
					t.Errorf("permission %v, want %s: %s", e.Extensions["permission"], tc.permission, r.Raw)
				}
			}
			if strings.Contains(string(r.Raw), `"timestamp"`) || strings.Contains(string(r.Raw), `"numberOfSignals":`) {
				t.Errorf("data leaked: %s", r.Raw)
			}
		})
	}
}

func TestTheIdentityOfAVehicle(t *testing.T) {
	s := newSeries(t)
	app := s.n.App(t, s.owner)
	expires := time.Now().Add(time.Hour).Unix()
	s.n.Grant(t, s.owner, s.vehicle, app.Address, expires, ledger.PermSignals, ledger.PermLocationApproximate)
	q := fmt.Sprintf(`{ vehicle(tokenId: %d) { id tokenId owner definition { make model year } pairedDevices { address kind pairedAt }
	  myGrant { permissions expiresAt purpose termsUri } } }`, s.vehicle)
	r := do(t, s.h, app.Address, q)
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	for path, want := range map[string]any{
		"vehicle.id":                fmt.Sprint(s.vehicle),
		"vehicle.tokenId":           float64(s.vehicle),
		"vehicle.owner":             s.owner.Address.Hex(),
		"vehicle.definition.make":   "Volvo",
		"vehicle.definition.model":  "XC40",
		"vehicle.definition.year":   2023.0,
		"vehicle.myGrant.expiresAt": rfc(time.Unix(expires, 0)),
		"vehicle.myGrant.purpose":   "Usage-based insurance quote",
	} {
		if got := r.get(path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if got := fmt.Sprint(r.get("vehicle.myGrant.permissions")); got != "[signals location:approximate]" {
		t.Errorf("myGrant.permissions = %s", got)
	}
	devs, _ := r.get("vehicle.pairedDevices").([]any)
	if len(devs) != 1 || devs[0].(map[string]any)["kind"] != ledger.KindHardware {
		t.Errorf("pairedDevices = %v", devs)
	}
	if r := do(t, s.h, s.owner.Address, q); len(r.Errors) != 0 || r.get("vehicle.myGrant") != nil {
		t.Errorf("the owner has no grant: %s", r.Raw)
	}
	if r := do(t, s.h, s.owner.Address, fmt.Sprintf(`{ vehicle(tokenId: %d) { id } }`, s.vehicle+100)); r.codes()["vehicle"] != "NOT_FOUND" {
		t.Errorf("an unknown vehicle: %s", r.Raw)
	}
}

// page is one page of a connection: its cursors' items, endCursor and hasNextPage.
func page(t *testing.T, r *response, field, item string) ([]string, string, bool) {
	t.Helper()
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	var items []string
	nodes, _ := r.get(field + ".nodes").([]any)
	for _, n := range nodes {
		items = append(items, fmt.Sprint(n.(map[string]any)[item]))
	}
	end, _ := r.get(field + ".pageInfo.endCursor").(string)
	next, _ := r.get(field + ".pageInfo.hasNextPage").(bool)
	return items, end, next
}

func TestVehiclesArePaginated(t *testing.T) {
	s := newSeries(t)
	third := s.n.Vehicle(t, s.owner)
	q := func(after string) string {
		if after == "" {
			return `{ vehicles(first: 2) { totalCount nodes { tokenId } pageInfo { endCursor hasNextPage } } }`
		}
		return fmt.Sprintf(`{ vehicles(first: 2, after: %q) { totalCount nodes { tokenId } pageInfo { endCursor hasNextPage } } }`, after)
	}
	r := do(t, s.h, s.owner.Address, q(""))
	ids, end, next := page(t, r, "vehicles", "tokenId")
	if fmt.Sprint(ids) != fmt.Sprintf("[%d %d]", s.fixture.vehicle, s.vehicle) || !next || r.get("vehicles.totalCount") != 3.0 {
		t.Fatalf("first page: %s", r.Raw)
	}
	r = do(t, s.h, s.owner.Address, q(end))
	ids, _, next = page(t, r, "vehicles", "tokenId")
	if fmt.Sprint(ids) != fmt.Sprintf("[%d]", third) || next {
		t.Fatalf("second page: %s", r.Raw)
	}
	if r := do(t, s.h, s.owner.Address, q("bm9wZQ")); r.codes()["vehicles"] != "BAD_REQUEST" {
		t.Errorf("a foreign cursor: %s", r.Raw)
	}

	// An app lists the vehicles it holds a grant in force on, whatever the permissions.
	app := s.n.App(t, s.owner)
	soon := time.Now().Add(time.Hour)
	s.n.Grant(t, s.owner, s.vehicle, app.Address, soon.Unix(), ledger.PermSignals)
	s.n.Grant(t, s.owner, third, app.Address, soon.Add(time.Hour).Unix(), ledger.PermCommands)
	ids, _, _ = page(t, do(t, s.h, app.Address, q("")), "vehicles", "tokenId")
	if fmt.Sprint(ids) != fmt.Sprintf("[%d %d]", s.vehicle, third) {
		t.Errorf("the app lists %v", ids)
	}
	s.setNow(soon.Add(time.Second))
	ids, _, _ = page(t, do(t, s.h, app.Address, q("")), "vehicles", "tokenId")
	if fmt.Sprint(ids) != fmt.Sprintf("[%d]", third) {
		t.Errorf("after one grant expired the app lists %v", ids)
	}
}

func TestTheAccessLogIsTheOwnersNewestFirst(t *testing.T) {
	s := newSeries(t)
	app := s.n.App(t, s.owner)
	s.n.Grant(t, s.owner, s.vehicle, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals)
	queries := []string{
		fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { value } } }`, s.vehicle),
		fmt.Sprintf(`{ dataSummary(tokenId: %d) { numberOfSignals } }`, s.vehicle),
		fmt.Sprintf(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { speed(agg: AVG) } }`, s.vehicle, rfc(s.t0), rfc(s.t0.Add(5*time.Minute))),
		fmt.Sprintf(`{ vehicle(tokenId: %d) { owner } }`, s.vehicle),
		fmt.Sprintf(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { currentLocationAltitude(agg: AVG) } }`, s.vehicle, rfc(s.t0), rfc(s.t0.Add(5*time.Minute))),
	}
	for _, q := range queries {
		do(t, s.h, app.Address, q)
		do(t, s.h, s.owner.Address, q) // the owner's reads are not logged
	}
	q := func(after string) string {
		a := ""
		if after != "" {
			a = fmt.Sprintf(", after: %q", after)
		}
		return fmt.Sprintf(`{ accessLog(tokenId: %d, first: 2%s) { nodes { query outcome caller values permissions from to }
		  edges { cursor } pageInfo { endCursor hasNextPage } } }`, s.vehicle, a)
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		r := do(t, s.h, s.owner.Address, q(after))
		items, end, next := page(t, r, "accessLog", "query")
		nodes, _ := r.get("accessLog.nodes").([]any)
		for i, n := range nodes {
			n := n.(map[string]any)
			if n["caller"] != app.Address.Hex() {
				t.Errorf("entry %s by %v", items[i], n["caller"])
			}
			got = append(got, fmt.Sprintf("%s %s", n["query"], n["outcome"]))
		}
		if !next {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		after = end
	}
	want := []string{"signals forbidden", "vehicle ok", "signals ok", "dataSummary ok", "signalsLatest ok"}
	// The history's entry names what it used and the span it read.
	r := do(t, s.h, s.owner.Address, fmt.Sprintf(`{ accessLog(tokenId: %d, first: 3) { nodes { query permissions from to values } } }`, s.vehicle))
	if n, _ := r.get("accessLog.nodes").([]any); len(n) != 3 || fmt.Sprint(n[2]) != fmt.Sprintf("map[from:%s permissions:[signals] query:signals to:%s values:3]",
		rfc(s.t0), rfc(s.t0.Add(5*time.Minute))) {
		t.Errorf("the signals entry: %s", r.Raw)
	}
	if !slices.Equal(got, want) {
		t.Errorf("access log\n%v\nwant\n%v", got, want)
	}
	// A grantee may not read it, and the attempt is logged.
	if r := do(t, s.h, app.Address, q("")); r.codes()["accessLog"] != "FORBIDDEN" {
		t.Errorf("a grantee reads the access log: %s", r.Raw)
	}
	items, _, _ := page(t, do(t, s.h, s.owner.Address, q("")), "accessLog", "query")
	if len(items) == 0 || items[0] != "accessLog" {
		t.Errorf("the refused attempt is not logged: %v", items)
	}
}

func TestDataSummaryCountsTheReadableSignals(t *testing.T) {
	s := newSeries(t)
	app := s.n.App(t, s.owner)
	s.n.Grant(t, s.owner, s.vehicle, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals)
	q := fmt.Sprintf(`{ dataSummary(tokenId: %d) { numberOfSignals availableSignals firstSeen lastSeen
	  signalDataSummary { name numberOfSignals firstSeen lastSeen } } }`, s.vehicle)
	for _, tc := range []struct {
		name      string
		caller    common.Address
		total     float64
		available string
	}{
		{"the owner counts every value", s.owner.Address, 17,
			"[currentLocationAltitude currentLocationApproximateCoordinates currentLocationCoordinates isIgnitionOn powertrainType speed]"},
		{"a signals-only app does not see the location signals", app.Address, 14, "[isIgnitionOn powertrainType speed]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, s.h, tc.caller, q)
			if len(r.Errors) != 0 {
				t.Fatalf("errors: %s", r.Raw)
			}
			if r.get("dataSummary.numberOfSignals") != tc.total || fmt.Sprint(r.get("dataSummary.availableSignals")) != tc.available {
				t.Errorf("got %s", r.Raw)
			}
			if r.get("dataSummary.firstSeen") != rfc(s.t0) || r.get("dataSummary.lastSeen") != rfc(s.t0.Add(200*time.Second)) {
				t.Errorf("first and last seen: %s", r.Raw)
			}
			var speed map[string]any
			list, _ := r.get("dataSummary.signalDataSummary").([]any)
			for _, x := range list {
				if x.(map[string]any)["name"] == "speed" {
					speed = x.(map[string]any)
				}
			}
			if speed == nil || speed["numberOfSignals"] != 6.0 || speed["firstSeen"] != rfc(s.t0) || speed["lastSeen"] != rfc(s.t0.Add(200*time.Second)) {
				t.Errorf("speed: %v", speed)
			}
		})
	}
}

func TestTheBuyerSeesNoHistoryFromBeforeTheSale(t *testing.T) {
	s := newSeries(t)
	buyer := testnode.NewKey(t)
	s.advanceNode(5 * time.Minute) // the sale comes after the whole series
	tx := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
	tx.VehicleID.SetUint64(s.vehicle)
	s.n.Submit(t, tx, s.owner)
	r := s.history(t, buyer.Address, "1m", 0, 300, `speed(agg: MAX) powertrainType(agg: LAST)`)
	if len(r.Errors) != 0 || len(r.buckets()) != 0 {
		t.Errorf("the buyer sees history from before the sale: %s", r.Raw)
	}
	r = do(t, s.h, buyer.Address, fmt.Sprintf(`{ dataSummary(tokenId: %d) { numberOfSignals firstSeen } }`, s.vehicle))
	if len(r.Errors) != 0 || r.get("dataSummary.numberOfSignals") != 0.0 || r.get("dataSummary.firstSeen") != "1970-01-01T00:00:00Z" {
		t.Errorf("the buyer's summary counts data from before the sale: %s", r.Raw)
	}
	r = do(t, s.h, buyer.Address, fmt.Sprintf(`{ accessLog(tokenId: %d) { nodes { query } } vehicle(tokenId: %d) { owner } }`, s.vehicle, s.vehicle))
	if len(r.Errors) != 0 || r.get("vehicle.owner") != buyer.Address.Hex() {
		t.Errorf("the buyer's vehicle: %s", r.Raw)
	}
	if r := s.history(t, s.owner.Address, "1m", 0, 300, `speed(agg: MAX)`); r.codes()["signals"] != "FORBIDDEN" {
		t.Errorf("the seller still reads the history: %s", r.Raw)
	}
}

// The fixture's handler without Record still answers the new queries.
func TestTheNewQueriesNeedNoRecorder(t *testing.T) {
	f := newFixture(t)
	r := do(t, f.h, f.owner.Address, fmt.Sprintf(`{ vehicle(tokenId: %d) { owner } vehicles { totalCount } }`, f.vehicle))
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	r = do(t, f.h, f.owner.Address, fmt.Sprintf(`{ accessLog(tokenId: %d) { nodes { query } } }`, f.vehicle))
	if r.codes()["accessLog"] != "INTERNAL" {
		t.Errorf("accessLog without a store: %s", r.Raw)
	}
}

// A signals query as a DIMO client writes it, with variables and a fragment, runs unchanged.
func TestSignalsTakesVariablesAndFragments(t *testing.T) {
	s := newSeries(t)
	body, _ := json.Marshal(map[string]any{
		"query": `query History($tokenId: Int!, $from: Time!, $to: Time!, $agg: FloatAggregation!) {
  signals(tokenId: $tokenId, interval: "1m", from: $from, to: $to) { timestamp ...speeds powertrainType(agg: TOP) }
}
fragment speeds on SignalAggregations { max: speed(agg: $agg) min: speed(agg: MIN) }`,
		"variables": map[string]any{"tokenId": s.vehicle, "from": rfc(s.t0), "to": rfc(s.t0.Add(2 * time.Minute)), "agg": "MAX"},
	})
	r := doRaw(t, s.h, s.owner.Address, body)
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	var got []string
	for _, b := range r.buckets() {
		got = append(got, fmt.Sprintf("%v %v %v", b["max"], b["min"], b["powertrainType"]))
	}
	if want := []string{"60 10 PHEV", "15 5 BEV"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
