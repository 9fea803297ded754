package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/telemetry"
)

func init() {
	register(command{name: "reindex", args: "[--data DIR]",
		short: "rebuild the telemetry indexes (signals, latest values) from the stored records", run: runReindex})
}

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
	t, err := sqlite.OpenTelemetry(path, telemetry.DefaultCatalog)
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
