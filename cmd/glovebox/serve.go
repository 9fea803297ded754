package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/api/mqtt"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/web"
	"github.com/glovebox/glovebox/webhook"
)

func init() {
	register(command{name: "serve", args: "[--demo] [--data DIR] [--http ADDR] [--mqtt ADDR|off] [--origin ORIGIN] [--map-tiles URL] [--webhook-allow-http] [--webhook-allow-private] [--store postgres://… --nats URL|embedded --role sequencer,api,ingest --webhook-lease D]",
		short: "run a node on a local data directory", run: runServe})
}

func runServe(ctx context.Context, args []string) error {
	fs := newFlags("serve")
	data := fs.String("data", envDefault("GLOVEBOX_DATA", "./glovebox-data"), "data directory (env GLOVEBOX_DATA)")
	addr := fs.String("http", envDefault("GLOVEBOX_HTTP", "127.0.0.1:8080"), "HTTP listen address (env GLOVEBOX_HTTP)")
	origin := fs.String("origin", envDefault("GLOVEBOX_ORIGIN", ""), "log origin line for a new data directory (env GLOVEBOX_ORIGIN; default glovebox.local/<random>)")
	mqttAddr := fs.String("mqtt", envDefault("GLOVEBOX_MQTT", "127.0.0.1:1883"), "MQTT listen address for device telemetry, or \"off\" (env GLOVEBOX_MQTT)")
	publicURL := fs.String("public-url", envDefault("GLOVEBOX_PUBLIC_URL", ""), "the node's URL as clients reach it: issuer of sign-in tokens (env GLOVEBOX_PUBLIC_URL; default http://<the HTTP address>)")
	rateLimit := fs.Float64("rate-limit", 50, "requests per second each caller may make to /graphql and the sign-in endpoints (bursts of twice as many); 0 disables")
	limitFlags := serverLimitFlags(fs)
	budgets := budgetFlags(fs)
	demo := fs.Bool("demo", envDefault("GLOVEBOX_DEMO", "") != "", "also run a simulated fleet of 25 vehicles sending signed telemetry to this node (keys in DATA/demo-keys; env GLOVEBOX_DEMO)")
	demoVehicles := fs.Int("demo-vehicles", 25, "vehicles in the --demo fleet")
	mapTiles := fs.String("map-tiles", envDefault("GLOVEBOX_MAP_TILES", ""), "map tile `URL` template for the web app's maps, e.g. https://tiles.example/{z}/{x}/{y}.png (env GLOVEBOX_MAP_TILES; default none: tracks on a plain background, nothing loaded from other hosts)")
	mapAttribution := fs.String("map-attribution", envDefault("GLOVEBOX_MAP_ATTRIBUTION", ""), "attribution text the tile server requires, shown on the map (env GLOVEBOX_MAP_ATTRIBUTION)")
	debugAddr := fs.String("debug", envDefault("GLOVEBOX_DEBUG", ""), "serve Go's runtime profiles (net/http/pprof: goroutines, heap, CPU) on this address, apart from the API, e.g. 127.0.0.1:6060; keep it private (env GLOVEBOX_DEBUG; default off)")
	level := fs.String("log-level", envDefault("GLOVEBOX_LOG_LEVEL", "info"), "debug logs every request (env GLOVEBOX_LOG_LEVEL)")
	store := fs.String("store", envDefault("GLOVEBOX_STORE", ""), "run as one process of a cluster on this PostgreSQL database, postgres://… (env GLOVEBOX_STORE; default: the embedded stores in --data)")
	natsURL := fs.String("nats", envDefault("GLOVEBOX_NATS", ""), "with --store: the NATS JetStream server, nats://…, or \"embedded\" to run one in this process (env GLOVEBOX_NATS)")
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "with --nats embedded: its client address")
	roles := fs.String("role", envDefault("GLOVEBOX_ROLE", "sequencer,api,ingest"), "with --store: this process's roles, a comma list of sequencer, api, ingest (env GLOVEBOX_ROLE)")
	advertise := fs.String("advertise", envDefault("GLOVEBOX_ADVERTISE", ""), "with --store: the URL other processes reach this one at, to forward transactions to it when it sequences (default http://<the HTTP address>)")
	replicas := fs.Int("replicas", 1, "with --store: replicas of the JetStream stream (3 in a NATS cluster)")
	natsSync := fs.Bool("nats-sync-always", true, "with --nats embedded: fsync every record before acknowledging it (false: JetStream's default, fsync every 2 minutes; survives process crashes, not power loss)")
	hookHTTP := fs.Bool("webhook-allow-http", envDefault("GLOVEBOX_WEBHOOK_ALLOW_HTTP", "") != "", "accept plain http:// webhook URLs (env GLOVEBOX_WEBHOOK_ALLOW_HTTP; default https:// only)")
	hookPrivate := fs.Bool("webhook-allow-private", envDefault("GLOVEBOX_WEBHOOK_ALLOW_PRIVATE", "") != "", "deliver webhooks to loopback, private and link-local addresses (env GLOVEBOX_WEBHOOK_ALLOW_PRIVATE; default refused)")
	hookLease := fs.Duration("webhook-lease", envDuration("GLOVEBOX_WEBHOOK_LEASE", 0), "with --store: how long a delivery a process claimed stays with it before another process may deliver it (a process killed mid-delivery leaves it to the others after that; env GLOVEBOX_WEBHOOK_LEASE; default the attempt timeout + 15s = 30s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	limits := limitFlags(*mqttAddr != "off")
	hookPolicy := webhook.Policy{AllowHTTP: *hookHTTP, AllowPrivate: *hookPrivate}
	if *store != "" {
		if !isPostgres(*store) || *natsURL == "" || *demo {
			return fmt.Errorf("--store takes a postgres:// URL and needs --nats (and no --demo)")
		}
		return runCluster(ctx, clusterFlags{data: *data, addr: *addr, origin: *origin, mqtt: *mqttAddr, publicURL: *publicURL,
			rateLimit: *rateLimit, level: *level, store: *store, nats: *natsURL, natsListen: *natsListen, roles: *roles,
			advertise: *advertise, replicas: *replicas, natsSyncAlways: *natsSync, limits: limits, budgets: budgets(), web: web.Options{MapTiles: *mapTiles, MapAttribution: *mapAttribution},
			webhooks: webhook.Options{Policy: hookPolicy, Lease: *hookLease}})
	}
	if fs.NArg() != 0 {
		return errUsage
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("bad --log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	slog.SetDefault(logger)
	logger.Info("starting", "version", version, "data", *data, "http", *addr, "map-tiles", *mapTiles, "log-level", lv.String(),
		"webhook-allow-http", hookPolicy.AllowHTTP, "webhook-allow-private", hookPolicy.AllowPrivate,
		"rate-limit", *rateLimit, "budgets", fmt.Sprintf("%+v", budgets()), "limits", fmt.Sprintf("%+v", limits.http), "mqtt-max-conns", limits.mqttConns)
	if l := limits.lowered; l != "" {
		logger.Info(l)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("couldn't listen: %w", err)
	}
	defer ln.Close()
	if *publicURL == "" {
		*publicURL = "http://" + ln.Addr().String()
	}
	var limiter *api.RateLimiter
	if *rateLimit > 0 {
		limiter = api.NewRateLimiter(api.RateLimitConfig{Rate: *rateLimit, Burst: int(2 * *rateLimit)})
	}
	if _, err := os.Stat(filepath.Join(*data, "log")); err != nil {
		fmt.Printf("Creating a new node in %s (its log key, an empty log and the stores)…\n", *data)
	} else {
		fmt.Printf("Opening the node in %s (replaying its log)…\n", *data)
	}
	n, err := node.Open(ctx, node.Config{Web: web.Options{MapTiles: *mapTiles, MapAttribution: *mapAttribution}, DataDir: *data, Origin: *origin, Logger: logger, Version: version, PublicURL: *publicURL, RateLimit: limiter,
		Budgets:  api.NewBudgets(budgets()),
		Webhooks: webhook.Options{Policy: hookPolicy},
		Progress: func(applied, total int64) { logger.Info("replaying", "applied", applied, "of", total) }})
	if err != nil {
		return err
	}
	defer n.Close()
	srv := api.NewHTTPServer(n.API, limits.http)
	ln = api.LimitListener(ln, limits.http)

	seqCtx, stopSeq := context.WithCancel(context.Background())
	seqDone := make(chan error, 1)
	go func() { seqDone <- n.Run(seqCtx) }()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()

	if *debugAddr != "" {
		dbg, err := serveDebug(*debugAddr)
		if err != nil {
			srv.Close()
			stopSeq()
			<-seqDone
			return err
		}
		defer dbg.Close()
		fmt.Printf("Runtime profiles on http://%s/debug/pprof/\n", dbg.Addr())
	}
	size, _ := n.Log.Latest()
	fmt.Printf("Glovebox node listening on http://%s/  (origin %s, %d log entries)\nLog key: %s\n", ln.Addr(), n.Log.Origin(), size, n.LogKey)

	var broker *mqtt.Server
	if *mqttAddr != "off" {
		broker, err = mqtt.New(mqtt.Config{Addr: *mqttAddr, Ingester: n.Ingester, State: n.Sequencer.Read, Origin: n.Log.Origin(), Logger: logger,
			MaxConnsPerAddress: limits.http.MaxConnsPerAddress, MaxConns: limits.mqttConns, MemoryPerAddress: mqttShare(budgets())})
		if err != nil {
			srv.Close()
			stopSeq()
			<-seqDone
			return fmt.Errorf("couldn't start MQTT (use --mqtt off to run without): %w", err)
		}
		go func() {
			if err := broker.Serve(); err != nil && !errors.Is(err, mqtt.ErrServerClosed) {
				logger.Error("MQTT stopped", "err", err)
			}
		}()
		fmt.Printf("MQTT for devices on %s (topic glovebox/v1/devices/<address>/events; glovebox device mqtt-password)\n", broker.Addr())
	}

	demoDone := make(chan struct{})
	demoCtx, stopDemo := context.WithCancel(ctx)
	defer stopDemo()
	if *demo {
		fmt.Printf("Demo fleet: %d simulated vehicles sending signed telemetry every second (keys in %s)\n", *demoVehicles, filepath.Join(*data, "demo-keys"))
		fmt.Printf("Web app: sign in at http://%s/ with the key file %s, passphrase %q (the owner of vehicle 1)\n", ln.Addr(), filepath.Join(*data, "demo-keys", sim.OwnerKeyFile), sim.DemoPassphrase)
		go func() {
			defer close(demoDone)
			_, err := sim.Run(demoCtx, sim.Options{Node: "http://" + ln.Addr().String(), Vehicles: *demoVehicles, Rate: time.Second,
				KeysDir: filepath.Join(*data, "demo-keys"), OwnerPassphrase: sim.DemoPassphrase, Logger: logger.With("component", "demo"), StatusEvery: time.Minute,
				DemoApp: true, Progress: func(s string) { fmt.Println(s) }})
			if err != nil && demoCtx.Err() == nil {
				logger.Error("the demo fleet stopped", "err", err)
			}
		}()
	} else {
		close(demoDone)
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-srvDone:
		runErr = fmt.Errorf("HTTP server stopped: %w", err)
	case err := <-seqDone:
		runErr = fmt.Errorf("sequencer stopped: %w", err)
		seqDone <- err
	}
	stopDemo()
	<-demoDone
	// Let in-flight submissions finish (they need the sequencer), then stop the sequencer.
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("HTTP shutdown", "err", err)
	}
	if broker != nil {
		broker.Close() // while the ingest writer still runs: it waits for messages being ingested
	}
	stopSeq()
	<-seqDone
	return runErr
}

// budgetFlags defines the flags of the per-address budgets on fs and returns a function reading them
// (after fs.Parse).
func budgetFlags(fs *flag.FlagSet) func() api.BudgetConfig {
	d := api.DefaultBudgets
	req := fs.Float64("address-rate-limit", d.RequestRate, "requests per second one client address may make to /graphql, sign-in, OAuth and the access log, whatever accounts it signs in with (bursts of twice as many); 0 disables")
	tx := fs.Float64("tx-rate-limit", d.TransactionRate, "transactions per second one client address may submit to POST /v1/transactions (a batch of n counts n); 0 disables")
	txBurst := fs.Int("tx-burst", d.TransactionBurst, "transactions one client address may submit at once (at least 1000, a whole batch)")
	ev := fs.Float64("event-rate-limit", d.EventRate, "records per second one client address may submit to POST /v1/events (a batch of n counts n); 0 disables")
	evBurst := fs.Int("event-burst", d.EventBurst, "records one client address may submit at once (at least 1000, a whole batch)")
	mem := fs.Int64("memory-per-address", d.MemoryPerAddress>>20, "MiB of large request bodies (HTTP) and packets (MQTT) one client address may have in memory at once, of the node's 32 MiB (HTTP) and 128 MiB (MQTT); 0: no share per address")
	return func() api.BudgetConfig {
		return api.BudgetConfig{RequestRate: *req, TransactionRate: *tx, TransactionBurst: *txBurst, EventRate: *ev, EventBurst: *evBurst,
			MemoryPerAddress: *mem << 20}
	}
}

// nodeLimits are the limits of a node's two doors that its flags set.
type nodeLimits struct {
	http      api.ServerLimits // the HTTP server's
	mqttConns int              // the broker's cap on all its connections (mqtt.Config.MaxConns)
	lowered   string           // how the connection caps were lowered to fit the open-file limit; "" if not
}

// serverLimitFlags defines the flags of the HTTP server's and the broker's limits on fs and returns a
// function reading them (after fs.Parse), for a node with a broker or without (whose connections then
// leave the HTTP API all the room of the open-file limit).
func serverLimitFlags(fs *flag.FlagSet) func(broker bool) nodeLimits {
	d := api.DefaultServerLimits
	read := fs.Duration("read-timeout", d.ReadTimeout, "time a client has to send a whole request, headers and body, from its first byte; 0 for none")
	conns := fs.Int("max-conns-per-address", d.MaxConnsPerAddress, "connections one client address (IPv4, or IPv6 /64) may hold open at once, on the HTTP API and on the MQTT broker each; 0 for no cap")
	total := fs.Int("max-conns", d.MaxConns, "connections all clients may hold open at once on the HTTP API: at it a new one takes the place of the one idle longest (between requests, or without a whole request yet), else is answered 503 over_capacity (lowered to fit the open-file limit with --mqtt-max-conns); 0 for no cap")
	mqttTotal := fs.Int("mqtt-max-conns", mqtt.DefaultMaxConns, "connections all devices may hold open at once on the MQTT broker; one over it is closed (lowered to fit the open-file limit with --max-conns); 0 for no cap")
	rate := fs.Int64("min-body-rate", d.MinBodyRate>>10, "KiB/s a request body over 64 KiB must keep arriving at once the first 10 s of its read have passed, or it is answered 408 too_slow; 0 for none")
	return func(broker bool) nodeLimits {
		l := d
		l.ReadTimeout, l.MaxConnsPerAddress, l.MaxConns, l.MinBodyRate = *read, *conns, *total, *rate<<10
		files := openFileLimit()
		asked := *mqttTotal
		if !broker {
			asked = 0
		}
		h, mt := fitConns(l.MaxConns, asked, files)
		var lowered string
		switch {
		case !broker && h != l.MaxConns:
			lowered = fmt.Sprintf("--max-conns %d lowered to %d: the node keeps the rest of its %d open files", l.MaxConns, h, files)
		case h != l.MaxConns || mt != asked:
			lowered = fmt.Sprintf("--max-conns %d and --mqtt-max-conns %d lowered to %d and %d: the node keeps the rest of its %d open files",
				l.MaxConns, *mqttTotal, h, mt, files)
		}
		l.MaxConns = h
		return nodeLimits{http: l, mqttConns: mt, lowered: lowered}
	}
}

// fitConns lowers the caps on the HTTP API's and the broker's connections (0: none, or no broker), in
// proportion, so that together they leave an eighth of the open-file limit files (between 64 and 1,024
// descriptors) to the node's databases, logs and outbound connections: a flood of connections is refused
// before the node runs out of descriptors. A limit of 0 (unknown) leaves the caps as they are.
func fitConns(httpCap, mqttCap int, files uint64) (int, int) {
	httpCap, mqttCap = max(httpCap, 0), max(mqttCap, 0)
	if files == 0 || httpCap+mqttCap == 0 {
		return httpCap, mqttCap
	}
	room := int64(files) - min(max(int64(files)/8, 64), 1024)
	sum := int64(httpCap) + int64(mqttCap)
	if sum <= room {
		return httpCap, mqttCap
	}
	room = max(room, 2)
	switch {
	case mqttCap == 0:
		return int(room), 0
	case httpCap == 0:
		return 0, int(room)
	}
	h := max(int64(httpCap)*room/sum, 1)
	return int(h), int(max(room-h, 1))
}

// mqttShare is the broker's MemoryPerAddress for the budgets b: the same share as HTTP bodies, none (-1)
// when the flag says 0.
func mqttShare(b api.BudgetConfig) int64 {
	if b.MemoryPerAddress <= 0 {
		return -1
	}
	return b.MemoryPerAddress
}
