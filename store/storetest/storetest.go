// Package storetest is the conformance suite of Glovebox's stores: the same cases run against every
// implementation (store/sqlite and store/postgres), so that the node behaves the same on either:
// TestTelemetry for telemetry.Store, TestReader for telemetry.Reader (every aggregation, latest values,
// the data summary and raw records, each with the owner-period cut-off, on one data set with literal
// expectations), TestAccessLog for accesslog.Store and TestConnect for connect/flowstate.Store (the
// OpenID Provider's flow state: flowstate.Memory and store/postgres.FlowState, races included).
//
// It imports the contracts it checks, never a store: each store's tests call it.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/telemetry"
)

// Telemetry is a telemetry store under test, with a way to count what it holds.
type Telemetry interface {
	telemetry.Store
	// CountRecords returns how many records are stored.
	CountRecords(ctx context.Context) (int64, error)
}

// Record returns a parsed record of vehicle 1 from source with one speed value at t (unix ms), its event
// bytes varying with speed. Stores do not check signatures; the signature is left zero.
func Record(t testing.TB, source common.Address, id string, at int64, speed float64) *telemetry.Record {
	t.Helper()
	ts := time.UnixMilli(at).UTC().Format(time.RFC3339Nano)
	ev := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":%q,"subject":"1","type":"glovebox.signals","time":%q,`+
		`"datacontenttype":"application/json","data":{"signals":[{"name":"speed","timestamp":%q,"value":%g}]}}`,
		id, source.Hex(), ts, ts, speed)
	r, err := telemetry.DefaultCatalog.Parse(&telemetry.Submission{Event: []byte(ev), Signature: make([]byte, 65)}, at+1000)
	if err != nil {
		t.Fatalf("building a record: %v", err)
	}
	r.Received = at + 5
	r.Signature[64] = 27
	return r
}

