package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/glovebox/glovebox/internal/bench"
)

func init() {
	register(command{name: "bench query", args: "[--vehicles N] [--history D] [--clients 1,50,200] [--rate-per-client R] [--step D] [--p99 D] [--history-vehicles N] [--history-days N] [--history-interval D] [--signals-runs N]",
		short: "measure signalsLatest over HTTP (open loop), signals over a month's history, and the same queries on the bare store", run: runBenchQuery})
}

func runBenchQuery(ctx context.Context, args []string) error {
	fs := newFlags("bench query")
	var o bench.QueryOptions
	fs.IntVar(&o.Vehicles, "vehicles", 25, "vehicles of one owner, each with a paired device")
	fs.DurationVar(&o.History, "history", 2*time.Hour, "telemetry loaded per vehicle, one record of 10 signals per --interval")
	fs.DurationVar(&o.Interval, "interval", time.Second, "between two records of a vehicle")
	clients := fs.String("clients", "1,50,200", "concurrent clients of the fixed-rate runs, comma-separated")
	fs.Float64Var(&o.PerClientRate, "rate-per-client", 10, "requests/s each client sends on a fixed schedule")
	fs.DurationVar(&o.StepDuration, "step", 3*time.Second, "duration of each run")
	fs.DurationVar(&o.TargetP99, "p99", 50*time.Millisecond, "the p99 the search for the highest rate must keep under")
	fs.IntVar(&o.RampClients, "ramp-clients", 200, "connections of the search for the highest rate")
	fs.Float64Var(&o.RampStart, "ramp-start", 2000, "the first rate of the search, requests/s")
	fs.IntVar(&o.HistoryVehicles, "history-vehicles", 5, "vehicles carrying the long history of the signals query (0: none)")
	fs.IntVar(&o.HistoryDays, "history-days", 30, "days of the long history")
	fs.DurationVar(&o.HistoryInterval, "history-interval", time.Second, "between two samples of the long history")
	fs.IntVar(&o.HistoryPerRecord, "history-per-record", 30, "samples of 10 signals in one record of the long history")
	fs.BoolVar(&o.HistoryDirect, "history-direct", false, "write the long history straight into the store (signed, with its pairing) instead of verifying each record through the Ingester")
	fs.DurationVar(&o.SignalsBucket, "bucket", 5*time.Minute, "the interval of the signals query")
	fs.IntVar(&o.SignalsRuns, "signals-runs", 20, "signals queries measured, one after the other")
	cpuprofile := fs.String("signals-cpuprofile", "", "write a CPU profile of the HTTP signals queries to this file")
	latestProfile := fs.String("latest-cpuprofile", "", "write a CPU profile of the fixed-rate signalsLatest runs to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Clients = nil
	for _, s := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return usageError(fs, "--clients is a comma-separated list of positive integers")
		}
		o.Clients = append(o.Clients, n)
	}
	if o.HistoryVehicles == 0 {
		o.HistoryVehicles = -1 // the option's zero means the default
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.SignalsProfile = f
	}
	if *latestProfile != "" {
		f, err := os.Create(*latestProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.LatestProfile = f
	}
	o.Progress = os.Stderr
	rep, err := bench.Query(ctx, o)
	if err != nil {
		return err
	}
	rep.Print(os.Stdout)
	return nil
}
