package sqlite

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/glovebox/glovebox/telemetry"
)

// compareRuns checks that random ranges get the same runs and active minutes from the store (roll-ups
// where it can use them) as folded from the values alone.
func (f *historyFixture) compareRuns(windows int) {
	ctx := context.Background()
	db := f.tel.SignalsDB()
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
				rows, err := db.Query(`SELECT s.time, s.val FROM signals s JOIN names n ON n.id = s.name
WHERE s.vehicle = ? AND n.name = ? AND s.time >= ? AND s.time < ? ORDER BY s.time`, q.Vehicle, q.Signal, q.Lo, q.Hi)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var t int64
					var v any
					if err := rows.Scan(&t, &v); err != nil {
						return err
					}
					if err := yield(t, asNumber(v)); err != nil {
						return err
					}
				}
				return rows.Err()
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
		var minutes []telemetry.Span
		rows, err := db.Query(`SELECT s.time / 60000 FROM signals s JOIN names n ON n.id = s.name
WHERE s.vehicle = ? AND n.name IN ('speed', 'isIgnitionOn') AND s.time >= ? AND s.time < ?
GROUP BY s.time / 60000 HAVING COUNT(*) >= ? AND COUNT(DISTINCT s.name) >= ?`, aq.Vehicle, aq.Lo, aq.Hi, aq.MinCount, aq.MinSignals)
		if err != nil {
			f.t.Fatal(err)
		}
		for rows.Next() {
			var m int64
			if err := rows.Scan(&m); err != nil {
				f.t.Fatal(err)
			}
			minutes = append(minutes, telemetry.Span{Start: m * 60_000, End: m*60_000 + 60_000})
		}
		rows.Close()
		if want := telemetry.MergeSpans(minutes); fmt.Sprint(got) != fmt.Sprint(want) {
			f.t.Fatalf("window %d (%+v): active\n%v from the store\n%v from the values", i, aq, got, want)
		}
	}
}

// TestRunsAndActivityAsTheValuesHaveThem writes telemetry in phases, as TestRollupsAnswerAsTheValuesDo,
// with a dense stretch in which whole hours are active, and compares runs and active minutes with the
// values after each.
func TestRunsAndActivityAsTheValuesHaveThem(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 2)
	f.write(0, 48*time.Hour, 3000)
	f.write(50*time.Hour, 3*time.Hour, 3000)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	f.compareRuns(30) // everything stale
	if _, err := f.tel.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	var full int
	f.tel.SignalsDB().QueryRow(`SELECT COUNT(*) FROM activity WHERE level = 1 AND mins = 60`).Scan(&full)
	if full == 0 {
		t.Fatal("no hour is active in every minute")
	}
	f.compareRuns(60)
	f.write(10*time.Hour, 3*time.Hour, 500)
	f.write(47*time.Hour, 4*time.Hour, 500)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	f.compareRuns(40) // stale spans inside rolled-up time
	if _, err := f.tel.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	f.compareRuns(40)
}
