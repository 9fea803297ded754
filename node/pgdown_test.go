package node_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api/wire"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/pgtest"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/verify"
)

// pgLoad keeps what a cluster acknowledged while devices and owners write to it.
type pgLoad struct {
	mu          sync.Mutex
	records     map[telemetry.RecordKey][32]byte // acknowledged records → digest of their bytes
	receipts    []*wire.Receipt
	unavailable struct{ records, txs int }
	accepted    struct{ records, txs int } // since the last reset
}

// TestAClusterWhoseDatabaseStopsAnswersUnavailableAndResumes stops PostgreSQL (pg_ctl stop -m fast)
// under a load of transactions and records, and starts it again: meanwhile writes answer unavailable
// and the in-memory reads go on; afterwards the process takes the lease again by itself, writes resume,
// every acknowledged transaction and record is stored, and the log verifies.
func TestAClusterWhoseDatabaseStopsAnswersUnavailableAndResumes(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtest.Start(ctx)
	if errors.Is(err, pgtest.ErrNotInstalled) && !pgtest.Required() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	dsn, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldPoll := postgres.PollInterval
	postgres.PollInterval = 100 * time.Millisecond // stand by and check the lease briskly
	t.Cleanup(func() { postgres.PollInterval = oldPoll })
	p := startPGCluster(t, node.ClusterConfig{Store: dsn})
	owner, dev, car := p.car(t)
	time.Sleep(5 * time.Millisecond) // records start after the pairing's accept time

	l := &pgLoad{records: map[telemetry.RecordKey][32]byte{}}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	fail := make(chan error, 4)
	wg.Add(2)
	go func() { // transactions
		defer wg.Done()
		for loadCtx.Err() == nil {
			k := testnode.NewKey(t)
			tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: k.Address, Make: "Down", Model: "Time", Year: 2024}
			client.Prepare(tx, time.Hour)
			p.domain.Sign(tx, k.Key)
			rc, err := p.cl.Submit(ctx, tx)
			var ae *client.APIError
			l.mu.Lock()
			switch {
			case err == nil:
				l.receipts = append(l.receipts, rc)
				l.accepted.txs++
			case errors.As(err, &ae) && ae.Code == "unavailable":
				l.unavailable.txs++
			default:
				fail <- fmt.Errorf("RegisterVehicle: %w", err)
				l.mu.Unlock()
				return
			}
			l.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	go func() { // records
		defer wg.Done()
		for n := 0; loadCtx.Err() == nil; n++ {
			batch := make([]telemetry.Submission, 20)
			for i := range batch {
				batch[i] = testnode.Record(t, dev, car, fmt.Sprintf("%d-%d", n, i), time.Now())
			}
			res, err := p.cl.PostEvents(ctx, batch)
			if err != nil {
				fail <- fmt.Errorf("POST /v1/events: %w", err)
				return
			}
			l.mu.Lock()
			for i, r := range res {
				switch r.Status {
				case telemetry.StatusAccepted:
					l.records[telemetry.RecordKey{Source: dev.Address, ID: r.ID}] = sha256.Sum256(batch[i].Event)
					l.accepted.records++
				case telemetry.StatusUnavailable:
					l.unavailable.records++
				default:
					fail <- fmt.Errorf("record %s: %s (%s)", r.ID, r.Status, r.Message)
				}
			}
			l.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	stop := func() {
		stopLoad()
		wg.Wait()
		select {
		case err := <-fail:
			t.Fatal(err)
		default:
		}
	}
	defer stop()
	// waitAccepting resets the counts and waits until both kinds of write were accepted again.
	waitAccepting := func(what string) {
		t.Helper()
		l.mu.Lock()
		l.accepted.records, l.accepted.txs = 0, 0
		l.mu.Unlock()
		waitFor(t, 30*time.Second, what, func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.accepted.records > 0 && l.accepted.txs > 0
		})
	}
	waitAccepting("writes before the database stops")

	if err := srv.Halt(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "both kinds of write to answer unavailable", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.unavailable.records > 0 && l.unavailable.txs > 0
	})
	// In-memory reads go on while the database is down.
	if v, err := p.cl.Vehicle(ctx, car); err != nil || v.Owner != owner.Address.Hex() {
		t.Fatalf("reading a vehicle while the database is down: %+v, %v", v, err)
	}
	if _, err := p.cl.Checkpoint(ctx); err != nil {
		t.Fatalf("reading the checkpoint while the database is down: %v", err)
	}
	time.Sleep(time.Second) // under load, down for a while

	if err := srv.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitAccepting("writes after the database is back")
	stop()
	t.Logf("%d transactions and %d records acknowledged; %d transactions and %d records answered unavailable",
		len(l.receipts), len(l.records), l.unavailable.txs, l.unavailable.records)

	// Every acknowledged transaction is in the log at its index, and the log verifies.
	for _, rc := range l.receipts {
		got, err := p.cl.Transaction(ctx, rc.Index)
		if err != nil || got.Hash != rc.Hash {
			t.Fatalf("acknowledged transaction %d: %+v, %v", rc.Index, got, err)
		}
	}
	info, err := p.cl.Node(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Log(ctx, p.cl, verify.Options{Key: info.LogKey}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// Every acknowledged record reaches PostgreSQL with its bytes (the stream's writer catches up).
	pool, err := postgres.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := postgres.NewTelemetry(pool)
	keys := make([]telemetry.RecordKey, 0, len(l.records))
	for k := range l.records {
		keys = append(keys, k)
	}
	waitFor(t, 30*time.Second, "every acknowledged record in PostgreSQL", func() bool {
		stored, err := store.Stored(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		for k, d := range l.records {
			if got, ok := stored[k]; !ok {
				return false
			} else if got != d {
				t.Fatalf("record %s stored with other bytes", k.ID)
			}
		}
		return true
	})
}
