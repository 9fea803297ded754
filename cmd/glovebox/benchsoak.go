package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/glovebox/glovebox/internal/bench"
)

func init() {
	register(command{name: "bench soak", args: "[--vehicles N] [--duration D] [--every D] [--out DIR]",
		short: "run the simulated fleet and an app against a node for a while and plot its memory, goroutines and file descriptors", run: runBenchSoak})
}

func runBenchSoak(ctx context.Context, args []string) error {
	fs := newFlags("bench soak")
	var o bench.SoakOptions
	fs.IntVar(&o.Vehicles, "vehicles", 1000, "simulated vehicles, each sending its signals once a second")
	fs.DurationVar(&o.Duration, "duration", 30*time.Minute, "how long the fleet runs once it is set up")
	fs.DurationVar(&o.Every, "every", 10*time.Second, "time between two samples of the node process")
	fs.DurationVar(&o.AppEvery, "app-every", time.Second, "how often the demo insurer app reads each of its cars over GraphQL")
	out := fs.String("out", ".", "directory to write soak.csv (the samples) and soak.png (their plot) to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.Binary, err = nodeBinary(false); err != nil {
		return err
	}
	o.Progress = os.Stderr
	rep, err := bench.Soak(ctx, o)
	if err != nil {
		return err
	}
	rep.Print(os.Stdout)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(*os.File) error{
		"soak.csv": func(f *os.File) error { return rep.CSV(f) },
		"soak.png": func(f *os.File) error { return rep.PNG(f) },
	} {
		path := filepath.Join(*out, name)
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := write(f); err != nil {
			f.Close()
			return fmt.Errorf("couldn't write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", path)
	}
	return nil
}
