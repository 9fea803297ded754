package postgres_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry"
)

// chunkT0 is an hour long closed on any clock this test runs on.
var chunkT0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC).UnixMilli()

// speeds builds records of vehicle 7 (300 samples each at most, the catalogue's limit being 500) carrying a
// speed sample at each time (unix ms) with value f(t).
func speeds(t testing.TB, id string, times []int64, f func(ms int64) float64) []*telemetry.Record {
	t.Helper()
	src := common.HexToAddress("0x00000000000000000000000000000000000000cc")
	var out []*telemetry.Record
	for i := 0; i < len(times); i += 300 {
		part := times[i:min(i+300, len(times))]
		var sigs []telemetry.EventSignal
		for _, ms := range part {
			sigs = append(sigs, telemetry.EventSignal{Name: "speed", Timestamp: time.UnixMilli(ms), Value: f(ms)})
		}
		ev, err := telemetry.NewEvent(src, 7, fmt.Sprintf("%s-%d", id, i), time.UnixMilli(part[0]), sigs)
		if err != nil {
			t.Fatal(err)
		}
		last := part[len(part)-1]
		r, err := telemetry.DefaultCatalog.Parse(&telemetry.Submission{Event: ev, Signature: make([]byte, 65)}, last+1000)
		if err != nil {
			t.Fatal(err)
		}
		r.Received, r.Signature[64] = last+5, 27
		out = append(out, r)
	}
	return out
}

// every returns the times from lo (ms after chunkT0) on, step apart, before hi.
func every(lo, step, hi int64) []int64 {
	var out []int64
	for ms := lo; ms < hi; ms += step {
		out = append(out, chunkT0+ms)
	}
	return out
}

// reference keeps the first value written at each millisecond, as the stores do.
type reference map[int64]float64

func (r reference) write(t *testing.T, s *postgres.Telemetry, recs []*telemetry.Record) {
	t.Helper()
	if _, err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		for _, v := range rec.Values {
			if _, ok := r[v.Time]; !ok {
				r[v.Time] = v.Number
			}
		}
	}
}

// answer renders the puts of an aggregation with every float's bits, so that equal means byte-identical.
func answer(run func(put func(b int64, agg string, v any)) error) (string, error) {
	var b strings.Builder
	err := run(func(i int64, agg string, v any) {
		if f, ok := v.(float64); ok {
			fmt.Fprintf(&b, "%d/%s=%x ", i, agg, math.Float64bits(f))
		} else {
			fmt.Fprintf(&b, "%d/%s=%T(%v) ", i, agg, v, v)
		}
	})
	return b.String(), err
}

const hour = int64(3_600_000)

