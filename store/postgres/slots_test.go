package postgres_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry"
)

// TestSlotSummariesAnswerBucketsInsideThemWithoutDecoding seals an hour of speed at 1 Hz, its value an
// eighth of the second of the hour (one chunk with twelve five-minute slots), and an hour of a value a minute (a chunk
// without slots), and asks aggregations and spans whose answers are written out below, in three states:
// as sealed; with the slots removed, as a chunk written before migration 0013 is (every answer then comes
// from decoding); and with the chunk's data cut short, so that only what the slot summaries (and the
// chunk's summary) answer succeeds and everything that must decode the chunk fails, naming it.
func TestSlotSummariesAnswerBucketsInsideThemWithoutDecoding(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	s := postgres.NewTelemetry(pool)
	// an eighth of the second of the hour: exact sums, and within the catalogue's range of a speed
	second := func(ms int64) float64 { return float64((ms-chunkT0)/1000%3600) / 8 }
	if _, err := s.Write(ctx, speeds(t, "a", every(0, 1000, hour), second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, speeds(t, "b", every(hour, 60_000, 2*hour), second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SealAll(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	var withSlots, without int
	if err := pool.QueryRow(ctx, `SELECT COUNT(*) FILTER (WHERE slots IS NOT NULL), COUNT(*) FILTER (WHERE slots IS NULL) FROM chunk_data`).
		Scan(&withSlots, &without); err != nil {
		t.Fatal(err)
	}
	if withSlots != 1 || without != 1 {
		t.Fatalf("%d chunks with slots and %d without, want the 1 Hz hour's with and the other's without", withSlots, without)
	}

	const m = int64(60_000)
	type want struct {
		answer  string // bucket/agg=value …, FIRST LAST MIN MAX AVG COUNT
		decodes bool   // the chunk of the 1 Hz hour must be decoded
	}
	aggs := []string{telemetry.AggFirst, telemetry.AggLast, telemetry.AggMin, telemetry.AggMax, telemetry.AggAvg, telemetry.AggCount}
	// stats renders a bucket's six answers, given in seconds of the hour (values are an eighth of them).
	stats := func(b int64, first, last, lo, hi, avg, n float64) string {
		return fmt.Sprintf("%d/FIRST=%v %d/LAST=%v %d/MIN=%v %d/MAX=%v %d/AVG=%v %d/COUNT=%v ",
			b, first/8, b, last/8, b, lo/8, b, hi/8, b, avg/8, b, n)
	}
	buckets := []struct {
		name       string
		from, step int64
		lo, hi     int64 // after chunkT0
		want       want
	}{
		{"5-minute buckets", chunkT0, 5 * m, 50 * m, hour,
			want{stats(10, 3000, 3299, 3000, 3299, 3149.5, 300) + stats(11, 3300, 3599, 3300, 3599, 3449.5, 300), false}},
		{"10-minute buckets", chunkT0, 10 * m, 40 * m, hour,
			want{stats(4, 2400, 2999, 2400, 2999, 2699.5, 600) + stats(5, 3000, 3599, 3000, 3599, 3299.5, 600), false}},
		{"an hour bucket: the chunk's summary", chunkT0, hour, 0, hour,
			want{stats(0, 0, 3599, 0, 3599, 1799.5, 3600), false}},
		{"hour buckets from the half hour", chunkT0 - 30*m, hour, 0, hour,
			want{stats(0, 0, 1799, 0, 1799, 899.5, 1800) + stats(1, 1800, 3599, 1800, 3599, 2699.5, 1800), false}},
		{"5-minute buckets over the chunk without slots too", chunkT0, 5 * m, 55 * m, hour + 10*m,
			want{stats(11, 3300, 3599, 3300, 3599, 3449.5, 300) + stats(12, 0, 240, 0, 240, 120, 5) + stats(13, 300, 540, 300, 540, 420, 5), false}},
		{"a bucket boundary inside a slot", chunkT0, 7 * m, 0, 14 * m,
			want{stats(0, 0, 419, 0, 419, 209.5, 420) + stats(1, 420, 839, 420, 839, 629.5, 420), true}},
		{"a range starting inside a slot", chunkT0, 5 * m, 52*m + 30_000, hour,
			want{stats(10, 3150, 3299, 3150, 3299, 3224.5, 150) + stats(11, 3300, 3599, 3300, 3599, 3449.5, 300), true}},
		{"a range ending inside a slot", chunkT0, 5 * m, 0, 5*m + 1000,
			want{stats(0, 0, 299, 0, 299, 149.5, 300) + stats(1, 300, 300, 300, 300, 300, 1), true}},
	}
	spans := []struct {
		name  string
		spans []telemetry.Span // after chunkT0
		want  want
	}{
		{"spans along slots", []telemetry.Span{{Start: 5 * m, End: 15 * m}, {Start: 0, End: hour}},
			want{stats(0, 300, 899, 300, 899, 599.5, 600) + stats(1, 0, 3599, 0, 3599, 1799.5, 3600), false}},
		{"a span ending inside a slot", []telemetry.Span{{Start: 5 * m, End: 6 * m}},
			want{stats(0, 300, 359, 300, 359, 329.5, 60), true}},
	}
	render := func(run func(put func(b int64, agg string, v any)) error) (string, error) {
		var b strings.Builder
		err := run(func(i int64, agg string, v any) {
			fmt.Fprintf(&b, "%d/%s=%s ", i, agg, strconv.FormatFloat(v.(float64), 'g', -1, 64))
		})
		return b.String(), err
	}
	check := func(t *testing.T, dataCut bool) {
		t.Helper()
		result := func(name string, w want, got string, err error) {
			t.Helper()
			if dataCut && w.decodes {
				if err == nil || !strings.Contains(err.Error(), "speed") || !strings.Contains(err.Error(), "vehicle 7") ||
					!strings.Contains(err.Error(), fmt.Sprint(chunkT0)) {
					t.Errorf("%s: got %q, %v; want an error naming speed of vehicle 7 and the chunk from %d", name, got, err, chunkT0)
				}
				return
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if got != w.answer {
				t.Errorf("%s:\ngot  %s\nwant %s", name, got, w.answer)
			}
		}
		for _, tc := range buckets {
			a := telemetry.Aggregation{Vehicle: 7, Signal: "speed", Kind: telemetry.KindNumber, From: tc.from, Step: tc.step,
				Lo: chunkT0 + tc.lo, Hi: chunkT0 + tc.hi, Aggs: aggs}
			got, err := render(func(put func(int64, string, any)) error { return s.Aggregate(ctx, a, put) })
			result(tc.name, tc.want, got, err)
		}
		for _, tc := range spans {
			var sp []telemetry.Span
			for _, x := range tc.spans {
				sp = append(sp, telemetry.Span{Start: chunkT0 + x.Start, End: chunkT0 + x.End})
			}
			a := telemetry.Aggregation{Vehicle: 7, Signal: "speed", Kind: telemetry.KindNumber, Aggs: aggs}
			got, err := render(func(put func(int64, string, any)) error {
				return s.AggregateSpans(ctx, a, sp, func(i int, agg string, v any) { put(int64(i), agg, v) })
			})
			result(tc.name, tc.want, got, err)
		}
	}
	exec := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TEMP TABLE kept AS SELECT vehicle, name, start, data, slots FROM chunk_data`)
	t.Run("sealed", func(t *testing.T) { check(t, false) })
	exec(`UPDATE chunk_data SET slots = NULL`)
	t.Run("without slots", func(t *testing.T) { check(t, false) })
	exec(`UPDATE chunk_data d SET slots = k.slots, data = substring(k.data FROM 1 FOR 9) FROM kept k
		WHERE d.vehicle = k.vehicle AND d.name = k.name AND d.start = k.start AND k.slots IS NOT NULL`)
	t.Run("data cut short", func(t *testing.T) { check(t, true) })
}

// TestCorruptSlotsAreAnErrorNamingTheChunk damages the slot summaries of a sealed hour and asks for
// five-minute buckets, which read them: each damage is an error naming the signal, the vehicle and the
// chunk's start, never a panic nor an answer.
func TestCorruptSlotsAreAnErrorNamingTheChunk(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	s := postgres.NewTelemetry(pool)
	if _, err := s.Write(ctx, speeds(t, "a", every(0, 1000, hour), func(ms int64) float64 { return float64(ms % 7) })); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, speeds(t, "b", every(2*hour+500, 1000, 3*hour), func(ms int64) float64 { return float64(ms % 5) })); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SealAll(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	a := telemetry.Aggregation{Vehicle: 7, Signal: "speed", Kind: telemetry.KindNumber, From: chunkT0, Step: 300_000, Lo: chunkT0, Hi: chunkT0 + hour,
		Aggs: []string{telemetry.AggAvg}}
	if _, err := pool.Exec(ctx, `CREATE TEMP TABLE kept AS SELECT slots FROM chunk_data WHERE start = $1`, chunkT0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, set string
	}{
		{"cut short", `substring(slots FROM 1 FOR 20)`},
		{"a slot index past the hour", `'\x0c'::bytea || substring(slots FROM 2)`},
		{"a byte more", `slots || '\x00'::bytea`},
		{"the slots of another hour's chunk", `(SELECT slots FROM chunk_data WHERE start = ` + fmt.Sprint(chunkT0+2*hour+500) + `)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := pool.Exec(ctx, `UPDATE chunk_data SET slots = (SELECT slots FROM kept) WHERE start = $1`, chunkT0); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `UPDATE chunk_data SET slots = `+tc.set+` WHERE start = $1`, chunkT0); err != nil {
				t.Fatal(err)
			}
			n := 0
			err := s.Aggregate(ctx, a, func(int64, string, any) { n++ })
			if err == nil || !strings.Contains(err.Error(), "speed") || !strings.Contains(err.Error(), "vehicle 7") ||
				!strings.Contains(err.Error(), fmt.Sprint(chunkT0)) {
				t.Fatalf("got %v (%d values put), want an error naming speed of vehicle 7 and the chunk from %d", err, n, chunkT0)
			}
		})
	}
}

// TestChunksSealedBeforeSlotsGetThemOnTheSealersNextPass stores 70 hours of speed at one value every
// 3.5 s (1,029 values an hour: chunks with slots, more than one filling batch), seals them, and then
// puts the database in the state migration 0013 leaves one sealed before it: no slots, the fill not done.
// One chunk's data is cut short. The next SealAll gives every other chunk the slots that sealing wrote,
// skips the damaged one, and marks the fill done.
func TestChunksSealedBeforeSlotsGetThemOnTheSealersNextPass(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	var done bool
	if err := pool.QueryRow(ctx, `SELECT done FROM chunk_slot_fill`).Scan(&done); err != nil || !done {
		t.Fatalf("a database migrated without chunks: fill done %v (%v), want done", done, err)
	}
	s := postgres.NewTelemetry(pool)
	if _, err := s.Write(ctx, speeds(t, "a", every(0, 3500, 70*hour), func(ms int64) float64 { return float64(ms % 599) })); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SealAll(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	slots := func() map[int64]string {
		rows, err := pool.Query(ctx, `SELECT start, slots FROM chunk_data WHERE slots IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]string{}
		for rows.Next() {
			var start int64
			var b []byte
			if err := rows.Scan(&start, &b); err != nil {
				t.Fatal(err)
			}
			out[start] = string(b)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	sealed := slots()
	if len(sealed) != 70 {
		t.Fatalf("%d chunks with slots after sealing, want 70", len(sealed))
	}
	var damaged int64 // the chunk of hour 33
	if err := pool.QueryRow(ctx, `SELECT MIN(start) FROM chunk_data WHERE start >= $1`, chunkT0+33*hour).Scan(&damaged); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`UPDATE chunk_data SET slots = NULL`, `UPDATE chunk_slot_fill SET vehicle = NULL, name = NULL, start = NULL, done = false`,
		`UPDATE chunk_data SET data = substring(data FROM 1 FOR 9) WHERE start = ` + fmt.Sprint(damaged)} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := postgres.NewTelemetry(pool).SealAll(ctx, time.Now()); err != nil { // a process started after the upgrade
		t.Fatal(err)
	}
	filled := slots()
	if len(filled) != 69 {
		t.Errorf("%d chunks with slots after the fill, want 69", len(filled))
	}
	for start, b := range sealed {
		if _, ok := filled[start]; !ok && start != damaged {
			t.Errorf("the chunk from %d has no slots after the fill", start)
		} else if ok && filled[start] != b {
			t.Errorf("the chunk from %d has other slots after the fill than sealing wrote", start)
		}
	}
	if _, ok := filled[damaged]; ok {
		t.Errorf("the damaged chunk got slots")
	}
	if err := pool.QueryRow(ctx, `SELECT done FROM chunk_slot_fill`).Scan(&done); err != nil || !done {
		t.Fatalf("fill done %v (%v) after the pass, want done", done, err)
	}
}
