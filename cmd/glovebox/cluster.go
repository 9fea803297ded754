package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/api/mqtt"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/telemetry/stream"
	"github.com/glovebox/glovebox/web"
	"github.com/glovebox/glovebox/webhook"
)

type clusterFlags struct {
	data, addr, origin, mqtt, publicURL, level string
	rateLimit                                  float64
	store, nats, natsListen, roles, advertise  string
	replicas                                   int
	natsSyncAlways                             bool
	web                                        web.Options
	webhooks                                   webhook.Options
	limits                                     nodeLimits
	budgets                                    api.BudgetConfig
}

// runCluster runs `glovebox serve --store postgres://… --nats …`: one process of a cluster (docs/scale.md).
func runCluster(ctx context.Context, f clusterFlags) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(f.level)); err != nil {
		return fmt.Errorf("bad --log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	slog.SetDefault(logger)
	roles, err := node.ParseRoles(f.roles)
	if err != nil {
		return err
	}
	logger.Info("starting a cluster process", "version", version, "data", f.data, "http", f.addr, "roles", f.roles,
		"store", redactURL(f.store), "nats", redactURL(f.nats), "webhook-allow-http", f.webhooks.Policy.AllowHTTP,
		"webhook-allow-private", f.webhooks.Policy.AllowPrivate, "webhook-lease", f.webhooks.Lease)
	if f.limits.lowered != "" {
		logger.Info(f.limits.lowered)
	}
	if f.nats == "embedded" {
		host, port, err := net.SplitHostPort(f.natsListen)
		if err != nil {
			return fmt.Errorf("bad --nats-listen: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("bad --nats-listen port: %w", err)
		}
		if p == 0 {
			p = -1 // NATS reads 0 as its default port, -1 as any free one
		}
		srv, err := stream.StartEmbedded(filepath.Join(f.data, "nats"), host, p, f.natsSyncAlways)
		if err != nil {
			return err
		}
		defer srv.Close()
		f.nats = srv.URL()
		fmt.Printf("NATS JetStream embedded at %s\n", f.nats)
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("couldn't listen: %w", err)
	}
	defer ln.Close()
	self := "http://" + ln.Addr().String()
	if f.publicURL == "" {
		f.publicURL = self
	}
	if f.advertise == "" {
		f.advertise = self
	}
	var limiter *api.RateLimiter
	if f.rateLimit > 0 {
		limiter = api.NewRateLimiter(api.RateLimitConfig{Rate: f.rateLimit, Burst: int(2 * f.rateLimit)})
	}
	// A transaction reaches the sequencer from the API process its client called, under that process's
	// address: a budget per address there would be one budget for every client. Transactions are not
	// budgeted per address in a cluster (docs/api.md).
	budgets := f.budgets
	budgets.TransactionRate = 0
	c, err := node.OpenCluster(ctx, node.ClusterConfig{Budgets: api.NewBudgets(budgets), Store: f.store, NATS: f.nats, Roles: roles, DataDir: f.data, Origin: f.origin,
		PublicURL: f.publicURL, AdvertiseURL: f.advertise, Replicas: f.replicas, Logger: logger, Version: version, RateLimit: limiter, Web: f.web,
		Webhooks: f.webhooks})
	if err != nil {
		return err
	}
	defer c.Close()
	srv := api.NewHTTPServer(c.API, f.limits.http)
	ln = api.LimitListener(ln, f.limits.http)
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(runCtx) }()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()
	size, _ := c.Log.Latest()
	fmt.Printf("Glovebox node listening on %s/  (origin %s, %d log entries, roles %s)\nLog key: %s\n", self, c.Log.Origin(), size, f.roles, c.LogKey)

	var broker *mqtt.Server
	if f.mqtt != "off" && c.Ingester != nil {
		broker, err = mqtt.New(mqtt.Config{Addr: f.mqtt, Ingester: c.Ingester, State: c.Ledger.Read, Origin: c.Log.Origin(), Logger: logger,
			MaxConnsPerAddress: f.limits.http.MaxConnsPerAddress, MaxConns: f.limits.mqttConns, MemoryPerAddress: mqttShare(f.budgets)})
		if err != nil {
			srv.Close()
			stopRun()
			<-runDone
			return fmt.Errorf("couldn't start MQTT (use --mqtt off to run without): %w", err)
		}
		go func() {
			if err := broker.Serve(); err != nil && !errors.Is(err, mqtt.ErrServerClosed) {
				logger.Error("MQTT stopped", "err", err)
			}
		}()
		fmt.Printf("MQTT for devices on %s\n", broker.Addr())
	}
	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-srvDone:
		runErr = fmt.Errorf("HTTP server stopped: %w", err)
	case err := <-runDone:
		if err == nil {
			err = errors.New("stopped")
		}
		runErr = fmt.Errorf("cluster process stopped: %w", err)
		runDone <- nil
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("HTTP shutdown", "err", err)
	}
	if broker != nil {
		broker.Close()
	}
	stopRun()
	<-runDone
	return runErr
}

// redactURL drops the password from a URL for logging.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// envDuration returns the environment variable's value as a duration, or def when it is unset or unreadable
// (the flag's parsing then reports nothing: an unreadable variable is ignored, as the log line at start shows).
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(envDefault(name, "")); err == nil {
		return d
	}
	return def
}
