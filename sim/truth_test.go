package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/glovebox/glovebox/client"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// week is a node holding a simulated week of a small fleet, posted as signed records through the API.
type week struct {
	n          *testnode.Node
	fleet      *Fleet
	specs      []Spec
	start, end time.Time
	tokens     []string // the owners' bearer tokens, by fleet index
}

// newWeek simulates days of the vehicles of Specs(seed, 5) at the given indexes (index 4 is electric),
// at one tick a second, with parked cars reporting every five minutes as a real dongle does, from the
// coming Monday: the node's clock follows the simulated one while the records are posted, and ends an hour after
// the last.
func newWeek(t *testing.T, seed uint64, days int, indexes ...int) *week {
	t.Helper()
	var ahead atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	n := testnode.Start(t, testnode.Options{Now: clock})
	all := Specs(seed, 5)
	var specs []Spec
	for _, i := range indexes {
		specs = append(specs, all[i])
	}
	if _, err := Setup(context.Background(), n.Client, specs, slog.New(slog.NewTextHandler(io.Discard, nil)), nil); err != nil {
		t.Fatal(err)
	}
	// The week starts on the coming Monday at midnight UTC, so that the simulated days (workdays, the
	// weekend, the hours) are the same whenever the test runs.
	start := time.Now().UTC().Add(time.Minute).Truncate(24 * time.Hour).Add(24 * time.Hour)
	for start.Weekday() != time.Monday {
		start = start.Add(24 * time.Hour)
	}
	w := &week{n: n, specs: specs, start: start}
	fleet, err := NewFleetFromSpecs(seed, specs, w.start)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range fleet.vs {
		v.parkedEvery = 300
	}
	w.fleet = fleet
	var subs []telemetry.Submission
	post := func() {
		ahead.Store(int64(time.Until(fleet.Now().Add(time.Minute))))
		for len(subs) > 0 {
			k := min(len(subs), 1000)
			res, err := n.Client.PostEvents(context.Background(), subs[:k])
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Status != telemetry.StatusAccepted {
					t.Fatalf("record %d: %+v", i, r)
				}
			}
			subs = subs[k:]
		}
	}
	for range days * 86400 {
		subs = append(subs, Submissions(fleet.Step(time.Second))...)
		if len(subs) >= 5000 {
			post()
		}
	}
	post()
	w.end = fleet.Now()
	ahead.Store(int64(time.Until(w.end.Add(time.Hour))))
	if _, err := n.Telemetry.Index(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		tok, err := client.New(n.URL).SignIn(context.Background(), s.OwnerKey)
		if err != nil {
			t.Fatal(err)
		}
		w.tokens = append(w.tokens, tok.AccessToken)
	}
	return w
}

// detected is one segment as GraphQL answers it.
type detected struct {
	Start struct{ Timestamp time.Time }
	End   *struct{ Timestamp time.Time }
}

// query asks GraphQL, as vehicle i's owner, and decodes data into out.
func (w *week) query(t *testing.T, i int, q string, out any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": q})
	req, _ := http.NewRequest("POST", w.n.URL+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+w.tokens[i])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		Data   json.RawMessage
		Errors []any
	}
	if err := json.Unmarshal(raw, &r); err != nil || resp.StatusCode != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("GraphQL: %d %s", resp.StatusCode, raw)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		t.Fatal(err)
	}
}

// segments reads vehicle i's segments of mechanism (with config, GraphQL syntax or "") over the week.
func (w *week) segments(t *testing.T, i int, mechanism, config string) []detected {
	t.Helper()
	if config != "" {
		config = ", config: " + config
	}
	var out struct{ Segments []detected }
	w.query(t, i, fmt.Sprintf(`{ segments(tokenId: %d, from: %q, to: %q, mechanism: %s%s, limit: 200) { start { timestamp } end { timestamp } } }`,
		w.specs[i].VehicleID, w.start.Format(time.RFC3339), w.end.Format(time.RFC3339), mechanism, config), &out)
	return out.Segments
}

// dimoTrips applies DIMO's default segment configuration to true spans: spans less than 300 s apart
// are one, and one shorter than 240 s is none.
func dimoTrips(spans []Span) []Span {
	var out []Span
	for _, s := range spans {
		if n := len(out); n > 0 && !out[n-1].End.IsZero() && s.Start.Sub(out[n-1].End) < 300*time.Second {
			out[n-1].End = s.End
			continue
		}
		out = append(out, s)
	}
	kept := out[:0]
	for _, s := range out {
		if s.End.IsZero() || s.End.Sub(s.Start) >= 240*time.Second {
			kept = append(kept, s)
		}
	}
	return kept
}

