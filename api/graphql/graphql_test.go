package graphql_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/uber/h3-go/v4"

	"github.com/glovebox/glovebox/api/graphql"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The precise location of the fixture: Gothenburg.
const lat, lon, hdop = 57.70887, 11.97456, 1.2

// fixture is a node with one vehicle, its paired device, and records posted and indexed.
type fixture struct {
	n       *testnode.Node
	owner   testnode.Key
	vehicle uint64
	dev     testnode.Key
	base    time.Time // the time of the first record; the others follow a second apart

	mu   sync.Mutex
	now  time.Time     // the handler's clock, zero for time.Now
	skew time.Duration // how far the node's clock is ahead of time.Now
	cfg  graphql.Config
	h    http.Handler
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{}
	f.n = testnode.Start(t, testnode.Options{Now: func() time.Time {
		f.mu.Lock()
		defer f.mu.Unlock()
		return time.Now().Add(f.skew)
	}})
	f.owner = testnode.NewKey(t)
	f.vehicle = f.n.Vehicle(t, f.owner)
	f.dev = f.n.PairedDevice(t, f.owner, f.vehicle, ledger.KindHardware)
	f.base = time.Now().Add(time.Second).Truncate(time.Second) // after the pairing, whole seconds
	f.post(t, testnode.Record(t, f.dev, f.vehicle, "r1", f.base,
		telemetry.EventSignal{Name: "speed", Timestamp: f.base, Value: 42.5},
		telemetry.EventSignal{Name: "isIgnitionOn", Timestamp: f.base, Value: true},
		telemetry.EventSignal{Name: "powertrainType", Timestamp: f.base, Value: "BEV"},
		telemetry.EventSignal{Name: "powertrainFuelSystemSupportedFuelTypes", Timestamp: f.base, Value: []string{"ELECTRIC"}},
	))
	at := f.base.Add(time.Second)
	f.post(t, testnode.Record(t, f.dev, f.vehicle, "r2", at,
		telemetry.EventSignal{Name: "speed", Timestamp: at, Value: 50.25},
		telemetry.EventSignal{Name: "powertrainTransmissionTravelledDistance", Timestamp: at, Value: 12345.6},
	))
	at = f.base.Add(2 * time.Second)
	f.post(t, testnode.Record(t, f.dev, f.vehicle, "r3", at,
		telemetry.EventSignal{Name: telemetry.SignalLocation, Timestamp: at, Value: telemetry.Location{Latitude: lat, Longitude: lon, HDOP: hdop}},
	))
	f.cfg = graphql.Config{
		State:     f.n.Sequencer.Read,
		Telemetry: f.n.Telemetry,
		Now: func() time.Time {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.now.IsZero() {
				return time.Now()
			}
			return f.now
		},
	}
	f.h = graphql.NewHandler(f.cfg)
	return f
}

// postAhead is how far the node's clock runs ahead while the fixture posts records: the series are dated
// up to a few minutes after now, and a record dated ahead of the node's clock would be held until its
// time (telemetry.MaxClockSkew). The ledger's clock is not moved (nothing is sequenced meanwhile).
const postAhead = 10 * time.Minute

