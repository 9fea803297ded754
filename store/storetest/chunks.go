package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
)

// The chunk suite's data set (docs/columnar.md: a store keeps the values of closed hours in chunks):
// vehicle 7's speed every 10 s from chunkT0 (09:58:00) to 10:02:00, the i-th value i, across the end of
// an hour; then, after the store settled, late values — one more in each hour, one at a millisecond
// already taken (which must lose: the first value stored at a time is kept), and two at one new
// millisecond in one batch (the first wins).
var chunkT0 = time.Date(2026, 11, 20, 9, 58, 0, 0, time.UTC)

func chunkAt(d time.Duration) int64 { return chunkT0.Add(d).UnixMilli() }

// Corrupter damages the stored chunk of vehicle's signal that holds the value measured at (unix ms), in
// a way its decoder must detect, and returns the start of that chunk as the store names it in errors; ok
// is false when the value is not in a chunk (the store keeps it as a row).
type Corrupter func(t *testing.T, s Reader, vehicle uint64, signal string, at int64) (start int64, ok bool)

// TestChunks runs the cases of values sealed into chunks across the end of an hour: open returns a new,
// empty store, settle (nil when Write alone suffices) brings its derived tables up to date as its
// indexer and sealer would, and corrupt damages a chunk. The expectations are literal.
func TestChunks(t *testing.T, open func(t *testing.T) Reader, settle func(ctx context.Context, s Reader) error, corrupt Corrupter) {
	ctx := context.Background()
	src := common.HexToAddress("0x00000000000000000000000000000000000000cc")
	s := open(t)
	rec := func(id string, at int64, speed float64) *telemetry.Record {
		r := Record(t, src, id, at, speed)
		r.VehicleID = 7
		return r
	}
	write := func(recs []*telemetry.Record) {
		t.Helper()
		if _, err := s.Write(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if settle != nil {
			if err := settle(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	var first []*telemetry.Record
	for i := range 25 {
		first = append(first, rec(fmt.Sprint("c", i), chunkAt(time.Duration(i)*10*time.Second), float64(i)))
	}
	write(first)
	write([]*telemetry.Record{
		rec("late-9", chunkAt(5*time.Second), 100),    // 09:58:05, a new time in the first hour
		rec("taken", chunkAt(10*time.Second), 99),     // 09:58:10: taken by 1, which stays
		rec("twice-a", chunkAt(15*time.Second), 7),    // 09:58:15, twice in one batch: 7 stays
		rec("twice-b", chunkAt(15*time.Second), 8),    //
		rec("late-10", chunkAt(125*time.Second), 50)}) // 10:00:05, a new time in the second hour
	stats := []string{telemetry.AggCount, telemetry.AggFirst, telemetry.AggLast, telemetry.AggMin, telemetry.AggMax, telemetry.AggAvg}
	hour := time.Hour.Milliseconds()
	nine := chunkT0.Truncate(time.Hour).UnixMilli()
	tests := []struct {
		name string
		a    telemetry.Aggregation
		want []string // "bucket/AGG=value", sorted
	}{
		{"hourly: each hour's chunk whole", telemetry.Aggregation{From: nine, Step: hour, Lo: nine, Hi: nine + 2*hour, Aggs: stats}, []string{
			"0/AVG=12.357142857142858", "0/COUNT=14", "0/FIRST=0", "0/LAST=11", "0/MAX=100", "0/MIN=0",
			"1/AVG=20.285714285714285", "1/COUNT=14", "1/FIRST=12", "1/LAST=24", "1/MAX=50", "1/MIN=12"}},
		{"one bucket across the end of the hour", telemetry.Aggregation{From: nine, Step: 2 * hour, Lo: nine, Hi: nine + 2*hour, Aggs: stats}, []string{
			"0/AVG=16.321428571428573", "0/COUNT=28", "0/FIRST=0", "0/LAST=24", "0/MAX=100", "0/MIN=0"}},
		{"a bucket of a minute at each side of 10:00, cutting both chunks", telemetry.Aggregation{From: chunkAt(time.Minute),
			Step: 2 * time.Minute.Milliseconds(), Lo: chunkAt(time.Minute), Hi: chunkAt(3 * time.Minute), Aggs: append(stats, telemetry.AggMedian)}, []string{
			"0/AVG=14.461538461538462", "0/COUNT=13", "0/FIRST=6", "0/LAST=17", "0/MAX=50", "0/MED=12", "0/MIN=6"}},
		{"the values at the taken milliseconds", telemetry.Aggregation{From: chunkAt(10 * time.Second), Step: 1,
			Lo: chunkAt(10 * time.Second), Hi: chunkAt(16 * time.Second), Aggs: []string{telemetry.AggLast}}, []string{
			"0/LAST=1", "5000/LAST=7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.a
			a.Vehicle, a.Signal, a.Kind = 7, "speed", telemetry.KindNumber
			for _, noRollup := range []bool{false, true} {
				a.NoRollup = noRollup
				var got []string
				if err := s.Aggregate(ctx, a, func(b int64, agg string, v any) {
					got = append(got, fmt.Sprintf("%d/%s=%s", b, agg, show(a.Kind, v)))
				}); err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				if !slices.Equal(got, tt.want) {
					t.Errorf("NoRollup %v: got  %q\nwant %q", noRollup, got, tt.want)
				}
			}
		})
	}
	t.Run("spans that start or end inside a chunk take only their values", func(t *testing.T) {
		a := telemetry.Aggregation{Vehicle: 7, Signal: "speed", Kind: telemetry.KindNumber, Aggs: stats}
		spans := []telemetry.Span{{Start: chunkAt(time.Minute), End: chunkAt(3 * time.Minute)}, // 09:59–10:01
			{Start: chunkAt(4*time.Minute + 30*time.Second), End: chunkAt(7 * time.Minute)}} // 10:02:30–10:05, after the last value
		got := spanAnswers(t, s, a, spans)
		want := []string{"0/AVG=14.461538461538462", "0/COUNT=13", "0/FIRST=6", "0/LAST=17", "0/MAX=50", "0/MIN=6"}
		if !slices.Equal(got, want) {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
	t.Run("buckets of five minutes and their multiples", func(t *testing.T) { testSlots(t, s, write) })
	t.Run("summary, runs and active minutes count each value once", func(t *testing.T) {
		sum, err := s.Summary(ctx, 7, chunkAt(time.Minute+5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(sum); got != fmt.Sprintf("[{speed 19 %d %d}]", chunkAt(70*time.Second), chunkAt(4*time.Minute)) {
			t.Errorf("summary since 09:59:05: %s", got)
		}
		runs, err := s.Runs(ctx, telemetry.RunsQuery{Vehicle: 7, Signal: "speed", Lo: nine, Hi: nine + 2*hour, Cuts: []float64{30}})
		if err != nil {
			t.Fatal(err)
		}
		want := []telemetry.Run{{Start: chunkAt(0), End: chunkAt(0), First: 0, Last: 0, Count: 1},
			{Start: chunkAt(5 * time.Second), End: chunkAt(5 * time.Second), First: 100, Last: 100, Count: 1},
			{Start: chunkAt(10 * time.Second), End: chunkAt(2 * time.Minute), First: 1, Last: 12, Count: 13},
			{Start: chunkAt(125 * time.Second), End: chunkAt(125 * time.Second), First: 50, Last: 50, Count: 1},
			{Start: chunkAt(130 * time.Second), End: chunkAt(4 * time.Minute), First: 13, Last: 24, Count: 12}}
		if !slices.Equal(runs, want) {
			t.Errorf("runs %v\nwant %v", runs, want)
		}
		spans, err := s.Active(ctx, telemetry.ActiveQuery{Vehicle: 7, Lo: nine, Hi: nine + 2*hour, MinCount: 7, MinSignals: 1})
		if err != nil {
			t.Fatal(err)
		}
		// 09:58 has 8 values (0, 100, 1, 7, 2, 3, 4, 5), 09:59 six, 10:00 seven (12, 50, 13 … 17), 10:01 six
		if got, want := fmt.Sprint(spans), fmt.Sprint([]telemetry.Span{{Start: chunkAt(0), End: chunkAt(time.Minute)},
			{Start: chunkAt(2 * time.Minute), End: chunkAt(3 * time.Minute)}}); got != want {
			t.Errorf("active minutes %s, want %s", got, want)
		}
	})
	t.Run("a corrupt chunk is an error that names it, never a panic", func(t *testing.T) {
		start, ok := corrupt(t, s, 7, "speed", chunkAt(0))
		if !ok {
			t.Skip("the store keeps these values as rows")
		}
		a := telemetry.Aggregation{Vehicle: 7, Signal: "speed", Kind: telemetry.KindNumber, From: nine, Step: hour,
			Lo: nine, Hi: nine + 2*hour, Aggs: []string{telemetry.AggMedian}}
		err := s.Aggregate(ctx, a, func(int64, string, any) {})
		if err == nil {
			t.Fatal("a corrupt chunk decoded")
		}
		for _, want := range []string{"speed", "vehicle 7", fmt.Sprint(start)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error %q does not name %q", err, want)
			}
		}
		// The other hour's chunk is intact.
		a.Lo = nine + hour
		if err := s.Aggregate(ctx, a, func(int64, string, any) {}); err != nil {
			t.Errorf("the intact hour: %v", err)
		}
	})
}
