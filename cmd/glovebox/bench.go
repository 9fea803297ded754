package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"time"

	"github.com/glovebox/glovebox/internal/bench"
)

// nodeBinary is the path of this executable, for a benchmark that runs the node as a child process (so
// that its memory is measured alone), or "" to run it in this process.
func nodeBinary(inProcess bool) (string, error) {
	if inProcess {
		return "", nil
	}
	return os.Executable()
}

// printReport prints the report of a benchmark that ran, or returns its error.
func printReport[R interface{ Print(io.Writer) }](rep R, err error) error {
	if err != nil {
		return err
	}
	rep.Print(os.Stdout)
	return nil
}

func init() {
	register(command{name: "bench ledger", args: "[--clients N] [--single N] [--batch N]",
		short: "measure durable transactions/s against bare signature recovery", run: runBenchLedger})
}

func init() {
	register(command{name: "bench ingest", args: "[--vehicles N] [--records N] [--per-request N] [--clients N]",
		short: "measure verified, durable telemetry records/s against bare signature recovery", run: runBenchIngest})
}

func init() {
	register(command{name: "bench export", args: "[--days N] [--interval D] [--per-record N]",
		short: "measure an owner's data export of a month of one car (time, heap growth), its verification, and its deletion under ingest",
		run:   runBenchExport})
}

func init() {
	register(command{name: "bench insights", args: "[--days N] [--runs N] [--cpuprofile FILE]",
		short: "measure segments, dailyActivity and events over a month of one car recording 10 signals a second", run: runBenchInsights})
}

// benchInsightsHelp is bench insights' help text.
const benchInsightsHelp = `Loads a month of one car (10 signals every second, signed by its device, indexed and rolled up) into
a node in this process and measures segments (all six mechanisms), dailyActivity and events over it,
as the owner over HTTP. Loading 31 days takes about 12 minutes on two cores.

Environment:
  GLOVEBOX_BENCH_CACHE=DIR  keep the loaded node under DIR (a directory per --days and samples to a
                            record) and reopen it on later runs instead of loading the month again; the
                            history then ends when the first run's did. Remove the directory after a
                            change to what indexing or rolling up stores.`

func runBenchInsights(ctx context.Context, args []string) error {
	fs := newCommandFlags("bench insights", "[--days N] [--runs N] [--cpuprofile FILE]", benchInsightsHelp)
	var o bench.InsightsOptions
	fs.IntVar(&o.Days, "days", 31, "days of telemetry of the one car")
	fs.IntVar(&o.Runs, "runs", 20, "runs of each query, one after the other")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the measured queries to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.Profile = f
	}
	o.Progress = os.Stderr
	o.CacheDir = os.Getenv("GLOVEBOX_BENCH_CACHE")
	return printReport(bench.Insights(ctx, o))
}

func runBenchExport(ctx context.Context, args []string) error {
	fs := newFlags("bench export")
	var o bench.ExportOptions
	fs.IntVar(&o.Days, "days", 30, "days of telemetry of the one car")
	fs.DurationVar(&o.Interval, "interval", time.Second, "time between two samples of 10 signals")
	fs.IntVar(&o.PerRecord, "per-record", 30, "samples of 10 signals to a record")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the export over HTTP (node included) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Profile = profileFunc(*cpuprofile)
	o.Progress = os.Stderr
	return printReport(bench.Export(ctx, o))
}

