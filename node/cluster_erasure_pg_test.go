package node_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/webhook/outbox"
)

// TestClusterErasureDeletesWebhookDeliveries runs one cluster process with every role, its sweeper every
// 100 ms: the webhook outbox in PostgreSQL holds deliveries that carried a car's telemetry, one pending
// and one delivered (with its attempt), measured before the owner's erasure, one measured after it and
// one of another car. Once the owner erases, the sweep deletes the first two and the attempt from
// PostgreSQL, as a single node's sweeper deletes them from webhooks.db, and keeps the others.
func TestClusterErasureDeletesWebhookDeliveries(t *testing.T) {
	ctx := context.Background()
	p := startPGCluster(t, node.ClusterConfig{SweepInterval: 100 * time.Millisecond})
	pool, err := postgres.Connect(ctx, p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	owner, _, car := p.car(t)
	_, _, other := p.car(t)
	time.Sleep(1100 * time.Millisecond) // the erasure's range starts when the owner registered the car
	in := time.Now()
	time.Sleep(1100 * time.Millisecond)
	before := time.Now().Unix() // after in (whole seconds)

	app := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	later := time.Now().Add(24 * time.Hour) // not due while the test runs: the outbox holds it pending
	delivery := func(id string, vehicle uint64, measured time.Time) *outbox.Delivery {
		return &outbox.Delivery{ID: id, Webhook: "wh_1", App: app, Vehicle: vehicle, Type: "glovebox.signal.triggered",
			Body: []byte(`{"data":{"signal":{"name":"speed","value":130}}}`), Measured: measured, Status: outbox.DeliveryPending,
			Created: in, NextAttempt: later}
	}
	hooks := postgres.NewWebhooks(pool)
	ds := []*outbox.Delivery{delivery("pending", car, in), delivery("delivered", car, in),
		delivery("after", car, time.Unix(before+60, 0)), delivery("other car", other, in)}
	if err := hooks.Enqueue(ctx, ds); err != nil {
		t.Fatal(err)
	}
	ds[1].Status, ds[1].Attempts, ds[1].Done = outbox.DeliveryDelivered, 1, in
	if err := hooks.Finish(ctx, ds[1], outbox.Attempt{Time: in, Code: 200}); err != nil {
		t.Fatal(err)
	}
	left := func() ([]string, int) {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT id FROM webhook_deliveries ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		var attempts int
		if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_attempts`).Scan(&attempts); err != nil {
			t.Fatal(err)
		}
		return ids, attempts
	}
	if ids, attempts := left(); !slices.Equal(ids, []string{"after", "delivered", "other car", "pending"}) || attempts != 1 {
		t.Fatalf("before the erasure the outbox holds %v and %d attempts", ids, attempts)
	}

	erase := &ledger.Tx{Type: ledger.TypeEraseData, Before: uint64(before)}
	erase.VehicleID.SetUint64(car)
	p.submit(t, erase, owner)
	want := []string{"after", "other car"}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ids, attempts := left()
		if slices.Equal(ids, want) && attempts == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the erasure PostgreSQL holds deliveries %v and %d attempts, want %v and none", ids, attempts, want)
		}
	}
}
