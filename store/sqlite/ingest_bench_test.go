package sqlite_test

import (
	"context"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/store/sqlite/sqlitetest"
	"github.com/glovebox/glovebox/telemetry"
)

// liveRecords returns n records of ten signals (as `glovebox bench ingest` sends them) from the vehicles
// in turn, step apart and ending at end, parsed as the ingester hands them to Write.
func liveRecords(b *testing.B, n, vehicles int, step time.Duration, end time.Time) []*telemetry.Record {
	b.Helper()
	end = end.Truncate(time.Millisecond)
	recs := make([]*telemetry.Record, 0, n)
	for i := range n {
		vehicle := uint64(1 + i%vehicles)
		src := common.BigToAddress(new(big.Int).SetUint64(vehicle))
		at := end.Add(time.Duration(i-n) * step)
		ev, err := telemetry.NewEvent(src, vehicle, strconv.Itoa(i), at, sim.TenSignals(at, i))
		if err != nil {
			b.Fatal(err)
		}
		r, err := telemetry.DefaultCatalog.ParseStored(ev)
		if err != nil {
			b.Fatal(err)
		}
		r.Received = at.UnixMilli()
		recs = append(recs, r)
	}
	return recs
}

// BenchmarkIngestLive writes 20,000 records from 1,000 vehicles into a store in durable writes of 500
// (the ingester groups about that many; 25 as `glovebox bench visible` sends them) and indexes after each, as the node's indexer does when it keeps
// up, and reports the CPU time per record of the writes and of indexing (CPU time, which a loaded machine
// distorts less than wall time), then seals them two hours later. Every hour is open while indexing: the
// values go to open_values. "parsed" hands Write
// the records with their values, as the ingester does; "unparsed" without, so the indexer parses them.
func BenchmarkIngestLive(b *testing.B) {
	const n = 20000
	parsed := liveRecords(b, n, 1000, time.Millisecond, time.Now())
	unparsed := make([]*telemetry.Record, n)
	for i, r := range parsed {
		u := *r
		u.Values, u.Events = nil, nil
		unparsed[i] = &u
	}
	b.Run("parsed", func(b *testing.B) { benchmarkIngestLive(b, parsed, 500) })
	b.Run("unparsed", func(b *testing.B) { benchmarkIngestLive(b, unparsed, 500) })
	// `glovebox bench visible`'s fleet: 1,000 records a second, indexed in passes 25 ms apart
	b.Run("passes of 25", func(b *testing.B) { benchmarkIngestLive(b, parsed[:5000], 25) })
}

func benchmarkIngestLive(b *testing.B, recs []*telemetry.Record, per int) {
	n := len(recs)
	ctx := context.Background()
	var write, index, seal time.Duration
	for range b.N {
		tel, err := sqlite.OpenTelemetry(filepath.Join(b.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
		if err != nil {
			b.Fatal(err)
		}
		for start := 0; start < n; start += per {
			c0 := sqlitetest.CPUTime(b)
			if _, err := tel.Write(ctx, recs[start:min(start+per, n)]); err != nil {
				b.Fatal(err)
			}
			c1 := sqlitetest.CPUTime(b)
			if _, err := tel.Index(ctx); err != nil {
				b.Fatal(err)
			}
			write, index = write+c1-c0, index+sqlitetest.CPUTime(b)-c1
		}
		// two hours later every hour is closed: sealing moves the values into chunks
		tel.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		c0 := sqlitetest.CPUTime(b)
		if _, err := tel.Seal(ctx); err != nil {
			b.Fatal(err)
		}
		seal += sqlitetest.CPUTime(b) - c0
		tel.Close()
	}
	records := float64(b.N * n)
	b.ReportMetric(float64(write.Microseconds())/records, "write-cpu-µs/record")
	b.ReportMetric(float64(index.Microseconds())/records, "index-cpu-µs/record")
	b.ReportMetric(float64(seal.Microseconds())/records, "seal-cpu-µs/record")
}

// BenchmarkAggregateAnOpenHour answers one vehicle's speed by minute (AVG, MAX: 60 buckets) over an hour
// that is not closed, whose values are all open rows: an hour of one record of ten signals a second.
func BenchmarkAggregateAnOpenHour(b *testing.B) {
	ctx := context.Background()
	end := time.Now().Truncate(time.Hour).Add(time.Hour)
	recs := liveRecords(b, 3600, 1, time.Second, end)
	tel, err := sqlite.OpenTelemetry(filepath.Join(b.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		b.Fatal(err)
	}
	defer tel.Close()
	tel.Now = func() time.Time { return end.Add(-time.Hour) } // the hour is open
	if _, err := tel.Write(ctx, recs); err != nil {
		b.Fatal(err)
	}
	if _, err := tel.Index(ctx); err != nil {
		b.Fatal(err)
	}
	speed, _ := telemetry.DefaultCatalog.Lookup("speed")
	a := telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: speed.Kind, From: end.Add(-time.Hour).UnixMilli(), Step: time.Minute.Milliseconds(),
		Lo: end.Add(-time.Hour).UnixMilli(), Hi: end.UnixMilli(), Aggs: []string{telemetry.AggAvg, telemetry.AggMax}}
	for b.Loop() {
		n := 0
		if err := tel.Aggregate(ctx, a, func(int64, string, any) { n++ }); err != nil {
			b.Fatal(err)
		}
		if n != 120 {
			b.Fatalf("%d answers, want 120", n)
		}
	}
}

// BenchmarkAppendFloor is the least a durable raw write could cost, for comparison with Write's
// write-cpu-µs/record in BenchmarkIngestLive: the same 20,000 records' signed events and signatures
// appended to a plain file, with one fdatasync per 500 records (Write's group), and nothing else — no
// deduplication, no index to read them back by vehicle and time, no deletion. It reports the CPU time per
// record and the bytes appended per record.
func BenchmarkAppendFloor(b *testing.B) {
	recs := liveRecords(b, 20000, 1000, time.Millisecond, time.Now())
	for b.Loop() {
		b.StopTimer()
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "records"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0 := sqlitetest.CPUTime(b)
		var buf []byte
		written := 0
		for i, r := range recs {
			buf = append(buf, r.Event...)
			buf = append(buf, r.Signature[:]...)
			if (i+1)%500 == 0 || i == len(recs)-1 {
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
				if err := syscall.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
				written += len(buf)
				buf = buf[:0]
			}
		}
		cpu := sqlitetest.CPUTime(b) - c0
		b.StopTimer()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(len(recs)), "cpu-µs/record")
		b.ReportMetric(float64(written)/float64(len(recs)), "B/record")
		b.StartTimer()
	}
}
