// Package node wires a Glovebox node together from its parts: the Merkle log (package tlog), the ledger's
// sequencer and state, the SQLite read model and the HTTP API, all in one data directory.
//
// It is the top of the library: it wires every part below it and nothing but cmd/glovebox and tests import
// it.
package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/connect"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/live"
	"github.com/glovebox/glovebox/tlog"
	"github.com/glovebox/glovebox/web"
	"github.com/glovebox/glovebox/webhook"
)

// Config configures a node. Every zero field has a working default.
type Config struct {
	// DataDir holds everything the node keeps: log.key (the Ed25519 checkpoint signing key, created on
	// first start, mode 0600), log.pub, the log in log/, and the read model identity.db.
	DataDir string
	// Origin is the log's origin line, used only when the data directory is new; later starts read it from
	// log.key. Default: "glovebox.local/" and 16 random hex digits.
	Origin string
	// Now is the sequencer's clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Version is reported by GET /v1/node.
	Version string
	// Progress, if set, is called while the read model is replayed from the log at start.
	Progress func(applied, total int64)
	// RateLimit, if set, limits each caller of the app-facing API (see api.Config.RateLimit).
	RateLimit *api.RateLimiter
	// Budgets, if set, bounds what each client address may ask and submit (see api.Config.Budgets).
	Budgets *api.Budgets
	// PublicURL is the node's base URL as clients reach it: the issuer of its sign-in tokens and the URI
	// of sign-in messages. Default http://127.0.0.1:8080.
	PublicURL string
	// Web configures the web app at / (map tiles); the zero value loads nothing from other hosts.
	Web web.Options
	// Webhooks configures outgoing webhooks: the targets the operator allows (Policy) and the delivery
	// engine's limits and timings; zero fields take package webhook's defaults. The node sets Store,
	// State, Catalog, LogSize, Entries, Record, Key, Source, Now and Logger itself.
	Webhooks webhook.Options
	// SweepInterval is how often the deletion sweeper applies the vehicles' retention windows and erasures
	// (telemetry.Sweeper); default telemetry.DefaultSweepInterval.
	SweepInterval time.Duration
}

// Node is an opened node. Run sequences transactions; API serves HTTP.
type Node struct {
	Log       *tlog.Log
	Identity  *sqlite.Identity
	Sequencer *ledger.Sequencer
	Telemetry *sqlite.Telemetry
	Ingester  *telemetry.Ingester
	// AccessLog keeps who read what of each vehicle; Recorder batches writes to it.
	AccessLog *sqlite.AccessLog
	Recorder  *accesslog.Recorder
	// Auth issues and checks sign-in tokens.
	Auth *auth.Issuer
	// Connect is the OpenID Provider: the consent flow by which drivers grant apps access.
	Connect *connect.Provider
	API     *api.Server
	// LogKey is the note verifier key of the log ("<origin>+<hash>+<base64 key>").
	LogKey string

	// Credentials keeps the latest VIN credential of each vehicle and third parties' attestations
	// (credentials.db).
	Credentials *sqlite.Credentials
	// WebhookStore keeps webhooks and the delivery outbox (webhooks.db); Webhooks produces and delivers
	// their events, signed with the node's webhook key (webhook.key).
	WebhookStore *sqlite.Webhooks
	Webhooks     *webhook.Engine
	// Live hands accepted records and ledger changes to GraphQL subscriptions.
	Live *live.Hub
	// Sweeper deletes telemetry as the retention windows and erasures in the ledger ask.
	Sweeper *telemetry.Sweeper

	logger *slog.Logger
}

// IndexInterval is how often the telemetry indexer looks for new records.
const IndexInterval = time.Second

