package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
)

// slotT0 is the hour of the slot cases: vehicle 8's speed every 3 seconds through it (1,200 values, enough
// for a chunk with five-minute slot summaries, series.MinSlotValues), the i-th value slotValue(i).
var slotT0 = time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)

func slotAt(d time.Duration) int64 { return slotT0.Add(d).UnixMilli() }

// slotValue is a value with a fraction, so that an average shows a sum that is not exact in float64.
func slotValue(i int) float64 { return float64(i*37%101) + 0.1 }

// testSlots writes the slot cases' hour through write and holds every aggregation of it — in buckets
// that a chunk's five-minute slots answer and in buckets or ranges that cut a slot (the chunk is then
// decoded) — to telemetry.FoldHistory over the same values, with NoRollup and without; the first bucket
// of five minutes also literally.
func testSlots(t *testing.T, s Reader, write func([]*telemetry.Record)) {
	ctx := context.Background()
	src := common.HexToAddress("0x00000000000000000000000000000000000000cd")
	var recs []*telemetry.Record
	for i := range 1200 {
		r := Record(t, src, fmt.Sprint("slot", i), slotAt(time.Duration(i)*3*time.Second), slotValue(i))
		r.VehicleID = 8
		recs = append(recs, r)
	}
	write(recs)
	stats := []string{telemetry.AggCount, telemetry.AggFirst, telemetry.AggLast, telemetry.AggMin, telemetry.AggMax, telemetry.AggAvg}
	scan := func(yield func(t int64, v any) error) error {
		for i := range 1200 {
			if err := yield(slotAt(time.Duration(i)*3*time.Second), slotValue(i)); err != nil {
				return err
			}
		}
		return nil
	}
	minute := time.Minute.Milliseconds()
	h := slotAt(0)
	for _, tc := range []struct {
		name            string
		from, step      int64
		lo, hi          int64
		firstFiveMinute []string // the literal answer for bucket 0, when it is the first five minutes
	}{
		{"five minutes", h, 5 * minute, h, h + 60*minute, []string{"AVG=49.96", "COUNT=100", "FIRST=0.1", "LAST=27.1", "MAX=100.1", "MIN=0.1"}},
		{"ten minutes", h, 10 * minute, h, h + 60*minute, nil},
		{"fifteen minutes from an hour before", h - 60*minute, 15 * minute, h - 60*minute, h + 120*minute, nil},
		{"an hour", h, 60 * minute, h, h + 60*minute, nil},
		{"five minutes shifted by one: every slot cut", h + minute, 5 * minute, h + minute, h + 61*minute, nil},
		{"two and a half minutes", h, 150_000, h, h + 60*minute, nil},
		{"a range that starts and ends inside a slot", h, 5 * minute, h + 150_000, h + 57*minute, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := telemetry.Aggregation{Vehicle: 8, Signal: "speed", Kind: telemetry.KindNumber, From: tc.from, Step: tc.step,
				Lo: tc.lo, Hi: tc.hi, Aggs: stats}
			var want []string
			if err := telemetry.FoldHistory(a, scan, func(b int64, agg string, v any) {
				want = append(want, fmt.Sprintf("%d/%s=%s", b, agg, show(a.Kind, v)))
			}); err != nil {
				t.Fatal(err)
			}
			slices.Sort(want)
			if tc.firstFiveMinute != nil {
				for i, w := range tc.firstFiveMinute {
					if want[i] != "0/"+w {
						t.Fatalf("the reference's first bucket: %q, want %q", want[:len(tc.firstFiveMinute)], tc.firstFiveMinute)
					}
				}
			}
			for _, noRollup := range []bool{false, true} {
				a.NoRollup = noRollup
				var got []string
				if err := s.Aggregate(ctx, a, func(b int64, agg string, v any) {
					got = append(got, fmt.Sprintf("%d/%s=%s", b, agg, show(a.Kind, v)))
				}); err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("NoRollup %v: got  %q\nwant %q", noRollup, got, want)
				}
			}
		})
	}
	t.Run("runs: of one class (chunks and slots taken whole) and of many", func(t *testing.T) {
		for _, q := range []telemetry.RunsQuery{{Cuts: []float64{1000}}, {Cuts: []float64{1000}, MaxGap: 600_000},
			{Cuts: []float64{1000}, MaxGap: 2000}, {Cuts: []float64{50}}, {Cuts: []float64{1000}, Lo: h + 7*minute}} {
			q.Vehicle, q.Signal, q.Hi = 8, "speed", h+2*60*minute
			if q.Lo == 0 {
				q.Lo = h - 60*minute
			}
			want, err := telemetry.FoldRuns(q, func(yield func(t int64, v float64) error) error {
				return scan(func(t int64, v any) error {
					if t < q.Lo || t >= q.Hi {
						return nil
					}
					return yield(t, v.(float64))
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Runs(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v: got %v\nwant %v", q, got, want)
			}
		}
	})
	t.Run("spans: one on slot boundaries, one inside a slot", func(t *testing.T) {
		a := telemetry.Aggregation{Vehicle: 8, Signal: "speed", Kind: telemetry.KindNumber, Aggs: stats}
		spans := []telemetry.Span{{Start: h + 5*minute, End: h + 20*minute}, {Start: h + 30*minute + 7000, End: h + 31*minute}}
		var want []string
		for i, sp := range spans {
			b := a
			b.From, b.Step, b.Lo, b.Hi = sp.Start, sp.End-sp.Start, sp.Start, sp.End
			if err := telemetry.FoldHistory(b, scan, func(_ int64, agg string, v any) {
				want = append(want, fmt.Sprintf("%d/%s=%s", i, agg, show(a.Kind, v)))
			}); err != nil {
				t.Fatal(err)
			}
		}
		got := spanAnswers(t, s, a, spans)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
}

// spanAnswers returns a's answers for spans (telemetry.AggregateSpans) as "span/AGG=value", sorted.
func spanAnswers(t *testing.T, s Reader, a telemetry.Aggregation, spans []telemetry.Span) []string {
	t.Helper()
	var got []string
	if err := telemetry.AggregateSpans(context.Background(), s, a, spans, func(i int, agg string, v any) {
		got = append(got, fmt.Sprintf("%d/%s=%s", i, agg, show(a.Kind, v)))
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}
