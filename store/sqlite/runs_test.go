package sqlite

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/glovebox/glovebox/telemetry"
)

// compareRuns checks that random ranges get the same runs and active minutes from the store (chunk
// summaries where it can use them) as from the values written.
func (f *historyFixture) compareRuns(windows int) {
	ctx := context.Background()
	cuts := [][]float64{nil, {60}, {1000}, {-1, 0}}
	gaps := []int64{0, 60_000, 300_000, 2 * 3_600_000}
	aligns := []time.Duration{time.Millisecond, time.Minute, time.Hour, 24 * time.Hour}
	for i := range windows {
		align := aligns[f.rng.IntN(len(aligns))]
		lo := f.base.Add(time.Duration(f.rng.Int64N(int64(72*time.Hour))) - 12*time.Hour).Truncate(align)
		hi := lo.Add(time.Duration(f.rng.Int64N(int64(96 * time.Hour)))).Truncate(align)
		vehicle := uint64(1 + f.rng.IntN(2))
		for _, signal := range []string{"speed", "isIgnitionOn"} {
			q := telemetry.RunsQuery{Vehicle: vehicle, Signal: signal, Lo: lo.UnixMilli(), Hi: hi.UnixMilli(),
				Cuts: cuts[f.rng.IntN(len(cuts))], MaxGap: gaps[f.rng.IntN(len(gaps))]}
			got, err := f.tel.Runs(ctx, q)
			if err != nil {
				f.t.Fatal(err)
			}
			want, err := telemetry.FoldRuns(q, func(yield func(t int64, v float64) error) error {
				return f.values(q.Vehicle, q.Signal, q.Lo, q.Hi, func(t int64, v any) error { return yield(t, v.(float64)) })
			})
			if err != nil {
				f.t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				f.t.Fatalf("window %d (%+v): %d runs from the store, %d from the values\n%v\n%v", i, q, len(got), len(want), got, want)
			}
		}
		lo, hi = lo.Truncate(time.Minute), hi.Truncate(time.Minute)
		aq := telemetry.ActiveQuery{Vehicle: vehicle, Lo: lo.UnixMilli(), Hi: hi.UnixMilli(), MinCount: 1 + f.rng.IntN(4), MinSignals: 1 + f.rng.IntN(3)}
		got, err := f.tel.Active(ctx, aq)
		if err != nil {
			f.t.Fatal(err)
		}
		type minute struct{ n, sigs int }
		counts := map[int64]*minute{}
		for _, signal := range []string{"speed", "isIgnitionOn"} {
			seen := map[int64]bool{}
			f.values(aq.Vehicle, signal, aq.Lo, aq.Hi, func(t int64, _ any) error {
				m := t / 60_000 * 60_000
				if counts[m] == nil {
					counts[m] = &minute{}
				}
				counts[m].n++
				if !seen[m] {
					seen[m] = true
					counts[m].sigs++
				}
				return nil
			})
		}
		var minutes []telemetry.Span
		for m, c := range counts {
			if c.n >= aq.MinCount && c.sigs >= aq.MinSignals {
				minutes = append(minutes, telemetry.Span{Start: m, End: m + 60_000})
			}
		}
		if want := telemetry.MergeSpans(minutes); fmt.Sprint(got) != fmt.Sprint(want) {
			f.t.Fatalf("window %d (%+v): active\n%v from the store\n%v from the values", i, aq, got, want)
		}
	}
}

// TestRunsAndActivityAsTheValuesHaveThem writes telemetry in phases, as
// TestAnswersAreFoldHistorysOverTheValuesWritten, with a dense stretch in which whole chunks hold one
// class, and compares runs and active minutes with the values written after each.
func TestRunsAndActivityAsTheValuesHaveThem(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 2)
	f.now = f.base.Add(40 * time.Hour)
	f.write(0, 48*time.Hour, 3000)
	f.write(50*time.Hour, 3*time.Hour, 3000)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	f.compareRuns(40) // chunks and rows
	f.write(10*time.Hour, 3*time.Hour, 500)
	f.write(39*time.Hour, 4*time.Hour, 500)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	f.compareRuns(40) // backfilled
	f.now = f.base.Add(100 * time.Hour)
	if _, err := f.tel.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	f.compareRuns(40) // chunks only
}
