package node

// A cluster process: its roles and configuration, its wiring (OpenCluster), Run and Close. Its parts are
// in files of their own: following the log (follow.go), forwarding to the sequencer (forward.go, and
// catchup.go for receipts), the lease and sequencing (lease.go), snapshots (snapshot.go), Connect's ledger
// and revocations (connect.go). Its HTTP surface is a single node's (surface.go).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/connect"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/stream"
	"github.com/glovebox/glovebox/web"
	"github.com/glovebox/glovebox/webhook"
)

// Roles a cluster process can take (docs/scale.md). Any set of them may run in one process.
const (
	// RoleSequencer competes for the sequencer lease; the holder appends to the log, the others stand by.
	RoleSequencer = "sequencer"
	// RoleAPI serves the HTTP API from the followed state, forwarding transactions to the sequencer.
	RoleAPI = "api"
	// RoleIngest verifies device records (HTTP and MQTT), publishes them to the stream, and writes the
	// stream into PostgreSQL.
	RoleIngest = "ingest"
)

// ParseRoles parses a comma-separated list of roles.
func ParseRoles(s string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		switch r {
		case RoleSequencer, RoleAPI, RoleIngest:
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		default:
			return nil, fmt.Errorf("unknown role %q (want sequencer, api, ingest)", r)
		}
	}
	return out, nil
}

// ClusterConfig configures one process of a cluster: shared state in PostgreSQL, records through NATS
// JetStream. Every zero field has a working default except Store and NATS.
type ClusterConfig struct {
	// Store is the PostgreSQL URL; the schema must be migrated (glovebox migrate).
	Store string
	// NATS is the NATS URL (a JetStream server or cluster).
	NATS string
	// Roles of this process; default all three.
	Roles []string
	// DataDir holds the keys every process of the cluster shares (copy it to each machine): log.key and
	// log.pub (created on first use, by the first process to start) and auth/ (the key that signs sign-in
	// tokens and the OpenID Provider's access and ID tokens).
	DataDir string
	// Origin of a new log; see Config.Origin.
	Origin string
	// PublicURL is the URL clients use for the cluster (behind a load balancer); default
	// http://127.0.0.1:8080.
	PublicURL string
	// AdvertiseURL is where other processes reach this one, recorded when it becomes the sequencer so
	// that API processes can forward transactions to it.
	AdvertiseURL string
	// Replicas of the JetStream stream (1 for one server, 3 in a cluster).
	Replicas int
	// FollowInterval is how often a process not sequencing reads new log entries; default 100 ms.
	FollowInterval time.Duration
	// SnapshotInterval is how often the sequencer stores a snapshot of the state, when at least
	// SnapshotEntries entries were appended since the last one; defaults 1 min and 10,000. A process
	// starting restores the newest snapshot and replays only the entries after it.
	SnapshotInterval time.Duration
	SnapshotEntries  int64
	// SweepInterval is how often an ingest process applies the retention windows and erasures
	// (telemetry.Sweeper); default telemetry.DefaultSweepInterval.
	SweepInterval time.Duration
	// Now is the clock of the sequencer and of ingest checks; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Version is reported by GET /v1/node.
	Version string
	// RateLimit, if set, limits each caller of the app-facing API (see api.Config.RateLimit).
	RateLimit *api.RateLimiter
	// Budgets, if set, bounds what each client address may ask and submit (see api.Config.Budgets).
	Budgets *api.Budgets
	// Web configures the web app at / (map tiles); see Config.Web.
	Web web.Options
	// Webhooks configures outgoing webhooks as Config.Webhooks does; the cluster sets Store (PostgreSQL,
	// shared by every process), State, Catalog, Record, Key (webhook.key in DataDir, shared like log.key),
	// the log, Source, Now, Logger and Leader (the sequencer makes the grant events and heartbeats);
	// Reload defaults to ClusterWebhookReload.
	Webhooks webhook.Options
}

// ClusterWebhookReload is how often each process of a cluster reads the webhooks again, so that one
// registered, changed or verified through another process applies to the records it accepts.
const ClusterWebhookReload = time.Second

// Cluster is one process of a cluster. Its state follows the log in PostgreSQL until (with the
// sequencer role) it takes the lease and sequences.
type Cluster struct {
	cfg      ClusterConfig
	pool     *pgxpool.Pool
	Log      *postgres.Log
	Ledger   *ClusterLedger
	Ingester *telemetry.Ingester // nil without the ingest role
	API      http.Handler
	LogKey   string
	Auth     *auth.Issuer
	// Connect is the OpenID Provider (nil without the api role); its flow state is FlowState, in
	// PostgreSQL, so that a flow started through one process goes on through any other.
	Connect   *connect.Provider
	FlowState *postgres.FlowState
	Records   *postgres.Telemetry
	// WebhookStore keeps webhooks and their outbox in PostgreSQL; Webhooks, run in every process, makes
	// the events of the records this process accepts and delivers whatever any process enqueued.
	WebhookStore *postgres.Webhooks
	Webhooks     *webhook.Engine

	nc       *nats.Conn
	js       jetstream.JetStream
	writer   *stream.Writer
	alog     *postgres.AccessLog
	recorder *accesslog.Recorder
	signer   note.Signer
	logger   *slog.Logger
	// revokedAt is how far this process has read the access tokens revoked through any process
	// (postgres.FlowState.Revocations); OpenCluster, then Run's revocation loop, own it.
	revokedAt int64
	// RestoredFrom is the size of the snapshot the state was restored from at start (0: none).
	RestoredFrom int64
	receipts     *catchUps // catch-ups for receipts beyond the followed log
	// fwd names the client of a request this process forwards to the sequencer, and reads the name
	// another process gave (forwardedfor.go).
	fwd *forwardedFor
	// toSequencer carries the requests this process forwards to the sequencer (forward.go).
	toSequencer *http.Transport
	leaseLosses atomic.Int64
}

