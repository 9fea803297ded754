package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/telemetry"
)

// TestTripsAndEventsOnPostgreSQL reads trips (segments, dailyActivity) and driving events from a cluster
// process whose telemetry is in PostgreSQL: a three-minute drive at one record a second, with a hard
// braking the node derives and a cornering the device reports.
func TestTripsAndEventsOnPostgreSQL(t *testing.T) {
	ctx := context.Background()
	var ahead atomic.Int64
	p := startPGCluster(t, node.ClusterConfig{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	owner, dev, car := p.car(t)

	t0 := time.Now().Add(2 * time.Second).Truncate(time.Second)
	ahead.Store(int64(10 * time.Minute)) // the drive is over: its records are not ahead of the node's clock
	var subs []telemetry.Submission
	odo := 5000.0
	for s := 0; s <= 180; s++ {
		at := t0.Add(time.Duration(s) * time.Second)
		kph := 0.0
		switch {
		case s <= 20:
			kph = 3 * float64(s) // 3 km/h per second: not harsh
		case s < 100:
			kph = 60
		case s <= 102:
			kph = 60 - 15*float64(s-100) // 15 km/h per second: harsh braking
		case s < 170:
			kph = 30
		}
		odo += kph / 3600
		signals := []telemetry.EventSignal{
			{Name: "speed", Timestamp: at, Value: kph},
			{Name: "powertrainTransmissionTravelledDistance", Timestamp: at, Value: odo},
		}
		if s == 0 || s == 180 {
			signals = append(signals, telemetry.EventSignal{Name: "isIgnitionOn", Timestamp: at, Value: s == 0})
		}
		subs = append(subs, testnode.Record(t, dev, car, fmt.Sprint("drive-", s), at, signals...))
	}
	ev, err := telemetry.NewEventsRecord(dev.Address, car, "corner-1", t0.Add(50*time.Second), []telemetry.EventItem{
		{Name: "behavior.harshCornering", Timestamp: t0.Add(50 * time.Second), Duration: 800 * time.Millisecond, Metadata: map[string]any{"lateralG": 0.45}}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := telemetry.Sign(ev, dev.Key)
	if err != nil {
		t.Fatal(err)
	}
	subs = append(subs, sub)
	res, err := p.cl.PostEvents(ctx, subs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Status != telemetry.StatusAccepted {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	tok, err := p.cl.SignIn(ctx, owner.Key)
	if err != nil {
		t.Fatal(err)
	}
	from, to := t0.Add(-time.Hour).Format(time.RFC3339), t0.Add(9*time.Minute).Format(time.RFC3339)
	q := fmt.Sprintf(`{
  ignition: segments(tokenId: %[1]d, from: %[2]q, to: %[3]q, mechanism: ignitionDetection, config: {minSegmentDurationSeconds: 60}) {
    start { timestamp } end { timestamp } duration isOngoing signals { name agg value } eventCounts { name count } }
  frequency: segments(tokenId: %[1]d, from: %[2]q, to: %[3]q, mechanism: frequencyAnalysis, config: {minSegmentDurationSeconds: 60}) {
    start { timestamp } end { timestamp } }
  events(tokenId: %[1]d, from: %[2]q, to: %[3]q) { timestamp name source durationNs }
  dailyActivity(tokenId: %[1]d, from: %[2]q, to: %[3]q, mechanism: ignitionDetection, config: {minSegmentDurationSeconds: 60}) { segmentCount duration }
}`, car, from, to)
	type stamp struct{ Timestamp time.Time }
	var got struct {
		Ignition []struct {
			Start, End stamp
			Duration   int
			IsOngoing  bool
			Signals    []struct {
				Name, Agg string
				Value     float64
			}
			EventCounts []struct {
				Name  string
				Count int
			}
		}
		Frequency []struct{ Start, End stamp }
		Events    []struct {
			Timestamp    time.Time
			Name, Source string
			DurationNs   int64
		}
		DailyActivity []struct{ SegmentCount, Duration int }
	}
	// Records reach PostgreSQL through the stream, and the derived event after its last speed value.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r, err := p.cl.GraphQL(ctx, tok.AccessToken, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Errors) > 0 {
			t.Fatalf("%+v", r.Errors)
		}
		if err := json.Unmarshal(r.Data, &got); err != nil {
			t.Fatal(err)
		}
		if (len(got.Ignition) == 1 && len(got.Events) == 2) || time.Now().After(deadline) {
			break
		}
	}
	if len(got.Ignition) != 1 {
		t.Fatalf("ignition segments: %+v", got.Ignition)
	}
	s := got.Ignition[0]
	if !s.Start.Timestamp.Equal(t0) || !s.End.Timestamp.Equal(t0.Add(180*time.Second)) || s.Duration != 180 || s.IsOngoing {
		t.Errorf("ignition segment %+v", s)
	}
	sums := map[string]float64{}
	for _, v := range s.Signals {
		sums[v.Name+" "+v.Agg] = v.Value
	}
	if sums["speed MAX"] != 60 || sums["powertrainTransmissionTravelledDistance FIRST"] != 5000 {
		t.Errorf("segment signals %+v", s.Signals)
	}
	counts := map[string]int{}
	for _, c := range s.EventCounts {
		counts[c.Name] = c.Count
	}
	if counts["behavior.harshBraking"] != 1 || counts["behavior.harshCornering"] != 1 {
		t.Errorf("segment event counts %+v", s.EventCounts)
	}
	// Frequency analysis works in whole minutes, active from 10 values (five records) on.
	first, last := t0.Truncate(time.Minute), t0.Add(180*time.Second).Truncate(time.Minute)
	if t0.Second() > 55 {
		first = first.Add(time.Minute)
	}
	if t0.Second() < 4 {
		last = last.Add(-time.Minute)
	}
	if len(got.Frequency) != 1 || !got.Frequency[0].Start.Timestamp.Equal(first) || !got.Frequency[0].End.Timestamp.Equal(last.Add(time.Minute)) {
		t.Errorf("frequency segments %+v, want %s to %s", got.Frequency, first, last.Add(time.Minute))
	}
	want := fmt.Sprint([]any{t0.Add(50 * time.Second), "behavior.harshCornering", dev.Address.Hex(), int64(800e6)}) +
		fmt.Sprint([]any{t0.Add(100 * time.Second), "behavior.harshBraking", telemetry.DerivedSource, int64(2e9)})
	var evs string
	for _, e := range got.Events {
		evs += fmt.Sprint([]any{e.Timestamp, e.Name, e.Source, e.DurationNs})
	}
	if evs != want {
		t.Errorf("events %s, want %s", evs, want)
	}
	total, n := 0, 0
	for _, d := range got.DailyActivity {
		total, n = total+d.Duration, n+d.SegmentCount
	}
	if total != 180 || n < 1 {
		t.Errorf("daily activity %+v", got.DailyActivity)
	}
}