// score matches detected segments to true spans whose start and end are each within tol of the
// segment's, one to one in time order. Spans that had not ended by the end of the week are left out
// of both sides.
func score(truth []Span, got []detected, end time.Time, tol time.Duration) (matched, wantN, gotN int, misses []string) {
	var want []Span
	for _, s := range truth {
		if !s.End.IsZero() && s.End.Before(end.Add(-10*time.Minute)) {
			want = append(want, s)
		}
	}
	near := func(a, b time.Time) bool { return math.Abs(float64(a.Sub(b))) <= float64(tol) }
	used := make([]bool, len(got))
	for _, s := range want {
		ok := false
		for k, g := range got {
			if !used[k] && g.End != nil && near(g.Start.Timestamp, s.Start) && near(g.End.Timestamp, s.End) {
				used[k], ok = true, true
				matched++
				break
			}
		}
		if !ok {
			misses = append(misses, fmt.Sprintf("missed %s–%s", s.Start.Format(time.RFC3339), s.End.Format(time.RFC3339)))
		}
	}
	for k, g := range got {
		if g.End == nil || !g.End.Timestamp.Before(end.Add(-10*time.Minute)) {
			continue
		}
		gotN++
		if !used[k] {
			misses = append(misses, fmt.Sprintf("spurious %s–%s", g.Start.Timestamp.Format(time.RFC3339), g.End.Timestamp.Format(time.RFC3339)))
		}
	}
	return matched, len(want), gotN, misses
}

// TestDetectionFindsTheSimulatorsWeek holds trip, refuel, recharge and idling detection and driving
// events to the simulator's ground truth over a week of three cars (two with fuel, one electric).
// Trips: start and end within a minute, precision and recall at least 0.95 for ignitionDetection and
// frequencyAnalysis (DIMO's default configuration).
func TestDetectionFindsTheSimulatorsWeek(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated week through a node")
	}
	w := newWeek(t, 7, 7, 0, 1, 4)
	type tally struct{ matched, want, got int }
	sum := map[string]*tally{}
	for i := range w.specs {
		truth := w.fleet.Truth(i)
		check := func(kind string, spans []Span, got []detected, tol time.Duration) {
			m, wn, gn, misses := score(spans, got, w.end, tol)
			s := sum[kind]
			if s == nil {
				s = &tally{}
				sum[kind] = s
			}
			s.matched, s.want, s.got = s.matched+m, s.want+wn, s.got+gn
			if len(misses) > 0 {
				t.Logf("vehicle %d %s: %s", i, kind, strings.Join(misses, "; "))
			}
		}
		// DIMO's defaults: ignition off for less than maxGapSeconds (300) does not end a trip, and trips
		// shorter than minSegmentDurationSeconds (240) are not reported.
		check("ignitionDetection", dimoTrips(truth.Trips), w.segments(t, i, "ignitionDetection", ""), time.Minute)
		// Frequency analysis sees when a car reports every second: from unlocking to locking it. A parked
		// car still reports a dozen values every five minutes, so a minute is active from 60 values on.
		check("frequencyAnalysis", dimoTrips(truth.Active), w.segments(t, i, "frequencyAnalysis", "{signalCountThreshold: 60}"), time.Minute)
		if w.specs[i].Powertrain == Electric {
			// A session counts from the plug-in's first rise to the last; the stop around it is longer.
			check("recharge", truth.Charges, w.segments(t, i, "recharge", ""), 10*time.Minute)
		} else {
			check("refuel", truth.Refuels, w.segments(t, i, "refuel", ""), 2*time.Minute)
			check("idling", truth.Idles, w.segments(t, i, "idling", "{minSegmentDurationSeconds: 120}"), time.Minute)
		}

		// Every surprise braking is an event: reported by a dongle, and derived from speed for all.
		var evs struct {
			Events []struct {
				Timestamp time.Time
				Name      string
				Source    string
			}
		}
		w.query(t, i, fmt.Sprintf(`{ events(tokenId: %d, from: %q, to: %q) { timestamp name source } }`,
			w.specs[i].VehicleID, w.start.Format(time.RFC3339), w.end.Format(time.RFC3339)), &evs)
		for _, b := range truth.Brakings {
			reported, derived := false, false
			for _, e := range evs.Events {
				d := e.Timestamp.Sub(b.Timestamp)
				switch {
				case e.Source == w.specs[i].Device.Hex() && e.Name == b.Name && d == 0:
					reported = true
				case e.Source == telemetry.DerivedSource && e.Name == telemetry.EventHarshBraking && d > -2*time.Second && d < b.Duration:
					derived = true
				}
			}
			if !derived || reported != (w.specs[i].DeviceKind == ledger.KindHardware) {
				t.Errorf("vehicle %d: braking %s at %s: derived %v, reported %v", i, b.Name, b.Timestamp, derived, reported)
			}
		}
		if len(truth.Brakings) == 0 {
			t.Errorf("vehicle %d braked hard not once in a week", i)
		}
	}
	for kind, s := range sum {
		precision, recall := float64(s.matched)/float64(max(s.got, 1)), float64(s.matched)/float64(max(s.want, 1))
		t.Logf("%s: %d true, %d detected, %d matched: precision %.3f, recall %.3f", kind, s.want, s.got, s.matched, precision, recall)
		if s.want == 0 {
			t.Errorf("%s: the week holds nothing to find", kind)
		}
		floor := 0.95
		if kind != "ignitionDetection" && kind != "frequencyAnalysis" {
			floor = 0.9 // the issue asks that they be found; a stop can hide in a coverage gap
		}
		if precision < floor || recall < floor {
			t.Errorf("%s: precision %.3f, recall %.3f, want at least %.2f", kind, precision, recall, floor)
		}
	}
}
