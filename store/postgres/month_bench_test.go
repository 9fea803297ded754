package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry"
)

// BenchmarkSimulatedMonthOnDisk stores the simulated month (sim.Stored: a month of the simulator's first
// vehicle, every signal it sends, the dataset of store/sqlite's BenchmarkIndexASimulatedMonth and of issue
// 16's "≈ 25 B per value"), seals it, vacuums, and reports the bytes per value of chunk_sums and chunk_data
// (every partition, with their TOAST tables and indexes: the figure comparable to SQLite's), where they
// go (tableBytes' parts, and payload: the bytes of the encoded chunks and slot summaries themselves), the
// bytes per value of rows left in signals (none once every hour is sealed) and of its primary key (after a
// backfill sealed whole, pages the sealer emptied, which PostgreSQL keeps for later inserts), and the p50
// and p99 of the month's speed aggregated hourly and in five-minute buckets. Loading the month
// takes a few minutes; run it alone:
//
//	GLOVEBOX_REQUIRE_POSTGRES=1 go test ./store/postgres -run '^$' -bench SimulatedMonthOnDisk -benchtime 1x
func BenchmarkSimulatedMonthOnDisk(b *testing.B) {
	ctx := context.Background()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	stored, values := sim.Stored(1, 1, start, 30)
	recs, err := sim.Parsed(stored)
	if err != nil {
		b.Fatal(err)
	}
	pool := migrated(b)
	s := postgres.NewTelemetry(pool)
	for i := 0; i < len(recs); i += 1000 {
		if _, err := s.Write(ctx, recs[i:min(i+1000, len(recs))]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.SealAll(ctx, time.Now()); err != nil {
		b.Fatal(err)
	}
	var chunks, inChunks, inRows int64
	if err := pool.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(cnt), 0), (SELECT COUNT(*) FROM signals) FROM chunk_sums`).
		Scan(&chunks, &inChunks, &inRows); err != nil {
		b.Fatal(err)
	}
	if chunks == 0 || inRows != 0 {
		b.Fatalf("%d chunks, %d values still in rows after sealing the month", chunks, inRows)
	}
	sums, data, rows := bytesOf(b, pool, "chunk_sums"), bytesOf(b, pool, "chunk_data"), bytesOf(b, pool, "signals")
	payload := payloadOf(b, pool)
	vehicle := recs[0].VehicleID
	for _, step := range []time.Duration{time.Hour, 5 * time.Minute} {
		b.Run("speed-by-"+step.String(), func(b *testing.B) {
			a := telemetry.Aggregation{Vehicle: vehicle, Signal: "speed", Kind: telemetry.KindNumber, From: start.UnixMilli(),
				Step: step.Milliseconds(), Lo: start.UnixMilli(), Hi: start.AddDate(0, 0, 30).UnixMilli(),
				Aggs: []string{telemetry.AggFirst, telemetry.AggLast, telemetry.AggMin, telemetry.AggMax, telemetry.AggAvg, telemetry.AggCount}}
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				n := 0
				if err := s.Aggregate(ctx, a, func(int64, string, any) { n++ }); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				if n == 0 {
					b.Fatal("no buckets")
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
			perValue := func(n int64) float64 { return float64(n) / float64(values) }
			b.ReportMetric(perValue(sums.total()+data.total()), "B/value")
			b.ReportMetric(perValue(rows.heap+rows.toast+rows.maps), "rows-B/value")
			b.ReportMetric(perValue(rows.indexes), "rows-index-B/value")
			b.ReportMetric(perValue(payload), "payload-B/value")
			b.ReportMetric(perValue(sums.heap+data.heap), "heap-B/value")
			b.ReportMetric(perValue(sums.indexes+data.indexes), "index-B/value")
			b.ReportMetric(perValue(sums.toast+data.toast), "toast-B/value")
			b.ReportMetric(perValue(sums.maps+data.maps), "maps-B/value")
			b.ReportMetric(float64(inChunks)/float64(chunks), "values/chunk")
			b.ReportMetric(float64(values), "values")
		})
	}
}

// tableBytes are the bytes on disk of a partitioned table's partitions, by part.
type tableBytes struct {
	heap    int64 // the rows' pages (main fork)
	indexes int64 // the indexes' pages (the primary key)
	toast   int64 // the TOAST table (values stored out of their rows) and its index
	maps    int64 // the free space and visibility maps of the table and its TOAST table
}

func (t tableBytes) total() int64 { return t.heap + t.indexes + t.toast + t.maps }

// bytesOf vacuums and analyzes the database and returns the bytes of the partitions of table, checking
// that the parts add up to pg_total_relation_size.
func bytesOf(b *testing.B, pool *pgxpool.Pool, table string) tableBytes {
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	var t tableBytes
	var total int64
	if err := pool.QueryRow(ctx, `SELECT COALESCE(SUM(pg_relation_size(c.oid, 'main')), 0),
		COALESCE(SUM(pg_indexes_size(c.oid)), 0),
		COALESCE(SUM(CASE WHEN c.reltoastrelid = 0 THEN 0 ELSE pg_relation_size(c.reltoastrelid, 'main') + pg_indexes_size(c.reltoastrelid) END), 0),
		COALESCE(SUM(pg_relation_size(c.oid, 'fsm') + pg_relation_size(c.oid, 'vm') + CASE WHEN c.reltoastrelid = 0 THEN 0
			ELSE pg_relation_size(c.reltoastrelid, 'fsm') + pg_relation_size(c.reltoastrelid, 'vm') END), 0),
		COALESCE(SUM(pg_total_relation_size(c.oid)), 0)
		FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1`, table).
		Scan(&t.heap, &t.indexes, &t.toast, &t.maps, &total); err != nil {
		b.Fatal(err)
	}
	if t.total() != total {
		b.Fatalf("%s: parts of %d bytes, pg_total_relation_size %d", table, t.total(), total)
	}
	return t
}

// payloadOf is the bytes of the chunks' encodings and slot summaries (chunk_data's data and slots, as
// telemetry/series wrote them): what the codec leaves, before PostgreSQL's rows, pages and indexes.
func payloadOf(b *testing.B, pool *pgxpool.Pool) int64 {
	var n int64
	if err := pool.QueryRow(context.Background(), `SELECT COALESCE(SUM(octet_length(data) + COALESCE(octet_length(slots), 0)), 0) FROM chunk_data`).
		Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
