package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/glovebox/glovebox/sim"
)

func init() {
	register(command{name: "simulate",
		args:  "[--node URL] [--vehicles N] [--rate D] [--duration D] [--seed N] [--keys DIR] [--mqtt ADDR]",
		short: "drive a simulated fleet that streams device-signed telemetry to a node", run: runSimulate})
}

// newMQTTTransport, when set (by the MQTT transport's file), makes --mqtt deliver the records over MQTT
// to the broker at addr instead of HTTP.
var newMQTTTransport = func(ctx context.Context, addr string) (sim.Transport, error) {
	return sim.NewMQTTTransport(addr), nil
}

func runSimulate(ctx context.Context, args []string) error {
	fs := newFlags("simulate")
	var o sim.Options
	fs.StringVar(&o.Node, "node", envDefault("GLOVEBOX_NODE", "http://127.0.0.1:8080"), "the node's base `URL` (env GLOVEBOX_NODE)")
	fs.IntVar(&o.Vehicles, "vehicles", 25, "vehicles in the fleet")
	fs.DurationVar(&o.Rate, "rate", time.Second, "the tick: one record per driving vehicle (every tenth tick when parked)")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (default: until interrupted)")
	fs.Uint64Var(&o.Seed, "seed", 0, "derive the keys and the drive from this seed (default: the keys file's, or random)")
	fs.StringVar(&o.KeysDir, "keys", "./sim-keys", "`DIR` of the fleet's keys and vehicle ids, reused by the next run")
	mqtt := fs.String("mqtt", "", "deliver over MQTT to the broker at `ADDR` instead of HTTP")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || o.Vehicles <= 0 || o.Rate <= 0 || o.Duration < 0 {
		return errUsage
	}
	if *mqtt != "" {
		if newMQTTTransport == nil {
			return fmt.Errorf("--mqtt: this build has no MQTT transport yet; leave it out to use HTTP")
		}
		tr, err := newMQTTTransport(ctx, *mqtt)
		if err != nil {
			return fmt.Errorf("--mqtt %s: %w", *mqtt, err)
		}
		o.Transport = tr
	}
	o.Logger = slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				a.Value = slog.StringValue(a.Value.Time().Format("15:04:05"))
			}
			return a
		},
	}))
	st, err := sim.Run(ctx, o)
	if err != nil {
		return err
	}
	if n := st.RejectedTotal(); n > 0 {
		return fmt.Errorf("the node rejected %d of the simulator's records", n)
	}
	return nil
}