// TestAggregationsFromChunksAndRowsMatchFoldHistoryBitForBit writes a day of speed at rates from 5 Hz (an hour
// of two chunks) to one value an hour, with values whose sums round, seals it, writes late values (new
// ones and ones at times already stored, which lose), and holds every aggregation at many bucket widths to
// telemetry.FoldHistory over the values first stored at each time: with rows only, chunks only, chunks
// and rows, and after sealing the late ones too.
func TestAggregationsFromChunksAndRowsMatchFoldHistoryBitForBit(t *testing.T) {
	ctx := context.Background()
	s := postgres.NewTelemetry(migrated(t))
	ref := reference{}
	odd := func(ms int64) float64 { return float64(ms%5987)*0.1 + 1.0/3 }
	ref.write(t, s, speeds(t, "a", every(0, 7_000, hour), odd))                 // hour 0: one value every 7 s
	ref.write(t, s, speeds(t, "b", every(hour, 200, 2*hour), odd))              // hour 1: 5 Hz, two chunks
	ref.write(t, s, speeds(t, "c", every(2*hour+5, 1_200_000, 3*hour), odd))    // hour 2: three values
	ref.write(t, s, speeds(t, "d", every(4*hour+59_999, 60_000, 24*hour), odd)) // hours 4–23: a value a minute
	ref.write(t, s, speeds(t, "e", every(24*hour+hour/2, hour, 25*hour), odd))  // one value in the next day
	ref.write(t, s, speeds(t, "f", every(3*hour+1000, 1000, 3*hour+5000), func(int64) float64 { return 599.99 }))
	late := func(id string) {
		// new values in sealed hours and an empty one, and values at times already stored (they lose)
		ref.write(t, s, speeds(t, id+"1", every(3_500, 7_000, hour), func(int64) float64 { return 3 }))
		ref.write(t, s, speeds(t, id+"2", every(0, 7_000, hour), func(int64) float64 { return 599 }))
		ref.write(t, s, speeds(t, id+"3", every(3*hour+500, 1000, 3*hour+3000), func(int64) float64 { return 1e-9 }))
		ref.write(t, s, speeds(t, id+"4", every(hour+100, 200, hour+1000), func(int64) float64 { return 0.7 }))
	}
	check := func(t *testing.T) {
		t.Helper()
		var times []int64
		for ms := range ref {
			times = append(times, ms)
		}
		slices.Sort(times)
		// fold is FoldHistory's answer over the reference values.
		fold := func(a telemetry.Aggregation) (string, error) {
			return answer(func(put func(int64, string, any)) error {
				return telemetry.FoldHistory(a, func(yield func(int64, any) error) error {
					for _, ms := range times {
						if err := yield(ms, ref[ms]); err != nil {
							return err
						}
					}
					return nil
				}, put)
			})
		}
		aggs := []string{telemetry.AggFirst, telemetry.AggLast, telemetry.AggMin, telemetry.AggMax, telemetry.AggAvg, telemetry.AggCount}
		for _, tc := range []struct {
			name         string
			from, step   int64
			lo, hi       int64
			aggs         []string
			keep, noRoll bool
		}{
			{"hourly over the day", chunkT0, hour, chunkT0, chunkT0 + 26*hour, aggs, false, false},
			{"daily over two days", chunkT0, 24 * hour, chunkT0, chunkT0 + 48*hour, aggs, false, false},
			{"one bucket of 30 days around them", chunkT0 - 10*24*hour, 30 * 24 * hour, chunkT0 - 10*24*hour, chunkT0 + 20*24*hour, aggs, false, false},
			{"minutes", chunkT0, 60_000, chunkT0, chunkT0 + 26*hour, aggs, false, false},
			{"7-minute buckets from an odd start", chunkT0 + 13, 7 * 60_000, chunkT0 + 13, chunkT0 + 26*hour, aggs, false, false},
			{"90-minute buckets, a range cut inside chunks", chunkT0, 90 * 60_000, chunkT0 + 1234, chunkT0 + 23*hour - 77, aggs, false, false},
			{"a range ending inside the 5 Hz hour", chunkT0, hour, chunkT0, chunkT0 + hour + hour/3, aggs, false, false},
			{"the median and a random value decode", chunkT0, hour, chunkT0, chunkT0 + 26*hour,
				[]string{telemetry.AggMedian, telemetry.AggRand, telemetry.AggAvg}, false, false},
			{"a filter", chunkT0, hour, chunkT0, chunkT0 + 26*hour, aggs, true, false},
			{"values alone", chunkT0, hour, chunkT0, chunkT0 + 26*hour, aggs, false, true},
		} {
			a := telemetry.Aggregation{Vehicle: 7, Signal: "speed", Kind: telemetry.KindNumber, From: tc.from, Step: tc.step,
				Lo: tc.lo, Hi: tc.hi, Aggs: tc.aggs, NoRollup: tc.noRoll}
			if tc.keep {
				a.Keep = func(v any) bool { return v.(float64) > 100 }
			}
			want, err := fold(a)
			if err != nil {
				t.Fatal(err)
			}
			got, err := answer(func(put func(int64, string, any)) error { return s.Aggregate(ctx, a, put) })
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got != want {
				t.Errorf("%s:\ngot  %s\nwant %s", tc.name, got, want)
			}
		}
		// Spans, as segment summaries ask: one read for all (SpanAggregator), each span as one bucket.
		spans := []telemetry.Span{{Start: chunkT0 + 1234, End: chunkT0 + 3*hour}, {Start: chunkT0 + hour, End: chunkT0 + 2*hour},
			{Start: chunkT0, End: chunkT0 + 26*hour}, {Start: chunkT0 + 5*hour, End: chunkT0 + 5*hour}, {Start: chunkT0 + 3*hour, End: chunkT0 + 4*hour},
			{Start: chunkT0 + 4*hour + 30_000, End: chunkT0 + 4*hour + 90_000}, {Start: chunkT0 - hour, End: chunkT0}}
		stats := []string{telemetry.AggFirst, telemetry.AggLast, telemetry.AggMin, telemetry.AggMax, telemetry.AggAvg, telemetry.AggCount}
		a := telemetry.Aggregation{Vehicle: 7, Signal: "speed", Kind: telemetry.KindNumber, Aggs: stats}
		var want strings.Builder
		for i, sp := range spans {
			if sp.Start >= sp.End {
				continue
			}
			b := a
			b.From, b.Step, b.Lo, b.Hi = sp.Start, sp.End-sp.Start, sp.Start, sp.End
			w, err := fold(b)
			if err != nil {
				t.Fatal(err)
			}
			want.WriteString(strings.ReplaceAll(w, "0/", fmt.Sprint(i)+"/"))
		}
		got, err := answer(func(put func(int64, string, any)) error {
			return s.AggregateSpans(ctx, a, spans, func(i int, agg string, v any) { put(int64(i), agg, v) })
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != want.String() {
			t.Errorf("spans:\ngot  %s\nwant %s", got, want.String())
		}
		sum, err := s.Summary(ctx, 7, chunkT0+hour+hour/2)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ms := range times {
			if ms >= chunkT0+hour+hour/2 {
				n++
			}
		}
		if len(sum) != 1 || sum[0].Count != int64(n) || sum[0].Last != times[len(times)-1] {
			t.Errorf("summary %+v, want %d values up to %d", sum, n, times[len(times)-1])
		}
	}
	t.Run("rows", check)
	if _, err := s.SealAll(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Run("chunks", check)
	late("late")
	t.Run("chunks and late rows", check)
	if _, err := s.SealAll(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Run("late rows sealed", check)
}

func TestTheOpenHourStaysInRowsUntilItsGraceHasPassed(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	s := postgres.NewTelemetry(pool)
	if _, err := s.Write(ctx, speeds(t, "a", every(0, 60_000, 2*hour), func(int64) float64 { return 1 })); err != nil {
		t.Fatal(err)
	}
	rows := func() (n int64) {
		if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM signals`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		now  int64
		rows int64
	}{
		{chunkT0 + hour + postgres.SealGrace.Milliseconds() - 1, 120},  // still
		{chunkT0 + hour + postgres.SealGrace.Milliseconds(), 60},       // hour 0 sealed
		{chunkT0 + 2*hour + postgres.SealGrace.Milliseconds() - 1, 60}, // hour 1 in its grace
		{chunkT0 + 2*hour + postgres.SealGrace.Milliseconds(), 0},      // both
	} {
		if _, err := s.SealAll(ctx, time.UnixMilli(tc.now)); err != nil {
			t.Fatal(err)
		}
		if got := rows(); got != tc.rows {
			t.Fatalf("at %d: %d rows, want %d", tc.now-chunkT0, got, tc.rows)
		}
	}
}

func TestSealersInManyProcessesMoveEveryValueOnce(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	w := postgres.NewTelemetry(pool)
	// 200 hours of one value a minute: more groups than one sealing transaction takes.
	want := int64(0)
	for h := int64(0); h < 200; h += 20 {
		recs := speeds(t, fmt.Sprint(h), every(h*hour, 60_000, (h+20)*hour), func(ms int64) float64 { return float64(ms % 1000) })
		if _, err := w.Write(ctx, recs); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			want += int64(len(r.Values))
		}
	}
	var wg sync.WaitGroup
	moved := make([]int64, 4)
	for i := range moved {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := postgres.NewTelemetry(pool) // another process
			for range 50 {
				n, err := s.SealAll(ctx, time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				moved[i] += n
			}
		}()
	}
	wg.Wait()
	if _, err := w.SealAll(ctx, time.Now()); err != nil { // what a sealer that lost every turn left
		t.Fatal(err)
	}
	var total, inChunks, rows int64
	for _, n := range moved {
		total += n
	}
	if err := pool.QueryRow(ctx, `SELECT (SELECT COALESCE(SUM(cnt), 0) FROM chunk_sums), (SELECT COUNT(*) FROM signals)`).Scan(&inChunks, &rows); err != nil {
		t.Fatal(err)
	}
	if inChunks != want || rows != 0 {
		t.Fatalf("%d values in chunks and %d in rows, want %d and none (the sealers moved %d)", inChunks, rows, want, total)
	}
}

func TestACorruptChunkIsAnErrorNamingIt(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	s := postgres.NewTelemetry(pool)
	if _, err := s.Write(ctx, speeds(t, "a", every(0, 60_000, hour), func(int64) float64 { return 1 })); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SealAll(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	a := telemetry.Aggregation{Vehicle: 7, Signal: "speed", Kind: telemetry.KindNumber, From: chunkT0, Step: hour, Lo: chunkT0, Hi: chunkT0 + hour,
		Aggs: []string{telemetry.AggAvg}}
	for _, tc := range []struct {
		name, sql string
		noRollup  bool
	}{
		{"a truncated chunk", `UPDATE chunk_data SET data = substring(data from 1 for 5)`, true},
		{"a sum that is no sum", `UPDATE chunk_sums SET xsum = '\x0102'`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := pool.Exec(ctx, tc.sql); err != nil {
				t.Fatal(err)
			}
			a.NoRollup = tc.noRollup
			err := s.Aggregate(ctx, a, func(int64, string, any) {})
			if err == nil || !strings.Contains(err.Error(), "vehicle 7") || !strings.Contains(err.Error(), fmt.Sprint(chunkT0)) {
				t.Fatalf("got %v, want an error naming vehicle 7 and the chunk from %d", err, chunkT0)
			}
		})
	}
}

func TestValuesStoredBeforeTheUpgradeAreSealedAfterIt(t *testing.T) {
	ctx := context.Background()
	// A database as the build before chunks left it: migrations up to 0011, a month of rows.
	pool := migratedBefore(t, 12)
	if _, err := pool.Exec(ctx, strings.ReplaceAll(`CREATE TABLE signals_p202611 PARTITION OF signals FOR VALUES FROM (1793491200000) TO (1796083200000);
		INSERT INTO names (name) VALUES ('speed'), ('powertrainType');
		INSERT INTO signals (vehicle, name, time, num) SELECT 7, 1, $1 + i * 60000, (i % 50) * 0.1 FROM generate_series(0, 299) i;
		INSERT INTO signals (vehicle, name, time, str) SELECT 7, 2, $1 + i * 600000, 'ICE' FROM generate_series(0, 29) i`, "$1", fmt.Sprint(chunkT0))); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	s := postgres.NewTelemetry(pool)
	read := func() string {
		a := telemetry.Aggregation{Vehicle: 7, Signal: "speed", Kind: telemetry.KindNumber, From: chunkT0, Step: hour, Lo: chunkT0, Hi: chunkT0 + 5*hour,
			Aggs: []string{telemetry.AggAvg, telemetry.AggMax, telemetry.AggCount, telemetry.AggLast}}
		got, err := answer(func(put func(int64, string, any)) error { return s.Aggregate(ctx, a, put) })
		if err != nil {
			t.Fatal(err)
		}
		sum, err := s.Summary(ctx, 7, 0)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(sum, func(a, b telemetry.SignalSummary) int { return strings.Compare(a.Name, b.Name) })
		return fmt.Sprint(got, sum)
	}
	before := read()
	if n, err := s.SealAll(ctx, time.Now()); err != nil || n != 330 {
		t.Fatalf("sealed %d values (%v), want 330", n, err)
	}
	var rows, chunks int
	if err := pool.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM signals), (SELECT COUNT(*) FROM chunk_sums)`).Scan(&rows, &chunks); err != nil {
		t.Fatal(err)
	}
	// speed: hours 0–4 (300 values a minute apart); powertrainType: hours 0–4 (30 values ten minutes apart)
	if rows != 0 || chunks != 10 {
		t.Fatalf("%d rows and %d chunks after sealing, want none and 10", rows, chunks)
	}
	if after := read(); after != before {
		t.Fatalf("after sealing: %s\nbefore: %s", after, before)
	}
	if !strings.Contains(before, "{powertrainType 30 ") || !strings.Contains(before, "{speed 300 ") {
		t.Fatalf("summary before sealing: %s", before)
	}
}

func TestRetentionDropsAMonthNoOtherVehicleHasDataInWhole(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	s, other := postgres.NewTelemetry(pool), postgres.NewTelemetry(pool)
	oct := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	write := func(s *postgres.Telemetry, vehicle uint64, id string, times []int64) {
		t.Helper()
		recs := speeds(t, id, times, func(ms int64) float64 { return float64(ms % 100) })
		for _, r := range recs {
			r.VehicleID = vehicle
		}
		if _, err := s.Write(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	span := func(from, step, n int64) []int64 {
		var out []int64
		for i := range n {
			out = append(out, from+i*step)
		}
		return out
	}
	write(other, 7, "oct", span(oct+hour, 60_000, 300)) // October: vehicle 7 alone, 300 values
	write(other, 7, "nov", span(nov+hour, 60_000, 120)) // November: vehicle 7 …
	write(other, 8, "nov8", span(nov+hour, 60_000, 60)) // … and vehicle 8
	if _, err := s.SealAll(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	exists := func(table string) bool {
		var ok bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	sweep := func(job telemetry.DeleteJob) telemetry.Deleted {
		t.Helper()
		var total telemetry.Deleted
		for {
			d, done, err := s.DeleteBatch(ctx, job, 1000)
			if err != nil {
				t.Fatal(err)
			}
			total.Add(d)
			if done {
				return total
			}
		}
	}

	t.Run("while the tables are busy the month's rows are deleted instead", func(t *testing.T) {
		busy, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Rollback(ctx)
		if _, err := busy.Exec(ctx, `SELECT 1 FROM records LIMIT 1`); err != nil { // holds a lock on the parent
			t.Fatal(err)
		}
		d := sweep(telemetry.DeleteJob{Key: "erasure/1/0", Vehicle: 7, From: oct, To: nov})
		if d.Records != 1 || d.Values != 300 || !exists("records_p202610") {
			t.Fatalf("deleted %+v, the partition there: %v; want 1 record and 300 values deleted as rows", d, exists("records_p202610"))
		}
	})
	write(other, 7, "oct2", span(oct+hour, 60_000, 300)) // October again
	if _, err := s.SealAll(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Run("a retention window past the month drops it whole, and deletes the next month's rows", func(t *testing.T) {
		d := sweep(telemetry.DeleteJob{Key: telemetry.RetentionJob, Vehicle: 7, From: 0, To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()})
		if d.Records != 2 || d.Values != 300+120 {
			t.Fatalf("deleted %+v, want 2 records and 420 values", d)
		}
		for _, table := range []string{"records_p202610", "signals_p202610", "chunk_sums_p202610", "chunk_data_p202610"} {
			if exists(table) {
				t.Errorf("%s is still there", table)
			}
		}
		if !exists("chunk_sums_p202611") {
			t.Fatal("November's partition was dropped with vehicle 8's values in it")
		}
		sum, err := s.Summary(ctx, 8, 0)
		if err != nil || len(sum) != 1 || sum[0].Count != 60 {
			t.Fatalf("vehicle 8: %+v %v, want its 60 values", sum, err)
		}
		tl, err := s.Tallies(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range tl {
			if x.Key == telemetry.RetentionJob && (x.Records != 2 || x.Values != 420) {
				t.Fatalf("tally %+v", x)
			}
		}
	})
	t.Run("a late record for the dropped month is stored again by a process that knew the partition", func(t *testing.T) {
		write(other, 7, "late", span(oct+2*hour, 1000, 3))
		sum, err := s.Summary(ctx, 7, 0)
		if err != nil || len(sum) != 1 || sum[0].Count != 3 {
			t.Fatalf("vehicle 7: %+v %v, want the 3 late values", sum, err)
		}
	})
}

func TestASealingTransactionCutOffLosesNoValue(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	s := postgres.NewTelemetry(pool)
	recs := speeds(t, "a", every(0, 10_000, 3*hour), func(ms int64) float64 { return float64(ms % 500) })
	if _, err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	counts := func() (rows, inChunks int64) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM signals), (SELECT COALESCE(SUM(cnt), 0) FROM chunk_sums)`).Scan(&rows, &inChunks); err != nil {
			t.Fatal(err)
		}
		return rows, inChunks
	}
	// Another session holds chunk_sums: the sealer takes the rows (DELETE … RETURNING) and then waits for
	// it inside its transaction, where it is cut off, as by a crash.
	blocker, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Exec(ctx, `LOCK TABLE chunk_sums IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	sealCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := s.SealAll(sealCtx, time.Now()); done <- err }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var waiting bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'
			AND query LIKE 'SELECT c.start, c.kind, d.data FROM chunk_sums%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sealer never waited on the chunks")
		}
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a sealer cut off reported success")
	}
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, inChunks := counts(); rows != 1080 || inChunks != 0 {
		t.Fatalf("after the cut: %d rows and %d values in chunks, want 1080 and none", rows, inChunks)
	}
	// The cut-off session's end reaches the server after the client gave up on it: until then it holds
	// the sealing lock, and a sealer stops at once, moving nothing (as it should).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var held bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory')`).Scan(&held); err != nil {
			t.Fatal(err)
		}
		if !held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cut-off sealer's session never released the sealing lock")
		}
	}
	if n, err := s.SealAll(ctx, time.Now()); err != nil || n != 1080 {
		t.Fatalf("sealed %d values (%v), want 1080", n, err)
	}
	if rows, inChunks := counts(); rows != 0 || inChunks != 1080 {
		t.Fatalf("after sealing: %d rows and %d values in chunks, want none and 1080", rows, inChunks)
	}
}
