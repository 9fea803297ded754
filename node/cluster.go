package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
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
	leaseLosses  atomic.Int64
}

// ReceiptCatchUps returns how many times the process caught up with the log to answer receipts asked
// beyond its tree size (at most one per ReceiptCatchUpInterval).
func (c *Cluster) ReceiptCatchUps() int64 { return c.receipts.count.Load() }

// ClusterLedger is the ledger as one cluster process sees it: the state it follows from the log, and
// once it holds the sequencer lease, its own sequencer. It implements api.Ledger.
type ClusterLedger struct {
	d   *ledger.Domain
	seq atomic.Pointer[ledger.Sequencer]

	mu sync.RWMutex // guards st, the followed state
	st *ledger.State
}

var _ api.Ledger = (*ClusterLedger)(nil)

// Domain implements api.Ledger.
func (c *ClusterLedger) Domain() *ledger.Domain { return c.d }

// Read implements api.Ledger: the sequencer's state on the leader, the followed state elsewhere.
func (c *ClusterLedger) Read(f func(*ledger.State)) {
	if q := c.seq.Load(); q != nil {
		q.Read(f)
		return
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	f(c.st)
}

// Submit implements api.Ledger; only the leader sequences (others forward over HTTP before this).
func (c *ClusterLedger) Submit(ctx context.Context, txs []*ledger.Tx, signers [][]common.Address) ([]ledger.Outcome, error) {
	if q := c.seq.Load(); q != nil {
		return q.Submit(ctx, txs, signers)
	}
	return nil, ledger.ErrStopped
}

// IsLeader reports whether this process sequences.
func (c *ClusterLedger) IsLeader() bool { return c.seq.Load() != nil }

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
	if c.Auth, err = auth.NewIssuer(auth.Config{Dir: filepath.Join(cfg.DataDir, "auth"), Issuer: strings.TrimRight(cfg.PublicURL, "/"),
		Domain: pub.Host, Now: cfg.Now}); err != nil {
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
		webhooks: c.Webhooks, apps: c.has(RoleAPI), connectLedger: &connectLedger{c: c, client: &http.Client{}}, flowState: c.FlowState})
	if err != nil {
		return nil, err
	}
	c.Connect = provider
	c.API = c.forwarding(srv)
	return c, nil
}

func (c *Cluster) has(role string) bool { return slices.Contains(c.cfg.Roles, role) }

// follow reads what the sequencer committed since the last call and applies it to the followed state,
// checking every signature and rule as any replay does.
func (c *Cluster) follow(ctx context.Context) error {
	if err := c.Log.Refresh(ctx); err != nil {
		return err
	}
	size := c.Log.Size()
	c.Ledger.mu.RLock()
	have := c.Ledger.st.Size()
	c.Ledger.mu.RUnlock()
	if have >= size {
		return nil
	}
	// A small step is read before taking the lock, so that readers never wait for the database; a long
	// catch-up (at start) streams its entries while holding it.
	src := c.Log.Entries
	if size-have <= 4096 {
		es, err := c.Log.Entries(ctx, have, size-have)
		if err != nil {
			return err
		}
		src = func(_ context.Context, from, n int64) ([][]byte, error) {
			if from < have || from+n > size {
				return nil, fmt.Errorf("entries %d..%d were not read ahead", from, from+n)
			}
			return es[from-have : from-have+n], nil
		}
	}
	c.Ledger.mu.Lock()
	defer c.Ledger.mu.Unlock()
	if c.Ledger.st.Size() != have {
		return nil // someone else moved it meanwhile; the next tick goes on from there
	}
	if err := ledger.Replay(ctx, c.Ledger.d, c.Ledger.st, size, src, nil); err != nil {
		return fmt.Errorf("couldn't replay the log: %w", err)
	}
	return nil
}

