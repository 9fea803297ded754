package webhook_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/internal/bench"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/webhook"
)

// TestErasureAndRetentionDeleteTheDeliveriesThatCarriedTheirValues: the events a webhook delivered carry
// telemetry values, so the owner's erasure and retention window delete them from the outbox with the
// telemetry: after the sweep the deliveries are no longer listed, and webhooks.db holds no row of them
// nor of their attempts. A delivery that carries no value (a test event) stays, and so does
// the owner's access log of the deliveries.
func TestErasureAndRetentionDeleteTheDeliveriesThatCarriedTheirValues(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Now().Truncate(time.Second)}
	dir := t.TempDir()
	f := setup(t, testnode.Options{Now: clock.Now, Dir: dir})
	rcv := newReceiver(t)
	hook := f.create(t, map[string]any{"url": rcv.srv.URL, "vehicles": []uint64{f.vehicle},
		"trigger": map[string]any{"kind": "signal", "signal": "speed", "condition": "value > 120.0"}})
	// A test event carries no telemetry: no deletion touches it.
	if code, body := do(t, "POST", f.hooks+"/"+hook.ID+"/test", f.token, nil); code != 202 {
		t.Fatalf("a test event: %d %s", code, body)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "webhooks.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := func() string {
		t.Helper()
		var ds, attempts int
		if err := db.QueryRow(`SELECT COUNT(*) FROM deliveries WHERE type = ?`, webhook.TypeSignal).Scan(&ds); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT COUNT(*) FROM delivery_attempts WHERE delivery IN (SELECT id FROM deliveries WHERE type = ?)`,
			webhook.TypeSignal).Scan(&attempts); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d signal deliveries, %d attempts of them", ds, attempts)
	}
	// waitRows waits until webhooks.db holds want: every delivery made and its attempt recorded.
	waitRows := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); rows() != want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("before the erasure webhooks.db holds %s, want %s", rows(), want)
			}
		}
	}
	t0 := clock.Now()
	send := func(at time.Time, v float64) {
		t.Helper()
		clock.Add(at.Sub(clock.Now()) + time.Second)
		f.send(t, at, speed(at, v))
	}
	// Three firings: the first two measured (with their previous values) in the first half minute, the
	// third, after a value that does not fire, later. The clock moves on only once the first two are
	// delivered: a delivery still in flight when it jumped past the delivery's lease (the timeout and
	// 15 s) would be claimed and attempted again, as one whose process died is.
	send(t0.Add(time.Second), 130)
	send(t0.Add(2*time.Second), 140)
	waitRows("2 signal deliveries, 2 attempts of them")
	send(t0.Add(40*time.Second), 100)
	send(t0.Add(time.Minute), 150)
	rcv.waitFor(t, webhook.TypeSignal, 3)
	waitDelivery(t, f, hook.ID, func(d webhook.Delivery) bool {
		return d.Type == webhook.TypeSignal && d.Status == webhook.DeliveryDelivered
	})
	listed := func() (signals, others int) {
		for _, d := range f.deliveries(t, hook.ID) {
			if d.Type == webhook.TypeSignal {
				signals++
			} else {
				others++
			}
		}
		return
	}
	waitRows("3 signal deliveries, 3 attempts of them") // all three delivered, their attempts recorded
	dl := func(tx *ledger.Tx) *ledger.Tx {
		tx.Deadline.SetUint64(uint64(clock.Now().Add(time.Hour).Unix()))
		return tx
	}

	// The owner erases what was recorded in the first half minute: the first two deliveries go.
	erase := &ledger.Tx{Type: ledger.TypeEraseData, Before: uint64(t0.Add(30 * time.Second).Unix())}
	erase.VehicleID.SetUint64(f.vehicle)
	f.n.Submit(t, dl(erase), f.owner)
	if _, err := f.n.Sweeper.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rows(); got != "1 signal deliveries, 1 attempts of them" {
		t.Fatalf("after the erasure webhooks.db holds %s, want 1 and 1", got)
	}
	if s, o := listed(); s != 1 || o != 1 {
		t.Fatalf("after the erasure the webhook lists %d signal deliveries and %d others, want 1 and the test event", s, o)
	}

	// A retention of one day, two days later: the last one goes too. (The tokens of two days ago have
	// expired: sign in again.)
	clock.Add(48 * time.Hour)
	if f.token, err = bench.SignIn(ctx, f.n.URL, f.appKey.Key); err != nil {
		t.Fatal(err)
	}
	if f.owned, err = bench.SignIn(ctx, f.n.URL, f.owner.Key); err != nil {
		t.Fatal(err)
	}
	keep := &ledger.Tx{Type: ledger.TypeSetRetention, Days: 1}
	keep.VehicleID.SetUint64(f.vehicle)
	f.n.Submit(t, dl(keep), f.owner)
	if _, err := f.n.Sweeper.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rows(); got != "0 signal deliveries, 0 attempts of them" {
		t.Fatalf("after the retention webhooks.db holds %s, want none", got)
	}
	if s, o := listed(); s != 0 || o != 1 {
		t.Fatalf("after the retention the webhook lists %d signal deliveries and %d others, want only the test event", s, o)
	}
	// The access log is written in the background: wait for it.
	var logged int
	waitAccess(t, f, func(entries []accesslog.Entry) bool {
		logged = 0
		for _, e := range entries {
			if strings.HasPrefix(e.Query, "webhook "+webhook.TypeSignal) {
				logged++
			}
		}
		return logged >= 3
	})
	if logged != 3 {
		t.Fatalf("the owner's access log shows %d webhook deliveries after the deletions, want all 3 (it is kept)", logged)
	}
}