// Open opens (creating on first use) the node in cfg.DataDir and replays whatever the read model lacks.
func Open(ctx context.Context, cfg Config) (_ *Node, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("node: no data directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("couldn't create the data directory: %w", err)
	}
	signer, vkey, err := loadOrCreateKey(cfg.DataDir, cfg.Origin)
	if err != nil {
		return nil, err
	}
	origin := signer.Name()
	n := &Node{LogKey: vkey}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.Log, err = tlog.Open(filepath.Join(cfg.DataDir, "log"), origin, signer); err != nil {
		return nil, fmt.Errorf("couldn't open the log: %w", err)
	}
	if n.Identity, err = sqlite.OpenIdentity(filepath.Join(cfg.DataDir, "identity.db")); err != nil {
		return nil, err
	}
	d := ledger.NewDomain(origin)
	n.Sequencer, err = ledger.OpenSequencer(ctx, d, n.Log, n.Entries, n.Identity,
		ledger.SequencerOptions{Now: cfg.Now, Logger: cfg.Logger, Progress: cfg.Progress})
	if err != nil {
		return nil, err
	}
	if n.Telemetry, err = sqlite.OpenTelemetry(filepath.Join(cfg.DataDir, "telemetry.db"), telemetry.DefaultCatalog); err != nil {
		return nil, err
	}
	if n.AccessLog, err = sqlite.OpenAccessLog(filepath.Join(cfg.DataDir, "access.db")); err != nil {
		return nil, err
	}
	n.Recorder = accesslog.NewRecorder(n.AccessLog, cfg.Logger)
	if n.Credentials, err = sqlite.OpenCredentials(filepath.Join(cfg.DataDir, "credentials.db")); err != nil {
		return nil, err
	}
	n.logger = cfg.Logger
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://127.0.0.1:8080"
	}
	if n.WebhookStore, err = sqlite.OpenWebhooks(filepath.Join(cfg.DataDir, "webhooks.db")); err != nil {
		return nil, err
	}
	hookKey, err := webhook.LoadOrCreateKey(filepath.Join(cfg.DataDir, "webhook.key"))
	if err != nil {
		return nil, err
	}
	wo := cfg.Webhooks
	wo.Store, wo.State, wo.Catalog, wo.Record, wo.Key = n.WebhookStore, n.Sequencer.Read, telemetry.DefaultCatalog, n.Recorder.Record, hookKey
	wo.LogSize = func() int64 { size, _ := n.Log.Latest(); return size }
	wo.Entries, wo.Source, wo.Now, wo.Logger = n.Entries, strings.TrimRight(cfg.PublicURL, "/"), cfg.Now, cfg.Logger
	n.Webhooks = webhook.NewEngine(wo)
	n.Live = live.NewHub()
	n.Sweeper = telemetry.NewSweeper(telemetry.SweeperOptions{State: n.Sequencer.Read, Store: n.Telemetry, Interval: cfg.SweepInterval,
		Erasers: erasers(n.WebhookStore), Now: cfg.Now, Logger: cfg.Logger})
	accepted := func(recs []*telemetry.Record) {
		n.Live.Publish(recs) // never blocks
		n.Webhooks.Accepted(recs)
	}
	n.Ingester = telemetry.NewIngester(telemetry.DefaultCatalog, n.Sequencer.Read, n.Telemetry,
		telemetry.IngesterOptions{Now: cfg.Now, Logger: cfg.Logger, Accepted: accepted})
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || pub.Host == "" {
		return nil, fmt.Errorf("node: bad public URL %q", cfg.PublicURL)
	}
	if n.Auth, err = auth.NewIssuer(auth.Config{Dir: filepath.Join(cfg.DataDir, "auth"), Issuer: strings.TrimRight(cfg.PublicURL, "/"),
		Domain: pub.Host, Now: cfg.Now}); err != nil {
		return nil, fmt.Errorf("couldn't set up sign-in: %w", err)
	}
	n.API, n.Connect, err = newSurface(surface{publicURL: cfg.PublicURL, version: cfg.Version, logger: cfg.Logger, now: cfg.Now,
		rateLimit: cfg.RateLimit, budgets: cfg.Budgets, web: cfg.Web,
		ledger: n.Sequencer, log: n.Log, entries: n.Entries, signer: signer, logKey: vkey, telemetry: n.Telemetry,
		accessLog: n.AccessLog, record: n.Recorder.Record, credentials: n.Credentials, ingester: n.Ingester, auth: n.Auth,
		webhooks: n.Webhooks, live: n.Live, apps: true, connectLedger: n.Sequencer})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// erasers are the stores that keep copies of telemetry outside the telemetry store, which every sweep
