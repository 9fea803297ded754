package main

import (
	"context"
	"os"

	"github.com/glovebox/glovebox/internal/bench"
)

func init() {
	register(command{name: "bench webhooks", args: "[--vehicles N] [--apps N] [--seconds N] [--rate-rounds N] [--pairs N] [--in-process] [--cpuprofile FILE]",
		short: "measure webhook delivery latency from record acceptance, and the ingest rate with signal triggers firing", run: runBenchWebhooks})
	register(command{name: "bench subscriptions", args: "[--subscribers N] [--vehicles N] [--rounds N] [--in-process]",
		short: "measure GraphQL subscription push latency over WebSocket and the node's memory", run: runBenchSubscriptions})
	register(command{name: "bench visible", args: "[--vehicles N] [--watched N] [--rounds N] [--in-process]",
		short: "measure the time from a record's acknowledgement to its value in signalsLatest, under a fleet at 1 Hz", run: runBenchVisible})
}

func runBenchVisible(ctx context.Context, args []string) error {
	fs := newFlags("bench visible")
	var o bench.VisibilityOptions
	fs.IntVar(&o.Vehicles, "vehicles", 1000, "paired vehicles, each sending one record a second")
	fs.IntVar(&o.Watched, "watched", 20, "vehicles whose owners poll signalsLatest every 10 ms")
	fs.IntVar(&o.Rounds, "rounds", 30, "seconds of load")
	inProcess := fs.Bool("in-process", false, "run the node in this process instead of a child process")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.Binary, err = nodeBinary(*inProcess); err != nil {
		return err
	}
	o.Progress = os.Stderr
	return printReport(bench.Visibility(ctx, o))
}

func runBenchWebhooks(ctx context.Context, args []string) error {
	fs := newFlags("bench webhooks")
	var o bench.WebhookOptions
	fs.IntVar(&o.Vehicles, "vehicles", 1000, "paired vehicles, each sending one record a second, each with one signal webhook")
	fs.IntVar(&o.Apps, "apps", 10, "apps the webhooks are spread over (at most 100 webhooks each)")
	fs.IntVar(&o.Seconds, "seconds", 30, "seconds of load at 1 Hz for the delivery latency")
	fs.IntVar(&o.RateRounds, "rate-rounds", 100, "rounds of one record per vehicle in each ingest-rate phase")
	fs.IntVar(&o.Pairs, "pairs", 4, "interleaved pairs of ingest-rate phases, the webhooks silent and firing, in alternating order")
	inProcess := fs.Bool("in-process", false, "run the node in this process (no RSS figure) instead of a child process")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the load at 1 Hz to this file: of the node process (read from its runtime profiles, serve --debug), or with --in-process of this process, node included")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.Binary, err = nodeBinary(*inProcess); err != nil {
		return err
	}
	if *inProcess {
		o.Profile = profileFunc(*cpuprofile)
	} else if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.NodeProfile = f
	}
	o.Progress = os.Stderr
	return printReport(bench.Webhooks(ctx, o))
}

func runBenchSubscriptions(ctx context.Context, args []string) error {
	fs := newFlags("bench subscriptions")
	var o bench.SubscriptionOptions
	fs.IntVar(&o.Subscribers, "subscribers", 1000, "concurrent WebSocket subscribers (graphql-transport-ws)")
	fs.IntVar(&o.Vehicles, "vehicles", 100, "vehicles the subscribers watch, evenly")
	fs.IntVar(&o.Rounds, "rounds", 30, "rounds of one record per vehicle, one a second")
	inProcess := fs.Bool("in-process", false, "run the node in this process (no RSS figure) instead of a child process")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.Binary, err = nodeBinary(*inProcess); err != nil {
		return err
	}
	o.Progress = os.Stderr
	return printReport(bench.Subscriptions(ctx, o))
}
