package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/telemetry"
)

func init() {
	register(command{name: "reindex", args: "[--data DIR]",
		short: "rebuild the telemetry indexes (signals, latest values) from the stored records of a stopped node", run: runReindex})
}

// ReindexGCPercent is the garbage collector's target while reindex runs (GOGC, unless that is set): an
// offline job that parses every stored record, whose live heap is small and short-lived. A fleet's day
// (BenchmarkReindexAFleetDay, with the records file mapped) went from 1.74–1.76 to 2.09–2.15 M values/s
// at 400 instead of the default 100, the collector's part of the peak RSS from about 180 MB to 390
// (2026-12-07, 2 cores; docs/columnar.md); 800, or no target with a memory limit, took longer again.
const ReindexGCPercent = 400

func runReindex(ctx context.Context, args []string) error {
	fs := newFlags("reindex")
	data := fs.String("data", envDefault("GLOVEBOX_DATA", "./glovebox-data"), "data directory (env GLOVEBOX_DATA)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errUsage
	}
	path := filepath.Join(*data, "telemetry.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no telemetry store at %s: --data (env GLOVEBOX_DATA) names a node's data directory", path)
	}
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(ReindexGCPercent))
	}
	// SQLite caps the map at its compile-time maximum; past it, pages are read as without a map.
	t, err := sqlite.OpenTelemetryWith(path, telemetry.DefaultCatalog, sqlite.Options{MapRecords: 1 << 40})
	if err != nil {
		return err
	}
	defer t.Close()
	start := time.Now()
	n, err := t.Reindex(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reindexed %d records in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}
