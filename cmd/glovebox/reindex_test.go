package main

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/store/sqlite/sqlitetest"
	"github.com/glovebox/glovebox/telemetry"
)

// storeFleet writes the records of vehicles simulated vehicles (seed 1) over a day from 2026-11-01 UTC
// into a telemetry store in dir, indexed as the node's indexer would have left it when index is set, and
// returns how many signal values they hold. The records are not kept: a benchmark's heap holds only what
// reindex allocates.
func storeFleet(tb testing.TB, dir string, vehicles int, index bool) int {
	tb.Helper()
	recs, values := sim.Stored(1, vehicles, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1)
	ctx := context.Background()
	s, err := sqlite.OpenTelemetry(filepath.Join(dir, "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < len(recs); i += 1000 {
		if _, err := s.Write(ctx, recs[i:min(i+1000, len(recs))]); err != nil {
			tb.Fatal(err)
		}
	}
	if index {
		if _, err := s.Index(ctx); err != nil {
			tb.Fatal(err)
		}
		if _, err := s.Seal(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	return values
}

// TestReindexRebuildsWhatTheIndexerWrote indexes a day of three vehicles as the node does, then runs
// `glovebox reindex` (which reads the records through a memory map, with its own collector target) on
// the stopped store: every chunk and latest value comes back the same.
func TestReindexRebuildsWhatTheIndexerWrote(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	storeFleet(t, dir, 3, true)
	want, chunks := sqlitetest.Digest(t, dir)
	if chunks == 0 {
		t.Fatal("the indexer wrote no chunks")
	}
	code, out, errOut := runCLI(t, "reindex", "--data", dir)
	if code != 0 || !strings.HasPrefix(out, "reindexed ") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if got, _ := sqlitetest.Digest(t, dir); got != want {
		t.Errorf("signals.db after reindex differs from the indexer's")
	}
}

// BenchmarkReindexAFleetDay runs `glovebox reindex` on the stored records of a day of 25 vehicles at
// 1 Hz, their records interleaved second by second (store/sqlite's BenchmarkIndexAFleetDay, in a process
// that holds only what reindex allocates), and reports the signal values indexed per second and per
// second of CPU time: issue 16's figure for indexing a fleet's backfill from stored records.
func BenchmarkReindexAFleetDay(b *testing.B) {
	dir := b.TempDir()
	values := storeFleet(b, dir, 25, false)
	runtime.GC()
	oldOut := stdout
	defer func() { stdout = oldOut }()
	var out strings.Builder
	stdout = &out
	for b.Loop() {
		t0, c0 := time.Now(), sqlitetest.CPUTime(b)
		if code := run(context.Background(), []string{"reindex", "--data", dir}); code != 0 {
			b.Fatalf("reindex exited %d", code)
		}
		took, cpu := time.Since(t0), sqlitetest.CPUTime(b)-c0
		b.ReportMetric(float64(values)/took.Seconds(), "values/s")
		b.ReportMetric(float64(values)/cpu.Seconds(), "values/cpu-s")
	}
	b.ReportMetric(float64(values), "values")
}
