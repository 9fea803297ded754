package node_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/glovebox/glovebox/api/wire"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/pgtest"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry/stream"
)

// pgBackend makes a fresh PostgreSQL database, migrated, with a pool open on it until the test ends, and
// starts an embedded NATS JetStream server (syncing every write to disk when syncAlways, as a cluster
// whose processes are killed needs) that stops with the test.
func pgBackend(t *testing.T, syncAlways bool) (string, *pgxpool.Pool, *stream.Embedded) {
	t.Helper()
	return pgBackendOn(t, pgtest.Database(t), syncAlways)
}

// pgBackendOn is pgBackend on the database dsn.
func pgBackendOn(t *testing.T, dsn string, syncAlways bool) (string, *pgxpool.Pool, *stream.Embedded) {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	ns, err := stream.StartEmbedded(t.TempDir(), "127.0.0.1", -1, syncAlways)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return dsn, pool, ns
}

// pgCluster is one cluster process holding every role, its ledger, log and telemetry in a fresh
// PostgreSQL database, its stream in an embedded NATS server, serving its API over HTTP.
type pgCluster struct {
	cl     *client.Client
	url    string // of its API
	dsn    string // of its database
	domain *ledger.Domain
	now    func() time.Time // its clock
}

// startPGCluster starts a pgCluster configured by cfg, whose store (a fresh database of the shared
// server, unless cfg names one), stream, data directory, public URL and logger it sets (and the roles,
// when cfg names none); it stops with the test.
func startPGCluster(t *testing.T, cfg node.ClusterConfig) *pgCluster {
	t.Helper()
	ctx := context.Background()
	if cfg.Store == "" {
		cfg.Store = pgtest.Database(t)
	}
	dsn, _, ns := pgBackendOn(t, cfg.Store, false)
	srv := httptest.NewUnstartedServer(nil)
	cfg.Store, cfg.NATS, cfg.DataDir = dsn, ns.URL(), t.TempDir()
	cfg.Logger, cfg.PublicURL = slog.New(slog.DiscardHandler), "http://"+srv.Listener.Addr().String()
	if len(cfg.Roles) == 0 {
		cfg.Roles = []string{node.RoleSequencer, node.RoleAPI, node.RoleIngest}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c, err := node.OpenCluster(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = c.API
	srv.Start()
	runCluster(t, ctx, c, srv)
	p := &pgCluster{cl: client.New(srv.URL), url: srv.URL, dsn: dsn, now: cfg.Now}
	if p.domain, err = p.cl.Domain(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// submit signs tx with keys, with a deadline an hour after the cluster's clock, and submits it, waiting
// for the process to hold the sequencer's lease.
func (p *pgCluster) submit(t *testing.T, tx *ledger.Tx, keys ...testnode.Key) *wire.Receipt {
	t.Helper()
	client.Prepare(tx, time.Hour)
	tx.Deadline.SetUint64(uint64(p.now().Add(time.Hour).Unix()))
	for _, k := range keys {
		if err := p.domain.Sign(tx, k.Key); err != nil {
			t.Fatal(err)
		}
	}
	// Until the process holds the lease, submissions are refused as unavailable.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		rc, err := p.cl.Submit(context.Background(), tx)
		var ae *client.APIError
		if err == nil {
			return rc
		}
		if !errors.As(err, &ae) || ae.Code != "unavailable" || time.Now().After(deadline) {
			t.Fatalf("%s: %v", tx.Type, err)
		}
	}
}

// car registers a vehicle and a hardware device, and pairs them.
func (p *pgCluster) car(t *testing.T) (owner, dev testnode.Key, car uint64) {
	t.Helper()
	owner, dev = testnode.NewKey(t), testnode.NewKey(t)
	rc := p.submit(t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Volvo", Model: "XC40", Year: 2023}, owner)
	car = rc.Result.VehicleID
	p.submit(t, &ledger.Tx{Type: ledger.TypeRegisterDevice, Device: dev.Address, Kind: ledger.KindHardware}, dev)
	pair := &ledger.Tx{Type: ledger.TypePairDevice, Device: dev.Address}
	pair.VehicleID.SetUint64(car)
	p.submit(t, pair, owner, dev)
	return owner, dev, car
}

// runCluster runs c until the test ends or the returned stop is called (once; both close srv, which serves
// c.API, stop c and check that Run returned no error).
func runCluster(t *testing.T, ctx context.Context, c *node.Cluster, srv *httptest.Server) (stop func()) {
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Close()
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			c.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}
