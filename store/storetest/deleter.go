package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
)

// Deleting is a telemetry store under test for deletion.
type Deleting interface {
	Reader
	telemetry.Deleter
	telemetry.Events
}

// The deletion suite's data set: vehicle 1 has a record with one speed value every 10 s for three hours
// from delT0 (1080 records, speed i/10 for the i-th), and a record of one harsh-braking event every 30 minutes (6
// records); vehicle 2 a speed record every minute over the same hours (180).
var delT0 = time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)

func delAt(d time.Duration) int64 { return delT0.Add(d).UnixMilli() }

// TestDeleter runs the deletion cases on one store: open returns a new, empty store; reopen closes s
// and opens the same data again (a restart after a crash); settle brings the derived tables up to date
// (indexing and roll-ups), nil when Write alone suffices.
func TestDeleter(t *testing.T, open func(t *testing.T) Deleting, reopen func(t *testing.T, s Deleting) Deleting,
	settle func(ctx context.Context, s Deleting) error) {
	ctx := context.Background()
	top := t
	a, b := common.HexToAddress("0x00000000000000000000000000000000000000aa"), common.HexToAddress("0x00000000000000000000000000000000000000bb")
	s := open(t)
	var recs []*telemetry.Record
	for i := range 1080 {
		at := delAt(time.Duration(i) * 10 * time.Second)
		ev, err := telemetry.NewEvent(a, 1, fmt.Sprintf("s%d", i), time.UnixMilli(at),
			[]telemetry.EventSignal{{Name: "speed", Timestamp: time.UnixMilli(at), Value: float64(i) / 10}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := telemetry.DefaultCatalog.Parse(&telemetry.Submission{Event: ev, Signature: make([]byte, 65)}, at+1000)
		if err != nil {
			t.Fatal(err)
		}
		r.Received, r.Signature[64] = at+5, 27
		recs = append(recs, r)
	}
	for i := range 6 {
		at := delT0.Add(time.Duration(i) * 30 * time.Minute)
		recs = append(recs, EventsRecord(t, a, 1, fmt.Sprintf("e%d", i), at.UnixMilli()+3,
			telemetry.EventItem{Name: "behavior.harshBraking", Timestamp: at.Add(3 * time.Millisecond), Duration: time.Second}))
	}
	for i := range 180 {
		r := Record(t, b, fmt.Sprintf("v2-%d", i), delAt(time.Duration(i)*time.Minute), 30)
		r.VehicleID = 2
		recs = append(recs, r)
	}
	for start := 0; start < len(recs); start += 500 {
		if _, err := s.Write(ctx, recs[start:min(start+500, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	doSettle := func(t *testing.T, s Deleting) {
		t.Helper()
		if settle != nil {
			if err := settle(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	doSettle(t, s)
	now := delAt(24 * time.Hour)
	run := func(t *testing.T, s Deleting, job telemetry.DeleteJob, limit int) telemetry.Deleted {
		t.Helper()
		var total telemetry.Deleted
		for {
			d, done, err := s.DeleteBatch(ctx, job, limit)
			if err != nil {
				t.Fatal(err)
			}
			total.Add(d)
			if d.Records > int64(limit) || d.Values > int64(limit) || d.Events > int64(limit) {
				t.Fatalf("a batch of limit %d deleted %+v", limit, d)
			}
			if done {
				if err := s.Finish(ctx, job, now); err != nil {
					t.Fatal(err)
				}
				return total
			}
		}
	}
	tally := func(t *testing.T, s Deleting, vehicle uint64, key string) telemetry.Tally {
		t.Helper()
		ts, err := s.Tallies(ctx, vehicle)
		if err != nil {
			t.Fatal(err)
		}
		for _, tl := range ts {
			if tl.Key == key {
				return tl
			}
		}
		t.Fatalf("no tally of %s among %+v", key, ts)
		return telemetry.Tally{}
	}
	records := func(t *testing.T, s Deleting, vehicle uint64) (n int, inside int) {
		t.Helper()
		q := telemetry.RecordsQuery{Vehicle: vehicle, Lo: 0, Hi: delAt(48 * time.Hour), Limit: 5000}
		got, err := s.Records(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			if r.Time >= delAt(time.Hour+25*time.Second) && r.Time < delAt(2*time.Hour+35*time.Second) {
				inside++
			}
		}
		return len(got), inside
	}
	hourly := func(t *testing.T, s Deleting, rollups bool) string {
		t.Helper()
		out := map[string]string{}
		err := s.Aggregate(ctx, telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber, From: delAt(0),
			Step: time.Hour.Milliseconds(), Lo: delAt(0), Hi: delAt(3 * time.Hour), Aggs: []string{telemetry.AggMin, telemetry.AggMax, telemetry.AggFirst, telemetry.AggLast},
			NoRollup: !rollups}, func(b int64, agg string, v any) { out[fmt.Sprintf("%d/%s", b, agg)] = fmt.Sprintf("%v", v) })
		if err != nil {
			t.Fatal(err)
		}
		return sorted(out)
	}

	// An erasure of [1h00:25, 2h00:35): 361 speed records and the event records of 1h30 and 2h00. The process
	// stops after three batches, without finishing, and the job is run again after a restart.
	job := telemetry.DeleteJob{Key: telemetry.ErasureJob(7, 0), Vehicle: 1, From: delAt(time.Hour + 25*time.Second), To: delAt(2*time.Hour + 35*time.Second)}
	t.Run("an erasure interrupted after three batches completes after a restart, counted exactly", func(t *testing.T) {
		for range 3 {
			if _, done, err := s.DeleteBatch(ctx, job, 50); err != nil || done {
				t.Fatalf("batch: done %v, %v", done, err)
			}
		}
		s = reopen(top, s)
		run(t, s, job, 50)
		doSettle(t, s)
		tl := tally(t, s, 1, job.Key)
		if tl.Records != 363 || tl.Values != 361 || tl.Events != 2 || tl.CompletedAt != now || tl.SweptAt != now {
			t.Fatalf("tally %+v, want 363 records, 361 values, 2 events, completed and swept at %d", tl, now)
		}
		if n, inside := records(t, s, 1); n != 1086-363 || inside != 0 {
			t.Fatalf("%d records of vehicle 1 left (%d inside the range), want %d and none", n, inside, 1086-363)
		}
		if n, _ := records(t, s, 2); n != 180 {
			t.Fatalf("%d records of vehicle 2 left, want all 180", n)
		}
	})
	t.Run("the values, events and roll-ups of the range are gone, at the range's ends too", func(t *testing.T) {
		want := "0/FIRST=0 0/LAST=35.9 0/MAX=35.9 0/MIN=0 1/FIRST=36 1/LAST=36.2 1/MAX=36.2 1/MIN=36 2/FIRST=72.4 2/LAST=107.9 2/MAX=107.9 2/MIN=72.4 "
		for _, rollups := range []bool{false, true} {
			if got := hourly(t, s, rollups); got != want {
				t.Fatalf("hourly speed (roll-ups %v): %s\nwant %s", rollups, got, want)
			}
		}
		// Minutes with 3 values or more: the range's first minute keeps 3 (1h00:00 to 1h00:20), its last 2.
		spans, err := s.Active(ctx, telemetry.ActiveQuery{Vehicle: 1, Lo: delAt(0), Hi: delAt(3 * time.Hour), MinCount: 3, MinSignals: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(spans), fmt.Sprint([]telemetry.Span{{Start: delAt(0), End: delAt(61 * time.Minute)},
			{Start: delAt(121 * time.Minute), End: delAt(3 * time.Hour)}}); got != want {
			t.Fatalf("active minutes %s, want %s", got, want)
		}
		evs, err := s.Events(ctx, 1, 0, delAt(48*time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 4 {
			t.Fatalf("%d events left, want 4: %+v", len(evs), evs)
		}
		for _, e := range evs {
			if e.Time >= job.From && e.Time < job.To {
				t.Fatalf("event %+v inside the erased range", e)
			}
		}
		sum, err := s.Summary(ctx, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(sum) != 1 || sum[0].Count != 1080-361 {
			t.Fatalf("summary %+v, want 719 speed values", sum)
		}
	})
	t.Run("running a done job again deletes nothing and keeps its completion time", func(t *testing.T) {
		if d := run(t, s, job, 50); d != (telemetry.Deleted{}) {
			t.Fatalf("deleted %+v", d)
		}
		if tl := tally(t, s, 1, job.Key); tl.Records != 363 || tl.CompletedAt != now {
			t.Fatalf("tally %+v", tl)
		}
	})
	t.Run("deleting the newest values makes the newest that remains the latest", func(t *testing.T) {
		tail := telemetry.DeleteJob{Key: telemetry.RetentionJob, Vehicle: 1, From: delAt(2*time.Hour + 50*time.Minute), To: delAt(5 * time.Hour)}
		if d := run(t, s, tail, 1000); d.Records != 60 || d.Values != 60 {
			t.Fatalf("deleted %+v, want 60 records and values", d)
		}
		doSettle(t, s)
		rows, err := s.Latest(ctx, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Name != "speed" || rows[0].Time != delAt(2*time.Hour+49*time.Minute+50*time.Second) {
			t.Fatalf("latest %+v, want speed at 2h49m50s", rows)
		}
		if got, want := hourly(t, s, true), "0/FIRST=0 0/LAST=35.9 0/MAX=35.9 0/MIN=0 1/FIRST=36 1/LAST=36.2 1/MAX=36.2 1/MIN=36 2/FIRST=72.4 2/LAST=101.9 2/MAX=101.9 2/MIN=72.4 "; got != want {
			t.Fatalf("hourly speed: %s\nwant %s", got, want)
		}
		rows, err = s.Latest(ctx, 2, 0)
		if err != nil || len(rows) != 1 || rows[0].Time != delAt(179*time.Minute) {
			t.Fatalf("vehicle 2's latest %+v, %v", rows, err)
		}
		// a source's newest values go with the range and are not recomputed (the values keep no source)
		if rows, err := s.LatestFrom(ctx, 1, a, 0); err != nil || len(rows) != 0 {
			t.Fatalf("vehicle 1's latest from its device after the deletion: %+v, %v; want none", rows, err)
		}
		if rows, err := s.LatestFrom(ctx, 2, b, 0); err != nil || len(rows) != 1 || rows[0].Time != delAt(179*time.Minute) {
			t.Fatalf("vehicle 2's latest from its device %+v, %v", rows, err)
		}
	})
}