// ReceiptCatchUps returns how many times the process caught up with the log to answer receipts asked
// beyond its tree size (at most one per ReceiptCatchUpInterval).
func (c *Cluster) ReceiptCatchUps() int64 { return c.receipts.count.Load() }

// OpenCluster connects to PostgreSQL and NATS, replays the log into memory and returns a process ready to
// Run.
func OpenCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	if cfg.Store == "" || cfg.NATS == "" || cfg.DataDir == "" {
		return nil, errors.New("node: a cluster process needs a store, a NATS URL and a data directory")
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = []string{RoleSequencer, RoleAPI, RoleIngest}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FollowInterval == 0 {
		cfg.FollowInterval = 100 * time.Millisecond
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://127.0.0.1:8080"
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = time.Minute
	}
	if cfg.SnapshotEntries == 0 {
		cfg.SnapshotEntries = 10000
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("couldn't create the data directory: %w", err)
	}
	signer, vkey, err := loadOrCreateKey(cfg.DataDir, cfg.Origin)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, LogKey: vkey, signer: signer, logger: cfg.Logger}
	skey, err := os.ReadFile(filepath.Join(cfg.DataDir, "log.key"))
	if err != nil {
		return nil, fmt.Errorf("couldn't read the log key: %w", err)
	}
	c.fwd = newForwardedFor(skey, nil) // the wall clock, which the processes keep synchronized
	c.toSequencer = forwardTransport()
	c.receipts = &catchUps{interval: ReceiptCatchUpInterval, run: c.follow}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.pool, err = postgres.Open(ctx, cfg.Store); err != nil {
		return nil, err
	}
	if c.Log, err = postgres.OpenLog(ctx, c.pool, signer.Name()); err != nil {
		return nil, err
	}
	c.Ledger = &ClusterLedger{d: ledger.NewDomain(signer.Name()), st: ledger.NewState()}
	if err := c.restoreSnapshot(ctx); err != nil {
		return nil, err
	}
	if err := c.follow(ctx); err != nil {
		return nil, err
	}
	c.Records = postgres.NewTelemetry(c.pool)
	if c.nc, err = nats.Connect(cfg.NATS, nats.Name("glovebox"), nats.MaxReconnects(-1)); err != nil {
		return nil, fmt.Errorf("couldn't connect to NATS: %w", err)
	}
	// One ingest write publishes up to telemetry.MaxWriteBatch records before waiting for their acks.
	if c.js, err = jetstream.New(c.nc, jetstream.WithPublishAsyncMaxPending(2*telemetry.MaxWriteBatch),
		jetstream.WithPublishAsyncTimeout(30*time.Second)); err != nil {
		return nil, fmt.Errorf("couldn't use JetStream: %w", err)
	}
	scfg := stream.Config{Replicas: cfg.Replicas}
	if _, err := stream.Setup(ctx, c.js, scfg); err != nil {
		return nil, err
	}
	c.alog = postgres.NewAccessLog(c.pool)
	c.recorder = accesslog.NewRecorder(c.alog, cfg.Logger)
	hookKey, err := webhook.LoadOrCreateKey(filepath.Join(cfg.DataDir, "webhook.key"))
	if err != nil {
		return nil, err
	}
	c.WebhookStore = postgres.NewWebhooks(c.pool)
	wo := cfg.Webhooks
	wo.Store, wo.State, wo.Catalog, wo.Record, wo.Key = c.WebhookStore, c.Ledger.Read, telemetry.DefaultCatalog, c.recorder.Record, hookKey
	wo.LogSize, wo.Entries, wo.Leader = c.Log.Size, c.Log.Entries, c.Ledger.IsLeader
	if wo.Reload == 0 {
		wo.Reload = ClusterWebhookReload
	}
	wo.Source, wo.Now, wo.Logger = strings.TrimRight(cfg.PublicURL, "/"), cfg.Now, cfg.Logger
	c.Webhooks = webhook.NewEngine(wo)
	if c.has(RoleIngest) {
		c.Ingester = telemetry.NewIngester(telemetry.DefaultCatalog, c.Ledger.Read, stream.NewPublisher(c.js, scfg, c.Records.Stored),
			telemetry.IngesterOptions{Now: cfg.Now, Logger: cfg.Logger, Accepted: c.Webhooks.Accepted})
		if c.writer, err = stream.NewWriter(ctx, c.js, scfg, c.Records, telemetry.DefaultCatalog, cfg.Logger); err != nil {
			return nil, err
		}
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || pub.Host == "" {
		return nil, fmt.Errorf("node: bad public URL %q", cfg.PublicURL)
	}
	// Sign-in challenges are in PostgreSQL: one fetched from any process is answered at any other.
	if c.Auth, err = auth.NewIssuer(auth.Config{Dir: filepath.Join(cfg.DataDir, "auth"), Issuer: strings.TrimRight(cfg.PublicURL, "/"),
		Domain: pub.Host, Now: cfg.Now, Challenges: postgres.NewChallenges(c.pool)}); err != nil {
		return nil, fmt.Errorf("couldn't set up sign-in: %w", err)
	}
	if c.has(RoleAPI) {
		c.FlowState = postgres.NewFlowState(c.pool)
		if err := c.readRevocations(ctx); err != nil {
			return nil, err
		}
	}
	cs := postgres.NewCredentials(c.pool)
	srv, provider, err := newSurface(surface{publicURL: cfg.PublicURL, version: cfg.Version, logger: cfg.Logger, now: cfg.Now,
		rateLimit: cfg.RateLimit, budgets: cfg.Budgets, web: cfg.Web,
		ledger: c.Ledger, log: c.Log, entries: c.Log.Entries, signer: signer, logKey: vkey, telemetry: c.Records,
		accessLog: c.alog, record: c.recorder.Record, credentials: cs, ingester: c.Ingester, auth: c.Auth,
		webhooks: c.Webhooks, apps: c.has(RoleAPI), connectLedger: &connectLedger{c: c, client: &http.Client{Transport: c.toSequencer}}, flowState: c.FlowState})
	if err != nil {
		return nil, err
	}
	c.Connect = provider
	c.API = c.forwarding(srv)
	return c, nil
}

