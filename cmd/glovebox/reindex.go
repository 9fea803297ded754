package main

import (
	"context"
	"fmt"
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
	t, err := sqlite.OpenTelemetry(filepath.Join(*data, "telemetry.db"), telemetry.DefaultCatalog)
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
