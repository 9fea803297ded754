package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/store/sqlite/sqlitetest"
	"github.com/glovebox/glovebox/telemetry"
)

// The simulated month (sim.Stored: the simulator's first vehicle, seed 1, as internal/enginebench), as
// the records a node stores: generated once per test binary.
var (
	monthOnce    sync.Once
	monthRecords []*telemetry.Record
	monthValues  int
)

func simulatedMonth(b *testing.B) ([]*telemetry.Record, int) {
	monthOnce.Do(func() {
		monthRecords, monthValues = sim.Stored(1, 1, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 30)
	})
	if len(monthRecords) == 0 {
		b.Fatal("the simulator sent no records")
	}
	return monthRecords, monthValues
}

// parsedMonth returns recs with the values and events the ingester would have parsed from them (Write
// hands them to the indexer).
func parsedMonth(b *testing.B, recs []*telemetry.Record) []*telemetry.Record {
	out, err := sim.Parsed(recs)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkIndexASimulatedMonth stores a simulated month of one vehicle's records, then times indexing
// them and reports the values indexed per second (and per second of CPU time, which a loaded machine
// distorts less) and the bytes per value of signals.db after a checkpoint: as a backfill (every hour
// closed, so every value goes straight into chunks), and as the live path does it (every hour still
// open: rows, then sealed into chunks once closed; the rate counts both); and as a backfill that arrives
// through ingest ("backfill parsed at ingest": each batch of 1,000 records written with the values the
// ingester parsed, and indexed after it, as the node's indexer does when a write wakes it; the indexing
// passes are timed, not the writes).
func BenchmarkIndexASimulatedMonth(b *testing.B) {
	recs, values := simulatedMonth(b)
	benchmarkIndex(b, recs, parsedMonth(b, recs), values)
}

// BenchmarkIndexAFleetDay is BenchmarkIndexASimulatedMonth's three modes on a day of a fleet of 25
// vehicles at 1 Hz (the fleet of issue 16's backfill figure, a thirtieth of its month), the records of
// every vehicle interleaved second by second as a fleet's uploads of the same hours arrive: each indexing
// pass of IndexChunk records then holds a minute and a half of every vehicle's hour.
func BenchmarkIndexAFleetDay(b *testing.B) {
	recs, values := sim.Stored(1, 25, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1)
	benchmarkIndex(b, recs, parsedMonth(b, recs), values)
}

// benchmarkIndex runs the modes of BenchmarkIndexASimulatedMonth on recs (parsed: the same with their
// values, as the ingester hands them over), which hold values signal values.
func benchmarkIndex(b *testing.B, recs, parsed []*telemetry.Record, values int) {
	for _, mode := range []string{"backfill", "rows then sealed", "backfill parsed at ingest"} {
		live := mode == "rows then sealed"
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				s, err := sqlite.OpenTelemetry(filepath.Join(dir, "telemetry.db"), telemetry.DefaultCatalog)
				if err != nil {
					b.Fatal(err)
				}
				now := time.Now()
				if live {
					now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				}
				s.Now = func() time.Time { return now }
				var took0, cpu0 time.Duration // the indexing passes of "parsed at ingest"
				for i := 0; i < len(recs); i += 1000 {
					batch := recs[i:min(i+1000, len(recs))]
					if mode == "backfill parsed at ingest" {
						batch = parsed[i:min(i+1000, len(recs))]
					}
					if _, err := s.Write(ctx, batch); err != nil {
						b.Fatal(err)
					}
					if mode == "backfill parsed at ingest" {
						t0, c0 := time.Now(), sqlitetest.CPUTime(b)
						if _, err := s.IndexWritten(ctx); err != nil {
							b.Fatal(err)
						}
						took0, cpu0 = took0+time.Since(t0), cpu0+sqlitetest.CPUTime(b)-c0
					}
				}
				b.StartTimer()
				t0, c0 := time.Now().Add(-took0), sqlitetest.CPUTime(b)-cpu0
				if _, err := s.Index(ctx); err != nil {
					b.Fatal(err)
				}
				now = time.Now()
				if _, err := s.Seal(ctx); err != nil {
					b.Fatal(err)
				}
				took, cpu := time.Since(t0), sqlitetest.CPUTime(b)-c0
				b.StopTimer()
				if _, err := s.SignalsDB().ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
					b.Fatal(err)
				}
				fi, err := os.Stat(filepath.Join(dir, sqlite.SignalsFile))
				if err != nil {
					b.Fatal(err)
				}
				var used int64 // the bytes of pages in use: free pages (of deleted rows) are reused as the file grows
				if err := s.SignalsDB().QueryRowContext(ctx, `SELECT ((SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count()))
	* (SELECT page_size FROM pragma_page_size())`).Scan(&used); err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(values)/took.Seconds(), "values/s")
				b.ReportMetric(float64(values)/cpu.Seconds(), "values/cpu-s")
				b.ReportMetric(float64(fi.Size())/float64(values), "B/value")
				b.ReportMetric(float64(used)/float64(values), "B/value-in-use")
				b.ReportMetric(float64(values), "values")
				b.StartTimer()
			}
		})
	}
}

