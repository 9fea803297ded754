package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/bench"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/webhook"
)

// drive is a node holding a simulated car's drives of some hours of the last day, measured one second
// apart and posted after its trip and event webhooks were active, and what the GraphQL API reads of them.
type drive struct {
	f          *fixture
	start, end time.Time
	rcv        *receiver
	hooks      map[string]string // trigger → webhook id
}

// segmentsAndEvents are the trips (ignitionDetection) and driving events GraphQL reads of the drive.
type segmentsAndEvents struct {
	Segments []struct {
		ID        string
		Start     struct{ Timestamp time.Time }
		End       *struct{ Timestamp time.Time }
		IsOngoing bool
	}
	Events []struct {
		Timestamp  time.Time
		Name       string
		Source     string
		DurationNs int64
	}
}

func newDrive(t *testing.T, seed uint64, hours int) *drive {
	start := busiestHours(t, seed, hours, time.Now())
	// The node's clock stands a minute before the drive while the fleet is set up.
	var behind atomic.Int64
	behind.Store(int64(time.Since(start.Add(-time.Minute))))
	clock := func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }
	opts := testnode.Options{Now: clock}
	opts.Webhooks.Policy = webhook.Policy{AllowHTTP: true, AllowPrivate: true}
	opts.Webhooks.Tick, opts.Webhooks.Heartbeat = 20*time.Millisecond, -1
	n := testnode.Start(t, opts)
	specs := sim.Specs(seed, 1)
	if _, err := sim.Setup(context.Background(), n.Client, specs, slog.New(slog.NewTextHandler(io.Discard, nil)), nil); err != nil {
		t.Fatal(err)
	}
	owner := testnode.Key{Key: specs[0].OwnerKey, Address: specs[0].Owner}
	f := &fixture{n: n, owner: owner, vehicle: specs[0].VehicleID, dev: testnode.Key{Key: specs[0].DeviceKey, Address: specs[0].Device}}
	f.appKey = n.App(t, owner)
	n.Grant(t, owner, f.vehicle, f.appKey.Address, time.Now().Add(24*time.Hour).Unix(), ledger.PermInsights, ledger.PermStream)
	d := &drive{f: f, start: start, hooks: map[string]string{}}
	fleet, err := sim.NewFleetFromSpecs(seed, specs, d.start)
	if err != nil {
		t.Fatal(err)
	}
	var subs []telemetry.Submission
	for range hours * 3600 {
		subs = append(subs, sim.Submissions(fleet.Step(time.Second))...)
	}
	d.end = fleet.Now()
	// The device also reports a harsh braking at a time the test knows.
	ev, err := telemetry.NewEventsRecord(f.dev.Address, f.vehicle, "braking-1", d.end.Add(-30*time.Minute), []telemetry.EventItem{
		{Name: telemetry.EventHarshBraking, Timestamp: d.end.Add(-30 * time.Minute), Duration: 1500 * time.Millisecond,
			Metadata: map[string]any{"peakG": 0.52}}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := telemetry.Sign(ev, f.dev.Key)
	if err != nil {
		t.Fatal(err)
	}
	subs = append(subs, sub)
	behind.Store(0)
	if f.token, err = bench.SignIn(context.Background(), n.URL, f.appKey.Key); err != nil {
		t.Fatal(err)
	}
	if f.owned, err = bench.SignIn(context.Background(), n.URL, owner.Key); err != nil {
		t.Fatal(err)
	}
	f.hooks = n.URL + "/v1/apps/" + f.appKey.Address.Hex() + "/webhooks"
	d.rcv = newReceiver(t)
	for _, trig := range []map[string]any{{"kind": "trip"}, {"kind": "event", "name": telemetry.EventHarshBraking},
		{"kind": "event", "name": telemetry.EventHarshAcceleration}} {
		v := f.create(t, map[string]any{"url": d.rcv.srv.URL, "vehicles": []uint64{f.vehicle}, "trigger": trig})
		d.hooks[fmt.Sprint(trig["kind"], trig["name"])] = v.ID
	}
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
	if _, err := n.Telemetry.Index(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// busiestHours returns the whole hour, between 22 hours before now (transactions may be signed at most
// 24 hours ahead of the node's clock, and the client signs them an hour ahead) and hours before now, from
// which the simulated car of seed ends the most trips (then drives longest) in the hours after, with
// time for the trips to be certain to have ended: how much the car drives depends on its local time of
// day and the weekday, and the tests need trips and driving events whenever they run.
func busiestHours(t *testing.T, seed uint64, hours int, now time.Time) time.Time {
	t.Helper()
	specs := sim.Specs(seed, 1)
	specs[0].VehicleID = 1
	var best time.Time
	var longest time.Duration
	ended := 0
	for s := now.Add(-22 * time.Hour).Truncate(time.Hour).Add(time.Hour); now.Sub(s) > time.Duration(hours)*time.Hour+time.Minute; s = s.Add(time.Hour) {
		fleet, err := sim.NewFleetFromSpecs(seed, specs, s)
		if err != nil {
			t.Fatal(err)
		}
		fleet.Sign = false
		for range hours * 3600 {
			fleet.Step(time.Second)
		}
		certain := fleet.Now().Add(-webhook.TripGap - 10*time.Minute)
		n, driven := 0, time.Duration(0)
		for _, trip := range fleet.Truth(0).Trips {
			if !trip.End.IsZero() && trip.End.Before(certain) {
				n++
			}
			if trip.End.IsZero() {
				trip.End = fleet.Now()
			}
			driven += trip.End.Sub(trip.Start)
		}
		if n > ended || n == ended && driven > longest {
			best, ended, longest = s, n, driven
		}
	}
	if best.IsZero() {
		t.Fatalf("the simulated car of seed %d does not drive in any %d hours of the day before %s", seed, hours, now)
	}
	return best
}

// read asks GraphQL, as the owner, for the trips and events of the drive.
func (d *drive) read(t *testing.T) segmentsAndEvents {
	from, to := d.start.Format(time.RFC3339), d.end.Add(time.Second).Format(time.RFC3339)
	q := fmt.Sprintf(`{ segments(tokenId: %[1]d, from: %[2]q, to: %[3]q, mechanism: ignitionDetection, config: {minSegmentDurationSeconds: 60}, limit: 200) {
  id start { timestamp } end { timestamp } isOngoing }
  events(tokenId: %[1]d, from: %[2]q, to: %[3]q) { timestamp name source durationNs } }`, d.f.vehicle, from, to)
	code, body := do(t, "POST", d.f.n.URL+"/graphql", d.f.owned, map[string]string{"query": q})
	var r struct {
		Data   segmentsAndEvents
		Errors []any
	}
	if err := json.Unmarshal(body, &r); err != nil || code != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("GraphQL: %d %s", code, body)
	}
	return r.Data
}

func TestTripTriggersAnnounceTheSimulatorsTripsAsSegmentsFindThem(t *testing.T) {
	d := newDrive(t, 21, 2)
	got := d.read(t)
	gap := webhook.TripGap
	// A trip is certain to have ended once a value came the gap after its end: the parked car reports
	// every few minutes, so those that ended early enough before the drive's end.
	certain := d.end.Add(-gap - 10*time.Minute)
	type trip struct {
		start time.Time
		end   *time.Time
	}
	want := map[string]trip{}
	for _, s := range got.Segments {
		if s.IsOngoing || s.End.Timestamp.After(certain) {
			continue
		}
		end := s.End.Timestamp
		want[s.ID] = trip{s.Start.Timestamp, &end}
	}
	if len(want) < 2 {
		t.Fatalf("the simulator drove %d trips that ended in %s: %+v", len(want), d.end.Sub(d.start), got.Segments)
	}
	t.Logf("%d segments of which %d certainly ended", len(got.Segments), len(want))
	started := map[string]webhook.TripData{}
	ended := map[string]webhook.TripData{}
	// Wait for the trips GraphQL found to be announced, then read everything that came.
	for n := 1; ; n++ {
		d.rcv.waitFor(t, webhook.TypeTripEnded, n)
		all := d.rcv.requests(webhook.TypeTripEnded)
		done := 0
		for _, r := range all {
			var data webhook.TripData
			json.Unmarshal(r.event.Data, &data)
			if _, ok := want[data.TripID]; ok {
				done++
			}
		}
		if done >= len(want) {
			break
		}
		n = len(all)
	}
	for typ, m := range map[string]map[string]webhook.TripData{webhook.TypeTripStarted: started, webhook.TypeTripEnded: ended} {
		for _, r := range d.rcv.requests(typ) {
			var data webhook.TripData
			if err := json.Unmarshal(r.event.Data, &data); err != nil {
				t.Fatal(err)
			}
			if _, dup := m[data.TripID]; dup {
				t.Errorf("trip %s announced %s twice", data.TripID, typ)
			}
			m[data.TripID] = data
			if r.event.Subject != fmt.Sprint(d.f.vehicle) || data.VehicleID != d.f.vehicle || data.Mechanism != "ignitionDetection" ||
				data.WebhookID != d.hooks["trip<nil>"] {
				t.Errorf("a %s event: %s", typ, r.body)
			}
		}
	}
	for id, w := range want {
		s, e := started[id], ended[id]
		if !s.Start.Equal(w.start) || !e.Start.Equal(w.start) || e.End == nil || !e.End.Equal(*w.end) ||
			e.Duration != int(w.end.Sub(w.start).Seconds()) {
			t.Errorf("segment %s (%s to %s) was announced started %+v, ended %+v", id, w.start, w.end, s, e)
		}
	}
	// Every trip the webhook ended that lasted as long as segments ask for is a segment.
	for id, e := range ended {
		if _, ok := started[id]; !ok {
			t.Errorf("trip %s ended without starting", id)
		}
		if _, ok := want[id]; !ok && e.Duration >= 60 && e.End.Before(certain) {
			t.Errorf("trip %+v is no segment", e)
		}
	}
}

func TestEventTriggersDeliverEveryDrivingEventOfTheirNameWithTheStoredValues(t *testing.T) {
	d := newDrive(t, 32, 1)
	got := d.read(t)
	want := map[string][]string{}
	for _, e := range got.Events {
		want[e.Name] = append(want[e.Name], fmt.Sprintf("%s %s %d", e.Timestamp.Format(time.RFC3339Nano), e.Source, e.DurationNs))
	}
	if len(want[telemetry.EventHarshBraking]) == 0 || len(want[telemetry.EventHarshAcceleration]) == 0 {
		t.Fatalf("the simulator's drive shows no harsh braking or acceleration: %v", want)
	}
	t.Logf("stored events: %v", want)
	total := len(want[telemetry.EventHarshBraking]) + len(want[telemetry.EventHarshAcceleration])
	reqs := d.rcv.waitFor(t, webhook.TypeEvent, total)
	delivered := map[string][]string{}
	for _, r := range reqs {
		var data webhook.EventData
		if err := json.Unmarshal(r.event.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.WebhookID != d.hooks["event"+data.Event.Name] || data.VehicleID != d.f.vehicle || !r.event.Time.Equal(data.Event.Timestamp) ||
			(data.Event.Source == d.f.dev.Address.Hex()) != (string(data.Event.Metadata) == `{"peakG":0.52}`) {
			t.Errorf("an event went to the wrong webhook or vehicle: %s", r.body)
		}
		delivered[data.Event.Name] = append(delivered[data.Event.Name], fmt.Sprintf("%s %s %d",
			data.Event.Timestamp.Format(time.RFC3339Nano), data.Event.Source, data.Event.DurationNs))
	}
	for name, w := range want {
		g := delivered[name]
		sort.Strings(g)
		sort.Strings(w)
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s: delivered\n%v\nstored\n%v", name, g, w)
		}
	}
}
