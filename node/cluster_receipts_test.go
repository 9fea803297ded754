package node_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
)

// TestReceiptsBeyondTheLogCostTheDatabaseLittle asks an api process, without signing in, for hundreds of
// receipts of entries that do not exist: each is answered not_found, and the process catches up with the
// log at most once per node.ReceiptCatchUpInterval for all of them (it used to read the database, and
// take the state's lock, once per request). A client reading its own write through that process still
// finds it at once.
func TestReceiptsBeyondTheLogCostTheDatabaseLittle(t *testing.T) {
	ctx := context.Background()
	dsn, _, ns := pgBackend(t, false)
	data := t.TempDir()
	open := func(roles ...string) (*node.Cluster, *client.Client) {
		c, err := node.OpenCluster(ctx, node.ClusterConfig{Store: dsn, NATS: ns.URL(), Roles: roles, DataDir: data,
			Logger: slog.New(slog.DiscardHandler), FollowInterval: time.Hour}) // only receipts make b catch up
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(c.API)
		runCluster(t, ctx, c, srv)
		return c, client.New(srv.URL)
	}
	_, ca := open(node.RoleSequencer, node.RoleAPI)
	b, cb := open(node.RoleAPI)
	d, err := ca.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owner := testnode.NewKey(t)
	submit := func() int64 {
		t.Helper()
		tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Volvo", Model: "EX30", Year: 2025}
		client.Prepare(tx, time.Hour)
		if err := d.Sign(tx, owner.Key); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			rc, err := ca.Submit(ctx, tx)
			if err == nil {
				return rc.Index
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
		}
	}

	t.Run("a receipt written through another process is found at once", func(t *testing.T) {
		for range 3 {
			i := submit()
			if rc, err := cb.Transaction(ctx, i); err != nil || rc.Index != i {
				t.Fatalf("receipt %d through the api process: %v", i, err)
			}
		}
	})

	t.Run("a flood of receipts beyond the log is answered not_found with few catch-ups", func(t *testing.T) {
		const workers, each = 20, 15
		before := b.ReceiptCatchUps()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					index := int64(1) << 62
					if (w+i)%2 == 1 {
						index = 1_000_000 + int64(i)
					}
					_, err := cb.Transaction(ctx, index)
					var ae *client.APIError
					if !errors.As(err, &ae) || ae.Code != "not_found" {
						errs <- fmt.Errorf("receipt %d: %v, want not_found", index, err)
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got := b.ReceiptCatchUps() - before
		// Catch-ups start at least an interval apart: however the requests were timed, no more fit.
		if limit := 1 + int64(elapsed/node.ReceiptCatchUpInterval); got > limit {
			t.Fatalf("%d requests made %d catch-ups in %v; at most %d fit", workers*each, got, elapsed, limit)
		}
		t.Logf("%d requests, %d catch-ups, %v", workers*each, got, elapsed)
	})
}