// BenchmarkAggregateASimulatedMonthByHour answers the simulated month's speed by hour (AVG, MIN, MAX,
// FIRST, LAST, COUNT: 720 buckets) from the indexed store.
// sealedMonth returns a store holding the simulated month, indexed and sealed, and its vehicle.
func sealedMonth(b *testing.B) (*sqlite.Telemetry, uint64) {
	recs, _ := simulatedMonth(b)
	ctx := context.Background()
	s, err := sqlite.OpenTelemetry(filepath.Join(b.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for i := 0; i < len(recs); i += 1000 {
		if _, err := s.Write(ctx, recs[i:min(i+1000, len(recs))]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Index(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Seal(ctx); err != nil {
		b.Fatal(err)
	}
	return s, recs[0].VehicleID
}

func BenchmarkAggregateASimulatedMonthByHour(b *testing.B) {
	ctx := context.Background()
	s, vehicle := sealedMonth(b)
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := telemetry.Aggregation{Vehicle: vehicle, Signal: "speed", Kind: telemetry.KindNumber, From: from.UnixMilli(),
		Step: time.Hour.Milliseconds(), Lo: from.UnixMilli(), Hi: from.AddDate(0, 0, 30).UnixMilli(),
		Aggs: []string{telemetry.AggAvg, telemetry.AggMin, telemetry.AggMax, telemetry.AggFirst, telemetry.AggLast, telemetry.AggCount}}
	buckets := 0
	for b.Loop() {
		buckets = 0
		if err := s.Aggregate(ctx, a, func(int64, string, any) { buckets++ }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buckets)/6, "buckets")
}

// BenchmarkAggregateASimulatedMonthBy5Minutes is the month's speed in 5-minute buckets: narrower than a
// chunk, so every chunk is decoded.
func BenchmarkAggregateASimulatedMonthBy5Minutes(b *testing.B) {
	ctx := context.Background()
	s, vehicle := sealedMonth(b)
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := telemetry.Aggregation{Vehicle: vehicle, Signal: "speed", Kind: telemetry.KindNumber, From: from.UnixMilli(),
		Step: (5 * time.Minute).Milliseconds(), Lo: from.UnixMilli(), Hi: from.AddDate(0, 0, 30).UnixMilli(),
		Aggs: []string{telemetry.AggAvg, telemetry.AggMin, telemetry.AggMax, telemetry.AggFirst, telemetry.AggLast, telemetry.AggCount}}
	for b.Loop() {
		if err := s.Aggregate(ctx, a, func(int64, string, any) {}); err != nil {
			b.Fatal(err)
		}
	}
}
