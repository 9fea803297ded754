package node

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/api/graphql"
	"github.com/glovebox/glovebox/attestation"
	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/connect"
	"github.com/glovebox/glovebox/connect/flowstate"
	"github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/export"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/live"
	"github.com/glovebox/glovebox/web"
	"github.com/glovebox/glovebox/webhook"
)

// surface is what a node's HTTP surface is built from. Open fills it from the data directory's files,
// OpenCluster from PostgreSQL and the process's roles; newSurface alone turns it into routes, middleware
// and limits, so that a single node and a cluster's processes cannot drift apart.
//
// The differences between them are the roles' and nothing else:
//   - apps false (a cluster process without the api role) serves no GraphQL, no Connect (OpenID
//     Provider), no credentials or attestations and no export: those read the telemetry an api process
//     serves. Sign-in, the REST reads of the ledger, the log's tiles, webhooks, the web app and the
//     well-known URLs are served by every process.
//   - ingester nil (a cluster process without the ingest role) serves no POST /v1/events (404
//     not_found, so that a load balancer that sends records to it is noticed); GET /v1/signals lists
//     telemetry.DefaultCatalog all the same.
//   - live nil (every cluster process: accepted records reach PostgreSQL through the stream, not through
//     one process's memory) answers every GraphQL subscription BAD_REQUEST.
//   - A cluster wraps the result in Cluster.forwarding (transactions to the sequencer, receipts after a
//     catch-up); that is the cluster's, not the surface's.
type surface struct {
	publicURL string // the node's base URL: issuer of credentials
	version   string
	logger    *slog.Logger
	now       func() time.Time
	rateLimit *api.RateLimiter
	budgets   *api.Budgets
	web       web.Options

	ledger    api.Ledger // what the REST routes read and submit to
	log       api.Log
	entries   ledger.EntrySource
	signer    note.Signer // the log's key, which signs credentials too
	logKey    string
	telemetry interface {
		telemetry.Reader
		telemetry.Deleter
	}
	accessLog   accesslog.Store
	record      func(accesslog.Entry) // batches access-log entries (accesslog.Recorder.Record)
	credentials interface {
		credential.VINStore
		attestation.Store
	}
	ingester *telemetry.Ingester // nil: no POST /v1/events
	auth     *auth.Issuer
	webhooks *webhook.Engine
	live     *live.Hub // nil: no subscriptions

	// apps serves the app-facing surface: GraphQL, Connect, credentials and export.
	apps bool
	// connectLedger is what Connect reads and submits grants to (ledger, unless grants must be forwarded);
	// flowState keeps Connect's flows (nil: this process's memory).
	connectLedger connect.Ledger
	flowState     flowstate.Store
}

// newSurface builds the HTTP API of s, and its OpenID Provider (nil unless s.apps).
func newSurface(s surface) (*api.Server, *connect.Provider, error) {
	app, err := web.Handler(s.web)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't set up the web app: %w", err)
	}
	cfg := api.Config{Web: app, WebPaths: web.Paths(), Sequencer: s.ledger, Log: s.log, LogKey: s.logKey, Version: s.version,
		Logger: s.logger, Ingester: s.ingester, Catalog: telemetry.DefaultCatalog, Auth: s.auth, AccessLog: s.accessLog,
		RateLimit: s.rateLimit, Budgets: s.budgets, Webhooks: s.webhooks, Deleter: s.telemetry}
	var provider *connect.Provider
	if s.apps {
		if cfg.Credentials, err = credentials(s.publicURL, s.signer, s.logKey, &credential.Source{State: s.ledger.Read, Log: s.log,
			Telemetry: s.telemetry, Catalog: telemetry.DefaultCatalog}, s.record, s.now); err != nil {
			return nil, nil, err
		}
		cfg.Credentials.VINs, cfg.Credentials.Attestations = s.credentials, s.credentials
		cfg.Export = &export.Source{State: s.ledger.Read, Entries: s.entries, Log: s.log, LogKey: s.logKey, Telemetry: s.telemetry,
			AccessLog: s.accessLog, Catalog: telemetry.DefaultCatalog, Now: s.now}
		iss := s.auth
		cfg.GraphQL = graphql.NewHandler(graphql.Config{State: s.ledger.Read, Telemetry: s.telemetry, Log: s.log,
			Logger: s.logger, Now: s.now, Record: s.record, AccessLog: s.accessLog, Live: s.live,
			Authenticate: func(token string) (common.Address, time.Time, error) {
				c, err := iss.Verify(token)
				return c.Subject, c.Expiry, err
			},
			VINs: s.credentials, Attestations: s.credentials})
		if provider, err = newConnect(s.auth, s.connectLedger, s.flowState, s.logger); err != nil {
			return nil, nil, err
		}
		cfg.Connect = provider
	}
	return api.New(cfg), provider, nil
}
