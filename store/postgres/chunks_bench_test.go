package postgres_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry"
)

// BenchmarkAggregate30Days measures the history query of issue 16 on PostgreSQL: one signal (speed) of one
// vehicle measured every second for 30 days (2,592,000 values; speedProfile), aggregated hourly (720 buckets) and daily
// (30) over the month, and in five-minute buckets (a chart's usual width) over its last 3 days (864
// buckets) and over the month (8,640), with FIRST, LAST, MIN, MAX, AVG and COUNT. "before" is the previous
// build's Aggregate (a scan of the rows folded by telemetry.FoldHistory), "rows" this build's on the same
// rows before sealing, "chunks" after sealing (with the rate at which the sealer moved the month into
// chunks), "chunks-without-slots" the same chunks with their five-minute slot summaries removed, as
// chunks written before migration 0013 are (a five-minute bucket then decodes every chunk). Each reports
// p50 and p99 over its iterations, and the bytes a value takes in rows (signals, with its index) and in
// chunks (chunk_sums and chunk_data, with theirs; "chunks" also by part and the payload, as
// BenchmarkSimulatedMonthOnDisk). Loading the month takes a few minutes; run it alone:
//
//	GLOVEBOX_REQUIRE_POSTGRES=1 go test ./store/postgres -run '^$' -bench Aggregate30Days -benchtime 20x
func BenchmarkAggregate30Days(b *testing.B) {
	ctx := context.Background()
	pool := migrated(b)
	s := postgres.NewTelemetry(pool)
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	const days = 30
	var batch []*telemetry.Record
	for sec := int64(0); sec < days*86400; sec += 300 {
		times := make([]int64, 300)
		for i := range times {
			times[i] = t0 + (sec+int64(i))*1000
		}
		batch = append(batch, speeds(b, fmt.Sprint(sec), times, speedProfile)...)
		if len(batch) == 100 {
			if _, err := s.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := s.Write(ctx, batch); err != nil {
		b.Fatal(err)
	}
	const values = days * 86400
	size := func(tables ...string) float64 {
		var n int64
		for _, t := range tables {
			n += bytesOf(b, pool, t).total()
		}
		return float64(n) / values
	}
	type query struct {
		name string
		step int64
		days int64 // the range: the month's last days
	}
	queries := []query{{"hourly", 3_600_000, days}, {"daily", 86_400_000, days}, {"5-minute-3-days", 300_000, 3}, {"5-minute-30-days", 300_000, days}}
	run := func(b *testing.B, q query, aggregate func(a telemetry.Aggregation, put func(int64, string, any)) error) {
		lo := t0 + (days-q.days)*86_400_000
		a := telemetry.Aggregation{Vehicle: 7, Signal: "speed", Kind: telemetry.KindNumber, From: lo, Step: q.step, Lo: lo, Hi: t0 + days*86_400_000,
			Aggs: []string{telemetry.AggFirst, telemetry.AggLast, telemetry.AggMin, telemetry.AggMax, telemetry.AggAvg, telemetry.AggCount}}
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			n := 0
			if err := aggregate(a, func(int64, string, any) { n++ }); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			if n != int(q.days*86_400_000/q.step)*6 {
				b.Fatalf("%d values put, want %d", n, q.days*86_400_000/q.step*6)
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
	}
	rowBytes := size("signals")
	for _, q := range queries {
		b.Run("before/"+q.name, func(b *testing.B) {
			run(b, q, func(a telemetry.Aggregation, put func(int64, string, any)) error {
				return aggregateBefore(ctx, pool, a, put)
			})
			b.ReportMetric(rowBytes, "B/value")
		})
		b.Run("rows/"+q.name, func(b *testing.B) {
			run(b, q, func(a telemetry.Aggregation, put func(int64, string, any)) error { return s.Aggregate(ctx, a, put) })
			b.ReportMetric(rowBytes, "B/value")
		})
	}
	sealStart := time.Now()
	if _, err := s.SealAll(ctx, time.Now()); err != nil {
		b.Fatal(err)
	}
	sealRate := values / time.Since(sealStart).Seconds()
	sums, data := bytesOf(b, pool, "chunk_sums"), bytesOf(b, pool, "chunk_data")
	chunkBytes := float64(sums.total()+data.total()) / values
	payload := float64(payloadOf(b, pool)) / values
	for _, q := range queries {
		b.Run("chunks/"+q.name, func(b *testing.B) {
			run(b, q, func(a telemetry.Aggregation, put func(int64, string, any)) error { return s.Aggregate(ctx, a, put) })
			b.ReportMetric(chunkBytes, "B/value")
			b.ReportMetric(float64(sums.heap+data.heap)/values, "heap-B/value")
			b.ReportMetric(float64(sums.indexes+data.indexes)/values, "index-B/value")
			b.ReportMetric(float64(sums.toast+data.toast)/values, "toast-B/value")
			b.ReportMetric(payload, "payload-B/value")
			b.ReportMetric(sealRate, "sealed-values/s")
		})
	}
	var slotBytes int64
	if err := pool.QueryRow(ctx, `SELECT COALESCE(SUM(pg_column_size(slots)), 0) FROM chunk_data`).Scan(&slotBytes); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE chunk_data SET slots = NULL`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM FULL chunk_data`); err != nil {
		b.Fatal(err)
	}
	noSlotBytes := size("chunk_sums", "chunk_data")
	for _, q := range queries {
		b.Run("chunks-without-slots/"+q.name, func(b *testing.B) {
			run(b, q, func(a telemetry.Aggregation, put func(int64, string, any)) error { return s.Aggregate(ctx, a, put) })
			b.ReportMetric(noSlotBytes, "B/value")
			b.ReportMetric(float64(slotBytes)/values, "slot-B/value")
		})
	}
}

// aggregateBefore is the Aggregate of the build before chunks: the signal's rows in time order, folded.
func aggregateBefore(ctx context.Context, pool *pgxpool.Pool, a telemetry.Aggregation, put func(b int64, agg string, v any)) error {
	return telemetry.FoldHistory(a, func(yield func(t int64, v any) error) error {
		rows, err := pool.Query(ctx, `SELECT s.time, s.num FROM signals s JOIN names n ON n.id = s.name
WHERE s.vehicle = $1 AND n.name = $2 AND s.time >= $3 AND s.time < $4 ORDER BY s.time`, int64(a.Vehicle), a.Signal, a.Lo, a.Hi)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ms int64
			var v *float64
			if err := rows.Scan(&ms, &v); err != nil {
				return err
			}
			if v != nil {
				if err := yield(ms, *v); err != nil {
					return err
				}
			}
		}
		return rows.Err()
	}, put)
}

// speedProfile is a speed at 0.1 km/h resolution that changes almost every second: a 20-minute drive
// followed by 10 minutes parked, over and over (the value a chunk encodes changes in most seconds, which
// is harder on the encoding than the simulator's data).
func speedProfile(ms int64) float64 {
	sec := ms / 1000 % 1800
	if sec >= 1200 {
		return 0
	}
	return math.Round((50+45*math.Sin(2*math.Pi*float64(sec)/1200))*10) / 10
}