func (c *Cluster) has(role string) bool { return slices.Contains(c.cfg.Roles, role) }

// Run runs the process's roles until ctx is done. A process with the sequencer role that loses the lease
// (its database session ended: PostgreSQL restarted, the network broke, the lease check timed out) stops
// sequencing, hands its state back to the follower and stands by again, so the cluster resumes by itself
// once the database is back; LeaseLosses counts such losses.
func (c *Cluster) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	run(func() { c.recorder.Run(ctx) })
	run(func() {
		if err := c.Webhooks.Run(ctx); err != nil {
			c.logger.Error("webhooks stopped", "err", err)
		}
	})
	// Every process seals closed hours of signal values into chunks (postgres.Telemetry.RunSealer): one
	// sealing transaction at a time runs, under an advisory lock, and a cluster without an ingest process still
	// seals the rows of a database migrated from an older version.
	run(func() { c.Records.RunSealer(ctx, c.cfg.Now, c.logger) })
	if c.Ingester != nil {
		run(func() { c.Ingester.Run(ctx) })
		run(func() { c.writer.Run(ctx) })
		// Each ingest process sweeps: deleting is idempotent, and each row deleted is counted once. As on a
		// single node, each job also erases the webhook deliveries that carried what it deletes.
		run(func() {
			telemetry.NewSweeper(telemetry.SweeperOptions{State: c.Ledger.Read, Store: c.Records, Interval: c.cfg.SweepInterval,
				Erasers: erasers(c.WebhookStore), Now: c.cfg.Now, Logger: c.logger}).Run(ctx)
		})
	}
	if c.FlowState != nil {
		run(func() {
			tick := time.NewTicker(c.cfg.FollowInterval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if err := c.readRevocations(ctx); err != nil && ctx.Err() == nil {
					c.logger.Warn("couldn't read revoked access tokens", "err", err)
				}
			}
		})
	}
	if c.has(RoleSequencer) {
		for ctx.Err() == nil {
			err := c.standByAndSequence(ctx)
			if ctx.Err() != nil {
				break
			}
			c.leaseLosses.Add(1)
			c.logger.Error("stopped sequencing; following the log and standing by for the lease again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(postgres.PollInterval):
			}
		}
	} else {
		c.followLoop(ctx)
	}
	cancel()
	wg.Wait()
	return nil
}

// Close releases the process's connections and files. Call it after Run returned (and after its API
// stopped serving): it waits for the catch-ups that requests started, which read the database, and Run
// has joined every other goroutine of the process.
func (c *Cluster) Close() error {
	var errs []error
	if c.receipts != nil {
		c.receipts.rounds.Wait()
	}
	if c.nc != nil {
		c.nc.Close()
	}
	if c.pool != nil {
		c.pool.Close()
	}
	if c.toSequencer != nil {
		c.toSequencer.CloseIdleConnections()
	}
	return errors.Join(errs...)
}