// TestTelemetry runs the telemetry cases; open returns a new, empty store for each.
func TestTelemetry(t *testing.T, open func(t *testing.T) Telemetry) {
	ctx := context.Background()
	a, b := common.HexToAddress("0x00000000000000000000000000000000000000aa"), common.HexToAddress("0x00000000000000000000000000000000000000bb")
	now := time.Date(2026, 11, 27, 6, 40, 0, 0, time.UTC).UnixMilli()
	write := func(t *testing.T, s Telemetry, recs ...*telemetry.Record) []telemetry.Status {
		t.Helper()
		out, err := s.Write(ctx, recs)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(recs) {
			t.Fatalf("%d statuses for %d records", len(out), len(recs))
		}
		return out
	}
	count := func(t *testing.T, s Telemetry, want int64) {
		t.Helper()
		n, err := s.CountRecords(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("%d records stored, want %d", n, want)
		}
	}
	expect := func(t *testing.T, got []telemetry.Status, want ...telemetry.Status) {
		t.Helper()
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("statuses %v, want %v", got, want)
			}
		}
	}

	t.Run("a new record is accepted and sent again is a duplicate, stored once", func(t *testing.T) {
		s := open(t)
		r := Record(t, a, "1", now, 10)
		expect(t, write(t, s, r), telemetry.StatusAccepted)
		expect(t, write(t, s, r), telemetry.StatusDuplicate)
		count(t, s, 1)
	})
	t.Run("the same source and id with other bytes is a conflict and is not stored", func(t *testing.T) {
		s := open(t)
		expect(t, write(t, s, Record(t, a, "1", now, 10)), telemetry.StatusAccepted)
		expect(t, write(t, s, Record(t, a, "1", now, 11)), telemetry.StatusConflict)
		count(t, s, 1)
	})
	t.Run("within one batch a second copy is a duplicate and a differing one a conflict", func(t *testing.T) {
		s := open(t)
		r := Record(t, a, "1", now, 10)
		expect(t, write(t, s, r, Record(t, a, "2", now+1, 10), r, Record(t, a, "1", now, 12)),
			telemetry.StatusAccepted, telemetry.StatusAccepted, telemetry.StatusDuplicate, telemetry.StatusConflict)
		count(t, s, 2)
	})
	t.Run("the same id from two sources is two records", func(t *testing.T) {
		s := open(t)
		expect(t, write(t, s, Record(t, a, "7", now, 10), Record(t, b, "7", now, 10)), telemetry.StatusAccepted, telemetry.StatusAccepted)
		count(t, s, 2)
	})
	t.Run("records months apart are stored alike", func(t *testing.T) {
		s := open(t)
		old := time.Date(2025, 1, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()
		expect(t, write(t, s, Record(t, a, "old", old, 1), Record(t, a, "new", now, 2), Record(t, a, "edge", old+1, 3)),
			telemetry.StatusAccepted, telemetry.StatusAccepted, telemetry.StatusAccepted)
		count(t, s, 3)
	})
	t.Run("concurrent writers of the same records store each exactly once", func(t *testing.T) {
		s := open(t)
		const writers, per = 4, 200
		recs := make([]*telemetry.Record, per)
		for i := range recs {
			recs[i] = Record(t, a, fmt.Sprint(i), now+int64(i), float64(i%100))
		}
		accepted := make([]int, writers)
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each writer sends the records in its own order, in batches of 50.
				order := make([]*telemetry.Record, per)
				for i := range order {
					order[i] = recs[(i*(w+1)+w*7)%per]
				}
				for start := 0; start < per; start += 50 {
					out, err := s.Write(ctx, order[start:start+50])
					if err != nil {
						errs <- err
						return
					}
					for _, st := range out {
						if st == telemetry.StatusAccepted {
							accepted[w]++
						} else if st != telemetry.StatusDuplicate {
							errs <- fmt.Errorf("status %s", st)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		total := 0
		for _, n := range accepted {
			total += n
		}
		if total != per {
			t.Fatalf("%d acceptances of %d records: each must be accepted exactly once", total, per)
		}
		count(t, s, per)
	})
}

// TestAccessLog runs the access log cases; open returns a new, empty log for each.
func TestAccessLog(t *testing.T, open func(t *testing.T) accesslog.Store) {
	ctx := context.Background()
	app := common.HexToAddress("0x00000000000000000000000000000000000000cc")
	at := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	entry := func(vehicle uint64, i int) accesslog.Entry {
		e := accesslog.Entry{Time: at.Add(time.Duration(i) * time.Second), Vehicle: vehicle, Caller: app, Query: fmt.Sprintf("q%d", i),
			Values: i, Outcome: "ok"}
		if i%2 == 0 {
			e.Permissions = []string{"signals", "location"}
			e.From, e.To = at.Add(-time.Hour), at
		}
		return e
	}
	t.Run("entries come back newest first, page by page, with every field", func(t *testing.T) {
		s := open(t)
		var want []accesslog.Entry
		for i := range 7 {
			want = append(want, entry(1, i))
		}
		if err := s.Append(ctx, want[:3]); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, []accesslog.Entry{entry(2, 99)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, want[3:]); err != nil {
			t.Fatal(err)
		}
		var got []accesslog.Entry
		before := int64(0)
		for {
			page, err := s.List(ctx, 1, before, 3)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if len(page) < 3 {
				break
			}
			before = page[len(page)-1].Seq
		}
		if len(got) != len(want) {
			t.Fatalf("%d entries listed, want %d", len(got), len(want))
		}
		for i, g := range got {
			w := want[len(want)-1-i]
			if i > 0 && g.Seq >= got[i-1].Seq {
				t.Fatalf("sequence numbers not decreasing: %d after %d", g.Seq, got[i-1].Seq)
			}
			if !g.Time.Equal(w.Time) || g.Vehicle != w.Vehicle || g.Caller != w.Caller || g.Query != w.Query || g.Values != w.Values ||
				g.Outcome != w.Outcome || !g.From.Equal(w.From) || !g.To.Equal(w.To) || fmt.Sprint(g.Permissions) != fmt.Sprint(w.Permissions) {
				t.Fatalf("entry %d came back as %+v, want %+v", i, g, w)
			}
		}
	})
	t.Run("another vehicle's entries are not listed", func(t *testing.T) {
		s := open(t)
		if err := s.Append(ctx, []accesslog.Entry{entry(2, 1)}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.List(ctx, 1, 0, 10); err != nil || len(got) != 0 {
			t.Fatalf("listed %v (%v)", got, err)
		}
	})
}

// EventStore is a telemetry store that keeps driving events.
type EventStore interface {
	Telemetry
	telemetry.Events
}

// EventsRecord returns a parsed glovebox.events record of vehicle from source carrying events.
func EventsRecord(t testing.TB, source common.Address, vehicle uint64, id string, at int64, events ...telemetry.EventItem) *telemetry.Record {
	t.Helper()
	ev, err := telemetry.NewEventsRecord(source, vehicle, id, time.UnixMilli(at), events)
	if err != nil {
		t.Fatal(err)
	}
	r, err := telemetry.DefaultCatalog.Parse(&telemetry.Submission{Event: ev, Signature: make([]byte, 65)}, at+1000)
	if err != nil {
		t.Fatalf("building an events record: %v", err)
	}
	r.Received = at + 5
	r.Signature[64] = 27
	return r
}

// TestEvents runs the driving event cases; open returns a new, empty store for each and a function that
// makes what was written readable (a store that derives its tables later indexes them).
func TestEvents(t *testing.T, open func(t *testing.T) (EventStore, func())) {
	ctx := context.Background()
	dev := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	at := time.Date(2026, 11, 27, 6, 40, 0, 0, time.UTC)
	ms := at.UnixMilli()
	write := func(t *testing.T, s EventStore, recs ...*telemetry.Record) []telemetry.Status {
		t.Helper()
		out, err := s.Write(ctx, recs)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	read := func(t *testing.T, s EventStore, lo, hi int64, limit int) []telemetry.Event {
		t.Helper()
		evs, err := s.Events(ctx, 1, lo, hi, limit)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	t.Run("a device's events are stored once with every field, and read by time", func(t *testing.T) {
		s, settle := open(t)
		r := EventsRecord(t, dev, 1, "e1", ms,
			telemetry.EventItem{Name: "behavior.harshCornering", Timestamp: at.Add(2 * time.Second), Duration: 1500 * time.Millisecond,
				Metadata: map[string]any{"lateralG": 0.41}},
			telemetry.EventItem{Name: "behavior.harshBraking", Timestamp: at, Duration: time.Second})
		if got := write(t, s, r); got[0] != telemetry.StatusAccepted {
			t.Fatalf("status %s", got[0])
		}
		if got := write(t, s, r); got[0] != telemetry.StatusDuplicate {
			t.Fatalf("sent again: status %s", got[0])
		}
		settle()
		got := read(t, s, ms, ms+time.Hour.Milliseconds(), 100)
		want := []telemetry.Event{
			{Vehicle: 1, Name: "behavior.harshBraking", Time: ms, DurationNs: 1e9, Source: dev.Hex()},
			{Vehicle: 1, Name: "behavior.harshCornering", Time: ms + 2000, DurationNs: 1.5e9, Source: dev.Hex(), Metadata: `{"lateralG":0.41}`},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("events %+v, want %+v", got, want)
		}
		if got := read(t, s, ms+1, ms+time.Hour.Milliseconds(), 100); len(got) != 1 {
			t.Fatalf("from just after the first: %d events, want 1", len(got))
		}
		if got := read(t, s, ms, ms+time.Hour.Milliseconds(), 1); len(got) != 2 {
			t.Fatalf("limit 1: %d events, want limit+1 = 2 so that the caller sees there are more", len(got))
		}
		if got, err := s.Events(ctx, 2, 0, ms*2, 100); err != nil || len(got) != 0 {
			t.Fatalf("another vehicle: %v (%v)", got, err)
		}
		sums, err := s.EventSummaries(ctx, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantSums := []telemetry.EventSummary{{Name: "behavior.harshBraking", Count: 1, First: ms, Last: ms},
			{Name: "behavior.harshCornering", Count: 1, First: ms + 2000, Last: ms + 2000}}
		if fmt.Sprint(sums) != fmt.Sprint(wantSums) {
			t.Fatalf("summaries %+v, want %+v", sums, wantSums)
		}
		if sums, _ := s.EventSummaries(ctx, 1, ms+1); len(sums) != 1 {
			t.Fatalf("since after the braking: %+v", sums)
		}
	})
	t.Run("harsh braking is derived from consecutive speed values, marked as derived", func(t *testing.T) {
		s, settle := open(t)
		speeds := []float64{60, 60, 45, 30, 28, 28}
		for i, v := range speeds {
			write(t, s, Record(t, dev, fmt.Sprint(i), ms+int64(i)*1000, v))
		}
		settle()
		got := read(t, s, ms-1000, ms+time.Minute.Milliseconds(), 100)
		if len(got) != 1 {
			t.Fatalf("events %+v, want one derived braking", got)
		}
		e := got[0]
		if e.Name != telemetry.EventHarshBraking || e.Source != telemetry.DerivedSource || e.Time != ms+1000 || e.DurationNs != 2e9 {
			t.Fatalf("derived %+v, want harsh braking from 1 s for 2 s by %s", e, telemetry.DerivedSource)
		}
		if e.Metadata != `{"fromKph":60,"toKph":30,"meanKphPerSecond":15,"peakKphPerSecond":15}` {
			t.Fatalf("metadata %s", e.Metadata)
		}
	})
}