func (f *fixture) post(t testing.TB, subs ...telemetry.Submission) {
	t.Helper()
	f.advanceNode(postAhead)
	defer f.advanceNode(-postAhead)
	res, err := f.n.Client.PostEvents(context.Background(), subs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != telemetry.StatusAccepted {
			t.Fatalf("record %s: %s %s", r.ID, r.Status, r.Message)
		}
	}
	if _, err := f.n.Telemetry.Index(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// advanceNode moves the node's clock ahead by d.
func (f *fixture) advanceNode(d time.Duration) {
	f.mu.Lock()
	f.skew += d
	f.mu.Unlock()
}

func (f *fixture) setNow(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

// ts is the timestamp of the k-th record as the API writes it.
func (f *fixture) ts(k int) string {
	return f.base.Add(time.Duration(k) * time.Second).UTC().Format(time.RFC3339Nano)
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type response struct {
	Status int
	Raw    []byte
	Data   map[string]any `json:"data"`
	Errors []gqlError     `json:"errors"`
}

// codes returns the extensions.code of each error, by path.
func (r *response) codes() map[string]string {
	out := map[string]string{}
	for _, e := range r.Errors {
		var p []string
		for _, s := range e.Path {
			p = append(p, fmt.Sprint(s))
		}
		out[strings.Join(p, ".")] = fmt.Sprint(e.Extensions["code"])
	}
	return out
}

func do(t *testing.T, h http.Handler, caller common.Address, query string) *response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	return doRaw(t, h, caller, body)
}

func doRaw(t *testing.T, h http.Handler, caller common.Address, body []byte) *response {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req = req.WithContext(graphql.WithCaller(req.Context(), caller))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	r := &response{Status: w.Code, Raw: w.Body.Bytes()}
	if err := json.Unmarshal(r.Raw, r); err != nil {
		t.Fatalf("answer %q: %v", r.Raw, err)
	}
	return r
}

// get returns the value at a dotted path of the data.
func (r *response) get(path string) any {
	var v any = r.Data
	for _, k := range strings.Split(path, ".") {
		if l, ok := v.([]any); ok { // a list: k is an index
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(l) {
				return nil
			}
			v = l[i]
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

const latestQuery = `{
  signalsLatest(tokenId: %d) {
    lastSeen
    speed { timestamp value }
    isIgnitionOn { timestamp value }
    powertrainType { timestamp value }
    powertrainFuelSystemSupportedFuelTypes { timestamp value }
    powertrainTransmissionTravelledDistance { timestamp value }
    currentLocationCoordinates { timestamp value { latitude longitude hdop } }
    currentLocationApproximateCoordinates { timestamp value { latitude longitude hdop } }
  }
}`

func TestTheOwnerSeesEveryLatestValue(t *testing.T) {
	f := newFixture(t)
	r := do(t, f.h, f.owner.Address, fmt.Sprintf(latestQuery, f.vehicle))
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	want := map[string]any{
		"signalsLatest.lastSeen":                                      f.ts(2),
		"signalsLatest.speed.value":                                   50.25,
		"signalsLatest.speed.timestamp":                               f.ts(1),
		"signalsLatest.isIgnitionOn.value":                            1.0,
		"signalsLatest.powertrainType.value":                          "BEV",
		"signalsLatest.powertrainFuelSystemSupportedFuelTypes.value":  `["ELECTRIC"]`,
		"signalsLatest.powertrainTransmissionTravelledDistance.value": 12345.6,
		"signalsLatest.currentLocationCoordinates.value.latitude":     lat,
		"signalsLatest.currentLocationCoordinates.value.longitude":    lon,
		"signalsLatest.currentLocationCoordinates.value.hdop":         hdop,
	}
	for path, v := range want {
		if got := r.get(path); got != v {
			t.Errorf("%s = %v, want %v", path, got, v)
		}
	}
}

func TestGoldenSignalsLatest(t *testing.T) {
	f := newFixture(t)
	r := do(t, f.h, f.owner.Address, fmt.Sprintf(latestQuery, f.vehicle))
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, r.Raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	got := pretty.String()
	for k := 0; k < 3; k++ {
		got = strings.ReplaceAll(got, f.ts(k), fmt.Sprintf("<record %d time>", k+1))
	}
	got = strings.ReplaceAll(got, fmt.Sprintf("tokenId: %d", f.vehicle), "tokenId: <vehicle>") + "\n"
	checkGolden(t, "signalsLatest.golden", got)
}

func TestAppWithSignalsOnlyIsRefusedLocationButGetsTheRest(t *testing.T) {
	f := newFixture(t)
	app := f.n.App(t, f.owner)
	f.n.Grant(t, f.owner, f.vehicle, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals)
	r := do(t, f.h, app.Address, fmt.Sprintf(latestQuery, f.vehicle))
	if got := r.get("signalsLatest.speed.value"); got != 50.25 {
		t.Errorf("speed = %v, want 50.25 (%s)", got, r.Raw)
	}
	if got := r.get("signalsLatest.powertrainType.value"); got != "BEV" {
		t.Errorf("powertrainType = %v", got)
	}
	if got := r.get("signalsLatest.currentLocationCoordinates"); got != nil {
		t.Errorf("currentLocationCoordinates = %v, want null", got)
	}
	// lastSeen counts only what the app may read: not the location's later time.
	if got := r.get("signalsLatest.lastSeen"); got != f.ts(1) {
		t.Errorf("lastSeen = %v, want %s", got, f.ts(1))
	}
	want := map[string]string{
		"signalsLatest.currentLocationCoordinates":            "FORBIDDEN",
		"signalsLatest.currentLocationApproximateCoordinates": "FORBIDDEN",
	}
	if got := r.codes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("errors %v, want %v", got, want)
	}
	for _, e := range r.Errors {
		want := ledger.PermLocation
		if strings.HasSuffix(fmt.Sprint(e.Path...), "currentLocationApproximateCoordinates") {
			want = ledger.PermLocationApproximate
		}
		if e.Extensions["permission"] != want || !strings.Contains(e.Message, want) {
			t.Errorf("error %+v does not name %q", e, want)
		}
	}

	// The listings leave the location out altogether.
	r = do(t, f.h, app.Address, fmt.Sprintf(`{ availableSignals(tokenId: %d) }`, f.vehicle))
	if got := fmt.Sprint(r.get("availableSignals")); strings.Contains(got, "Location") || !strings.Contains(got, "speed") {
		t.Errorf("availableSignals = %v", got)
	}
	r = do(t, f.h, app.Address, fmt.Sprintf(`{ signalsSnapshot(tokenId: %d) { lastSeen signals { name timestamp valueNumber valueString valueLocation { latitude longitude hdop } } } }`, f.vehicle))
	if len(r.Errors) != 0 || strings.Contains(string(r.Raw), `"name":"currentLocation`) || strings.Contains(string(r.Raw), f.ts(2)) {
		t.Errorf("signalsSnapshot leaks the location or its time: %s", r.Raw)
	}
	if got := r.get("signalsSnapshot.lastSeen"); got != f.ts(1) {
		t.Errorf("snapshot lastSeen = %v", got)
	}
}

func TestApproximateLocationIsTheH3CellCentre(t *testing.T) {
	f := newFixture(t)
	app := f.n.App(t, f.owner)
	f.n.Grant(t, f.owner, f.vehicle, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermLocationApproximate)
	r := do(t, f.h, app.Address, fmt.Sprintf(latestQuery, f.vehicle))
	centre := h3.CellToLatLng(h3.LatLngToCell(h3.NewLatLng(lat, lon), 6))
	gotLat, gotLon := r.get("signalsLatest.currentLocationApproximateCoordinates.value.latitude"), r.get("signalsLatest.currentLocationApproximateCoordinates.value.longitude")
	if gotLat != centre.Lat || gotLon != centre.Lng {
		t.Errorf("approximate = %v,%v, want the cell centre %v,%v (%s)", gotLat, gotLon, centre.Lat, centre.Lng, r.Raw)
	}
	if gotLat == lat || gotLon == lon || strings.Contains(string(r.Raw), fmt.Sprint(lat)) || strings.Contains(string(r.Raw), fmt.Sprint(lon)) {
		t.Errorf("the precise location leaks: %s", r.Raw)
	}
	if got := r.get("signalsLatest.currentLocationApproximateCoordinates.value.hdop"); got != 0.0 {
		t.Errorf("hdop = %v, want 0", got)
	}
	codes := r.codes()
	if codes["signalsLatest.currentLocationCoordinates"] != "FORBIDDEN" || codes["signalsLatest.speed"] != "FORBIDDEN" {
		t.Errorf("errors %v", codes)
	}
	r = do(t, f.h, app.Address, fmt.Sprintf(`{ signalsSnapshot(tokenId: %d) { signals { name valueLocation { latitude longitude } } } }`, f.vehicle))
	if strings.Contains(string(r.Raw), fmt.Sprint(lat)) || !strings.Contains(string(r.Raw), "currentLocationApproximateCoordinates") {
		t.Errorf("snapshot: %s", r.Raw)
	}
}

func TestGrantsThatEndedAreRefused(t *testing.T) {
	f := newFixture(t)
	expiring, revoked := f.n.App(t, f.owner), f.n.App(t, f.owner)
	expiry := time.Now().Add(time.Hour)
	f.n.Grant(t, f.owner, f.vehicle, expiring.Address, expiry.Unix(), ledger.PermSignals)
	f.n.Grant(t, f.owner, f.vehicle, revoked.Address, expiry.Unix(), ledger.PermSignals)
	q := fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { value } } }`, f.vehicle)
	if r := do(t, f.h, revoked.Address, q); r.get("signalsLatest.speed.value") != 50.25 {
		t.Fatalf("before revocation: %s", r.Raw)
	}
	tx := &ledger.Tx{Type: ledger.TypeRevoke, App: revoked.Address}
	tx.VehicleID.SetUint64(f.vehicle)
	f.n.Submit(t, tx, f.owner)
	f.setNow(expiry.Add(time.Second))
	for name, app := range map[string]testnode.Key{"expired": expiring, "revoked": revoked} {
		r := do(t, f.h, app.Address, q)
		if got := r.codes()["signalsLatest.speed"]; got != "FORBIDDEN" || r.get("signalsLatest.speed") != nil {
			t.Errorf("%s grant: %s", name, r.Raw)
		}
		r = do(t, f.h, app.Address, fmt.Sprintf(`{ availableSignals(tokenId: %d) }`, f.vehicle))
		if got := r.codes()["availableSignals"]; got != "FORBIDDEN" {
			t.Errorf("%s grant, availableSignals: %s", name, r.Raw)
		}
	}
}

func TestCallersWithoutAccessGetStableCodes(t *testing.T) {
	f := newFixture(t)
	stranger := testnode.NewKey(t)
	for _, tc := range []struct {
		name   string
		caller common.Address
		query  string
		code   string
	}{
		{"nobody signed in", common.Address{}, fmt.Sprintf(latestQuery, f.vehicle), "UNAUTHENTICATED"},
		{"nobody signed in lists", common.Address{}, fmt.Sprintf(`{ availableSignals(tokenId: %d) }`, f.vehicle), "UNAUTHENTICATED"},
		{"an unknown vehicle", f.owner.Address, fmt.Sprintf(latestQuery, f.vehicle+100), "NOT_FOUND"},
		{"an unknown vehicle snapshot", f.owner.Address, fmt.Sprintf(`{ signalsSnapshot(tokenId: %d) { lastSeen } }`, f.vehicle+100), "NOT_FOUND"},
		{"a negative tokenId", f.owner.Address, `{ signalsLatest(tokenId: -1) { lastSeen } }`, "BAD_REQUEST"},
		{"a malformed source", f.owner.Address, fmt.Sprintf(`{ signalsLatest(tokenId: %d, filter: {source: "0x1"}) { lastSeen } }`, f.vehicle), "BAD_REQUEST"},
		{"a stranger lists", stranger.Address, fmt.Sprintf(`{ signalsSnapshot(tokenId: %d) { lastSeen } }`, f.vehicle), "FORBIDDEN"},
		{"a field that does not exist", f.owner.Address, `{ signalsLatest(tokenId: 1) { nope } }`, "BAD_REQUEST"},
		{"a syntax error", f.owner.Address, `{ signalsLatest(`, "BAD_REQUEST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, do(t, f.h, tc.caller, tc.query), tc.code, "50.25")
		})
	}
}

func TestTheBuyerDoesNotSeeDataFromBeforeTheSale(t *testing.T) {
	f := newFixture(t)
	buyer := testnode.NewKey(t)
	f.advanceNode(10 * time.Second) // the sale comes after the records
	tx := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
	tx.VehicleID.SetUint64(f.vehicle)
	f.n.Submit(t, tx, f.owner)
	r := do(t, f.h, buyer.Address, fmt.Sprintf(latestQuery, f.vehicle))
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	sl, _ := r.get("signalsLatest").(map[string]any)
	for k, v := range sl {
		if v != nil {
			t.Errorf("the buyer sees %s = %v from before the sale", k, v)
		}
	}
	r = do(t, f.h, buyer.Address, fmt.Sprintf(`{ availableSignals(tokenId: %d) signalsSnapshot(tokenId: %d) { lastSeen signals { name } } }`, f.vehicle, f.vehicle))
	if fmt.Sprint(r.get("availableSignals")) != "[]" || r.get("signalsSnapshot.lastSeen") != nil || fmt.Sprint(r.get("signalsSnapshot.signals")) != "[]" {
		t.Errorf("the buyer sees listings from before the sale: %s", r.Raw)
	}
	// And the seller no longer sees anything.
	if r := do(t, f.h, f.owner.Address, fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { value } } }`, f.vehicle)); r.codes()["signalsLatest.speed"] != "FORBIDDEN" {
		t.Errorf("the seller: %s", r.Raw)
	}
}

// A query as a DIMO client writes it runs unchanged.
func TestDIMOQueryRunsUnchanged(t *testing.T) {
	f := newFixture(t)
	q := `query GetLatest($tokenId: Int!) {
  signalsLatest(tokenId: $tokenId) {
    speed { timestamp value }
    powertrainTransmissionTravelledDistance { timestamp value }
    currentLocationCoordinates { timestamp value { latitude longitude } }
    lastSeen
  }
}`
	body, _ := json.Marshal(map[string]any{"query": q, "operationName": "GetLatest", "variables": map[string]any{"tokenId": f.vehicle}})
	r := doRaw(t, f.h, f.owner.Address, body)
	if len(r.Errors) != 0 || r.get("signalsLatest.powertrainTransmissionTravelledDistance.value") != 12345.6 ||
		r.get("signalsLatest.currentLocationCoordinates.value.latitude") != lat {
		t.Errorf("%s", r.Raw)
	}
}

func TestLimits(t *testing.T) {
	f := newFixture(t)
	// The standard introspection query (with its long ofType chains) passes.
	intro := `{ __schema { types { name fields { name args { name type { ...T } } type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }`
	if r := do(t, f.h, common.Address{}, intro); len(r.Errors) != 0 {
		t.Errorf("introspection refused: %s", r.Raw[:min(len(r.Raw), 300)])
	}
	for name, q := range map[string]string{
		"too deep":                  `{ __schema { queryType { fields { type { fields { type { interfaces { fields { type { possibleTypes { name } } } } } } } } } } }`,
		"introspection fanning out": `{ __schema { types { fields { args { type { interfaces { name } } } } } } }`,
	} {
		r := do(t, f.h, common.Address{}, q)
		if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "TOO_COMPLEX" || r.Data != nil {
			t.Errorf("%s: %s", name, r.Raw[:min(len(r.Raw), 300)])
		}
	}

	var many strings.Builder
	many.WriteString("{")
	for i := 0; i < 80; i++ {
		fmt.Fprintf(&many, ` a%d: signalsLatest(tokenId: %d) { speed { timestamp value } isIgnitionOn { timestamp value } powertrainType { timestamp value } currentLocationCoordinates { timestamp value { latitude longitude hdop } } }`, i, f.vehicle)
	}
	many.WriteString("}")
	r := do(t, f.h, f.owner.Address, many.String())
	if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "TOO_COMPLEX" || r.Data != nil {
		t.Errorf("a too complex query: %s", r.Raw[:min(len(r.Raw), 300)])
	}

	big := `{ signalsLatest(tokenId: 1) { lastSeen } }` + strings.Repeat(" ", graphql.MaxBodyBytes)
	r = do(t, f.h, f.owner.Address, big)
	if r.Status != http.StatusRequestEntityTooLarge || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "BAD_REQUEST" {
		t.Errorf("a too large body: %d %s", r.Status, r.Raw)
	}
}

func TestGET(t *testing.T) {
	f := newFixture(t)
	req := httptest.NewRequest(http.MethodGet, "/graphql?query="+url.QueryEscape(fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { value } } }`, f.vehicle)), nil)
	req = req.WithContext(graphql.WithCaller(req.Context(), f.owner.Address))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	if !strings.Contains(w.Body.String(), `"value":50.25`) {
		t.Errorf("GET: %s", w.Body)
	}
}

// checkGolden compares got with testdata/name, rewriting the file first with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("response differs from %s (run with -update to accept):\n%s", golden, got)
	}
}

// refused fails t unless r is refused with code in every error and holds nothing of leak.
func refused(t *testing.T, r *response, code, leak string) {
	t.Helper()
	if len(r.Errors) == 0 {
		t.Fatalf("no error: %s", r.Raw)
	}
	for _, e := range r.Errors {
		if e.Extensions["code"] != code {
			t.Errorf("code %v, want %s: %s", e.Extensions["code"], code, r.Raw)
		}
	}
	if strings.Contains(string(r.Raw), leak) {
		t.Errorf("data leaked: %s", r.Raw)
	}
}