// forwarding sends POST /v1/transactions to the sequencer when this process is not it. Other routes are
// served here. Without a known, reachable sequencer the answer is 503 unavailable: retry.
func (c *Cluster) forwarding(local http.Handler) http.Handler {
	var mu sync.Mutex
	var proxy *httputil.ReverseProxy
	var proxyURL string
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A receipt asked for beyond what this process has followed (a client reading its own write through
		// another process) is looked up after a catch-up that started after the request arrived, rather
		// than answered not_found. Catch-ups are shared and spaced (catchUps): a flood of such requests
		// for indexes that do not exist costs the database one read per ReceiptCatchUpInterval.
		if idx, ok := strings.CutPrefix(r.URL.Path, "/v1/transactions/"); ok && r.Method == http.MethodGet && !c.Ledger.IsLeader() {
			if n, err := strconv.ParseInt(idx, 10, 64); err == nil && n >= c.Log.Size() {
				if err := c.receipts.wait(r.Context()); err != nil && r.Context().Err() == nil {
					c.logger.Warn("couldn't catch up with the log", "err", err)
				}
			}
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/transactions" || c.Ledger.IsLeader() {
			local.ServeHTTP(w, r)
			return
		}
		_, target, _, err := postgres.Leader(r.Context(), c.pool)
		if err != nil || target == "" || target == c.cfg.AdvertiseURL {
			local.ServeHTTP(w, r) // answers unavailable
			return
		}
		mu.Lock()
		if proxyURL != target {
			u, err := url.Parse(target)
			if err != nil {
				mu.Unlock()
				local.ServeHTTP(w, r)
				return
			}
			proxy, proxyURL = httputil.NewSingleHostReverseProxy(u), target
			proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
				c.logger.Warn("couldn't forward a transaction to the sequencer", "err", err)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, `{"error":{"code":%q,"message":"the sequencer is not reachable; retry"}}`, api.CodeUnavailable)
			}
		}
		p := proxy
		mu.Unlock()
		p.ServeHTTP(w, r)
	})
}

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
	if c.Ingester != nil {
		run(func() { c.Ingester.Run(ctx) })
		run(func() { c.writer.Run(ctx) })
		// Each ingest process sweeps: deleting is idempotent, and each row deleted is counted once.
		run(func() {
			telemetry.NewSweeper(telemetry.SweeperOptions{State: c.Ledger.Read, Store: c.Records, Interval: c.cfg.SweepInterval,
				Now: c.cfg.Now, Logger: c.logger}).Run(ctx)
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

// LeaseLosses returns how many times this process stopped sequencing because it lost the lease (or could
// not take over the log) and went back to standing by.
func (c *Cluster) LeaseLosses() int64 { return c.leaseLosses.Load() }

// followLoop follows the log every FollowInterval until ctx is done.
func (c *Cluster) followLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.FollowInterval)
	defer tick.Stop()
	failing := false
	for {
		err := c.follow(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			c.logger.Error("couldn't follow the log; trying again every follow interval", "err", err)
			failing = true
		case err == nil && failing:
			c.logger.Info("following the log again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// standByAndSequence follows the log while standing by for the lease, then sequences until ctx is done or
// the lease is lost.
func (c *Cluster) standByAndSequence(ctx context.Context) error {
	following, stopFollowing := context.WithCancel(ctx)
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		c.followLoop(following)
	}()
	defer func() {
		stopFollowing()
		<-followDone
	}()
	return c.sequence(ctx, stopFollowing, followDone)
}

// sequence stands by for the lease, then takes over: it stops following, catches up with the log one last
// time, and sequences from that state until ctx is done or the lease is lost.
func (c *Cluster) sequence(ctx context.Context, stopFollowing func(), followDone chan struct{}) error {
	host, _ := os.Hostname()
	c.logger.Info("standing by for the sequencer lease")
	var lease *postgres.Lease
	for {
		var err error
		lease, err = postgres.Acquire(ctx, c.pool, fmt.Sprintf("%s/%d", host, os.Getpid()), c.cfg.AdvertiseURL)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		// The database went away while standing by: keep standing by.
		c.logger.Warn("couldn't try the sequencer lease; trying again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(postgres.PollInterval):
		}
	}
	defer lease.Release()
	stopFollowing()
	<-followDone
	if err := c.Log.SetWriter(ctx, lease, c.signer); err != nil {
		return fmt.Errorf("couldn't take over the log: %w", err)
	}
	if err := c.follow(ctx); err != nil {
		return err
	}
	c.Ledger.mu.RLock()
	snap := c.Ledger.st.Snapshot()
	c.Ledger.mu.RUnlock()
	q, err := ledger.OpenSequencer(ctx, c.Ledger.d, c.Log, c.Log.Entries, &memoryStore{snap: snap},
		ledger.SequencerOptions{Now: c.cfg.Now, Logger: c.logger})
	if err != nil {
		return err
	}
	c.Ledger.seq.Store(q)
	// Once the sequencer stops, its state (everything it acknowledged, nothing it undid) goes back to the
	// follower, so that reads go on from it while the process stands by: the database may be down.
	defer c.Ledger.handBack(q, c.logger)
	c.logger.Info("sequencing", "epoch", lease.Epoch(), "log size", c.Log.Size())
	seqCtx, stop := context.WithCancel(ctx)
	defer stop()
	// The lease is checked now and then, so that a process whose session died stops at once rather than
	// at its next append.
	lost := make(chan error, 1)
	go func() {
		tick := time.NewTicker(postgres.PollInterval)
		defer tick.Stop()
		for {
			select {
			case <-seqCtx.Done():
				return
			case <-tick.C:
				// Check bounds itself (postgres.LeaseCheckTimeout): a hung database loses the lease
				// rather than hanging this check.
				if err := lease.Check(seqCtx); err != nil && seqCtx.Err() == nil {
					lost <- err
					stop()
					return
				}
			}
		}
	}()
	go c.snapshotLoop(seqCtx)
	err = q.Run(seqCtx)
	select {
	case lerr := <-lost:
		return fmt.Errorf("lost the sequencer lease: %w", lerr)
	default:
	}
	return err
}

// handBack makes the followed state the stopped sequencer q's, and stops reading from q.
func (c *ClusterLedger) handBack(q *ledger.Sequencer, logger *slog.Logger) {
	var snap ledger.Changes
	q.Read(func(st *ledger.State) { snap = st.Snapshot() })
	st, err := ledger.Restore(snap)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		// The followed state is older but sound; following the log catches it up.
		logger.Error("couldn't take the sequencer's state back; following the log from the older one", "err", err)
	} else {
		c.st = st
	}
	c.seq.Store(nil)
}

// memoryStore hands the sequencer the followed state; the state's only durable copy is the log.
type memoryStore struct{ snap ledger.Changes }

func (m *memoryStore) Load(context.Context) (ledger.Changes, error) { return m.snap, nil }
func (m *memoryStore) Save(context.Context, ledger.Changes) error   { return nil }
func (m *memoryStore) Reset(context.Context) error {
	m.snap = ledger.Changes{NextVehicle: 1}
	return nil
}

// Close releases the process's connections and files. Call it after Run returned.
func (c *Cluster) Close() error {
	var errs []error
	if c.nc != nil {
		c.nc.Close()
	}
	if c.pool != nil {
		c.pool.Close()
	}
	return errors.Join(errs...)
}

// restoreSnapshot starts the followed state from the newest snapshot the log covers, if there is one
// that decodes; otherwise the state replays the whole log.
func (c *Cluster) restoreSnapshot(ctx context.Context) error {
	size, data, ok, err := postgres.LatestSnapshot(ctx, c.pool, c.Log.Size())
	if err != nil || !ok {
		return err
	}
	st, err := decodeSnapshot(data)
	if err == nil && st.Size() != size {
		err = fmt.Errorf("the snapshot of size %d holds a state of %d entries", size, st.Size())
	}
	if err != nil {
		c.logger.Warn("ignoring the stored snapshot; replaying the whole log", "err", err)
		return nil
	}
	c.Ledger.st, c.RestoredFrom = st, size
	c.logger.Info("restored the ledger state from a snapshot", "entries", size)
	return nil
}

// SaveSnapshot stores a snapshot of the current state. The sequencer calls it now and then.
func (c *Cluster) SaveSnapshot(ctx context.Context) (int64, error) {
	var snap ledger.Changes
	c.Ledger.Read(func(st *ledger.State) { snap = st.Snapshot() })
	data, err := encodeSnapshot(snap)
	if err != nil {
		return 0, err
	}
	return snap.Size, postgres.SaveSnapshot(ctx, c.pool, snap.Size, data)
}

// snapshotLoop stores a snapshot every SnapshotInterval when enough entries were appended since the last.
func (c *Cluster) snapshotLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.SnapshotInterval)
	defer tick.Stop()
	last := c.RestoredFrom
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if c.Log.Size()-last < c.cfg.SnapshotEntries {
			continue
		}
		size, err := c.SaveSnapshot(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.logger.Warn("couldn't store a snapshot", "err", err)
			}
			continue
		}
		last = size
	}
}