// erases with it: the webhook outbox (webhooks.db on a node, PostgreSQL in a cluster). A node and a
// cluster's ingest processes wire their sweepers with the same list.
func erasers(webhooks telemetry.Eraser) []telemetry.Eraser { return []telemetry.Eraser{webhooks} }

// Entries reads committed log entries [from, from+count).
func (n *Node) Entries(ctx context.Context, from, count int64) ([][]byte, error) {
	return n.Log.Entries(from, count)
}

// Run sequences transactions, writes telemetry and indexes it until ctx is done or the sequencer fails.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(6)
	go func() { defer wg.Done(); n.Recorder.Run(ctx) }()
	go func() {
		defer wg.Done()
		n.Live.WatchLedger(ctx, func() int64 { size, _ := n.Log.Latest(); return size }, live.DefaultWatchInterval)
	}()
	go func() {
		defer wg.Done()
		if err := n.Webhooks.Run(ctx); err != nil {
			n.logger.Error("webhooks stopped", "err", err)
		}
	}()
	go func() { defer wg.Done(); n.Ingester.Run(ctx) }()
	go func() { defer wg.Done(); n.Telemetry.RunIndexer(ctx, IndexInterval, n.logger) }()
	go func() {
		defer wg.Done()
		n.Sweeper.Run(ctx)
	}()
	err := n.Sequencer.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// Close closes the log and the read model. Call it after Run has returned.
func (n *Node) Close() error {
	var errs []error
	if n.Telemetry != nil {
		errs = append(errs, n.Telemetry.Close())
	}
	if n.AccessLog != nil {
		errs = append(errs, n.AccessLog.Close())
	}
	if n.WebhookStore != nil {
		errs = append(errs, n.WebhookStore.Close())
	}
	if n.Credentials != nil {
		errs = append(errs, n.Credentials.Close())
	}
	if n.Identity != nil {
		errs = append(errs, n.Identity.Close())
	}
	if n.Log != nil {
		errs = append(errs, n.Log.Close())
	}
	return errors.Join(errs...)
}

// loadOrCreateKey reads log.key, or creates it (and log.pub) for a new data directory.
func loadOrCreateKey(dir, origin string) (note.Signer, string, error) {
	keyPath, pubPath := filepath.Join(dir, "log.key"), filepath.Join(dir, "log.pub")
	skey, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		if origin == "" {
			var b [8]byte
			rand.Read(b[:])
			origin = "glovebox.local/" + hex.EncodeToString(b[:])
		}
		s, v, err := tlog.GenerateKey(origin)
		if err != nil {
			return nil, "", fmt.Errorf("couldn't generate the log key: %w", err)
		}
		if err := writeFileSync(keyPath, []byte(s+"\n"), 0o600); err != nil {
			return nil, "", err
		}
		if err := writeFileSync(pubPath, []byte(v+"\n"), 0o644); err != nil {
			return nil, "", err
		}
		skey = []byte(s)
	} else if err != nil {
		return nil, "", fmt.Errorf("couldn't read the log key: %w", err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, "", fmt.Errorf("couldn't parse %s: %w", keyPath, err)
	}
	if origin != "" && origin != signer.Name() {
		return nil, "", fmt.Errorf("the data directory's log has origin %q, not %q", signer.Name(), origin)
	}
	vkey, err := os.ReadFile(pubPath)
	if err != nil {
		return nil, "", fmt.Errorf("couldn't read the log's public key: %w", err)
	}
	return signer, strings.TrimSpace(string(vkey)), nil
}

func writeFileSync(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("couldn't create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("couldn't sync %s: %w", path, err)
	}
	return f.Close()
}