func runBenchIngest(ctx context.Context, args []string) error {
	fs := newFlags("bench ingest")
	var o bench.IngestOptions
	fs.IntVar(&o.Vehicles, "vehicles", 1000, "paired vehicles, each with its own device key")
	fs.IntVar(&o.Records, "records", 100000, "records to ingest, 10 signals each")
	fs.IntVar(&o.PerRequest, "per-request", 100, "records per POST /v1/events")
	fs.IntVar(&o.Clients, "clients", 32, "concurrent connections")
	fs.BoolVar(&o.MQTT, "mqtt", false, "send over MQTT (one connection per device, --per-request records per message) instead of HTTP")
	inProcess := fs.Bool("in-process", false, "run the node in this process (no RSS figure) instead of a child process")
	cpuprofile := fs.String("cpuprofile", "", "with --in-process: write a CPU profile of the ingest phase (node and load generator) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.Binary, err = nodeBinary(*inProcess); err != nil {
		return err
	}
	if *cpuprofile != "" {
		if !*inProcess {
			return usageError(fs, "--cpuprofile profiles this process: it needs --in-process")
		}
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.CPUProfile = f
	}
	o.Progress = os.Stderr
	return printReport(bench.Ingest(ctx, o))
}

func runBenchLedger(ctx context.Context, args []string) error {
	fs := newFlags("bench ledger")
	var o bench.LedgerOptions
	fs.IntVar(&o.Clients, "clients", 128, "concurrent submitters, one connection each")
	fs.IntVar(&o.SingleTxs, "single", 60000, "transactions submitted one per request")
	fs.IntVar(&o.BatchTxs, "batch", 150000, "transactions submitted in batches of 1,000")
	fs.IntVar(&o.ReplayEntries, "replay", 100000, "entries to replay-verify")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file: of the whole run, or of the phase --profile-phase names")
	fs.StringVar(&o.ProfilePhase, "profile-phase", "", "with --cpuprofile: profile only the submissions of this phase, single or batch")
	traceFile := fs.String("trace", "", "write an execution trace of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch o.ProfilePhase {
	case "":
		stop, err := cpuProfile(*cpuprofile)
		if err != nil {
			return err
		}
		defer stop()
	case "single", "batch":
		if *cpuprofile == "" {
			return usageError(fs, "--profile-phase needs --cpuprofile")
		}
		o.Profile = profileFunc(*cpuprofile)
	default:
		return usageError(fs, "--profile-phase is single or batch, not %q", o.ProfilePhase)
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	o.Progress = os.Stderr
	return printReport(bench.Ledger(ctx, o))
}

func init() {
	register(command{name: "bench cluster", args: "[--ingesters 1,2,3] [--vehicles N] [--records N] [--clients N] [--queries N]",
		short: "measure cluster ingest (PostgreSQL, JetStream) with 1–3 ingest processes, and query latency against SQLite", run: runBenchCluster})
}

func runBenchCluster(ctx context.Context, args []string) error {
	fs := newFlags("bench cluster")
	var o bench.ClusterOptions
	ingesters := fs.String("ingesters", "1,2,3", "numbers of ingest processes to measure, a comma list")
	fs.IntVar(&o.Vehicles, "vehicles", 1000, "paired vehicles, each with its own device key")
	fs.IntVar(&o.Records, "records", 60000, "records per run, 10 signals each")
	fs.IntVar(&o.Clients, "clients", 32, "concurrent connections, spread over the ingest processes")
	fs.IntVar(&o.Queries, "queries", 200, "times each GraphQL query is timed on each store")
	fs.IntVar(&o.History, "history", 20000, "records of history the first vehicle gets before the queries are timed")
	fs.BoolVar(&o.SyncAlways, "nats-sync-always", true, "JetStream fsyncs every message before acknowledging it (as serve --nats embedded does by default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*ingesters, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return errUsage
		}
		o.Ingesters = append(o.Ingesters, n)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o.Binary, o.Progress = exe, os.Stderr
	return printReport(bench.Cluster(ctx, o))
}

// cpuProfile starts a CPU profile of this process written to path (none when path is empty); stop ends it.
func cpuProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// profileFunc returns what starts a CPU profile of a part of a benchmark written to path and returns what
// stops it; nil when path is empty.
func profileFunc(path string) func() (stop func()) {
	if path == "" {
		return nil
	}
	return func() func() {
		stop, err := cpuProfile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "glovebox: no profile:", err)
			return func() {}
		}
		return stop
	}
}
