package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/sqlite"
)

// TestTheStoredReadModelRestoresTheSameState drives a node through every kind of change (pairings that
// end, grants replaced, revoked and cleared by a transfer, a retention, a former owner's erasure, a burn,
// app updates), stops it, and checks that
// the state loaded from identity.db has the digest of the state the node held.
func TestTheStoredReadModelRestoresTheSameState(t *testing.T) {
	dir := t.TempDir()
	n := testnode.Start(t, testnode.Options{Dir: dir})
	ctx := context.Background()
	alice, bob := testnode.NewKey(t), testnode.NewKey(t)
	v1, v2 := n.Vehicle(t, alice), n.Vehicle(t, alice)
	hw := n.PairedDevice(t, alice, v1, ledger.KindHardware)
	n.PairedDevice(t, alice, v1, ledger.KindSoftware)
	app := n.App(t, alice)
	soon := time.Now().Add(time.Hour).Unix()
	n.Grant(t, alice, v1, app.Address, soon, ledger.PermSignals)
	n.Grant(t, alice, v1, app.Address, soon, ledger.PermRaw, ledger.PermLocation) // replaces the first
	n.Grant(t, alice, v2, app.Address, soon, ledger.PermInsights)
	up := &ledger.Tx{Type: ledger.TypeUnpairDevice, Device: hw.Address}
	up.VehicleID.SetUint64(v1)
	n.Submit(t, up, hw)
	rev := &ledger.Tx{Type: ledger.TypeRevoke, App: app.Address}
	rev.VehicleID.SetUint64(v2)
	n.Submit(t, rev, alice)
	tr := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: bob.Address}
	tr.VehicleID.SetUint64(v1)
	n.Submit(t, tr, alice)
	keep := &ledger.Tx{Type: ledger.TypeSetRetention, Days: 90}
	keep.VehicleID.SetUint64(v1)
	n.Submit(t, keep, bob)
	erase := &ledger.Tx{Type: ledger.TypeEraseData, Before: uint64(time.Now().Unix())}
	erase.VehicleID.SetUint64(v1)
	n.Submit(t, erase, alice) // a former owner
	burn := &ledger.Tx{Type: ledger.TypeBurnVehicle}
	burn.VehicleID.SetUint64(v2)
	n.Submit(t, burn, alice)
	n.Submit(t, &ledger.Tx{Type: ledger.TypeUpdateApp, App: app.Address, Name: "Renamed", RedirectURIs: []string{"https://a.example/cb", "http://localhost:9/cb"}}, alice)

	var want [32]byte
	n.Sequencer.Read(func(st *ledger.State) { want = st.Digest() })
	d, err := n.Client.StateDigest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n.Stop() // saves the read model

	store, err := sqlite.OpenIdentity(filepath.Join(dir, "identity.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	snap, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ledger.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if st.Digest() != want || st.Size() != int64(d.TreeSize) {
		t.Fatalf("restored state differs: size %d, want %d", st.Size(), d.TreeSize)
	}
	// Saving the same snapshot again is idempotent.
	if err := store.Save(ctx, snap); err != nil {
		t.Fatal(err)
	}
	again, _ := store.Load(ctx)
	st2, _ := ledger.Restore(again)
	if st2.Digest() != want {
		t.Fatal("re-saving a snapshot changed the state")
	}
}

// TestTheStoredNoncesArePrunedByDeadline runs a node through many transactions with deadlines a minute
// ahead while its clock moves ten minutes per transaction: identity.db keeps only the last save's row of
// nonces, in which one nonce's deadline has not passed, and a rebuild from the log alone (identity.db deleted) reaches the same digest.
func TestTheStoredNoncesArePrunedByDeadline(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	n := testnode.Start(t, testnode.Options{Dir: dir, Now: now})
	owner := testnode.NewKey(t)
	app := n.App(t, owner)
	for i := range 60 {
		mu.Lock()
		clock = clock.Add(10 * time.Minute)
		mu.Unlock()
		tx := &ledger.Tx{Type: ledger.TypeUpdateApp, App: app.Address, Name: fmt.Sprintf("Renamed %d", i), RedirectURIs: []string{"https://a.example/cb"}}
		tx.Deadline.SetUint64(uint64(now().Add(time.Minute).Unix()))
		n.Submit(t, tx, owner)
	}
	var want [32]byte
	var held int
	n.Sequencer.Read(func(st *ledger.State) { want, held = st.Digest(), st.UsedNonces() })
	if held != 1 {
		t.Fatalf("the state holds %d nonces; want 1 (the last transaction's)", held)
	}
	n.Stop()

	db, err := sqlite.Open(filepath.Join(dir, "identity.db"))
	if err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := db.QueryRow(`SELECT COUNT(*) FROM nonces`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if rows != 1 {
		t.Fatalf("identity.db holds %d rows of nonces; want 1 (the last save's)", rows)
	}
	store, err := sqlite.OpenIdentity(filepath.Join(dir, "identity.db"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := store.Load(context.Background())
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, n := range snap.Nonces {
		if n.Deadline >= snap.NonceHorizon() {
			live++
		}
	}
	if live != 1 {
		t.Fatalf("identity.db holds %d nonces whose deadline has not passed; want 1", live)
	}

	if err := os.Remove(filepath.Join(dir, "identity.db")); err != nil {
		t.Fatal(err)
	}
	n2 := testnode.Start(t, testnode.Options{Dir: dir, Now: now})
	var got [32]byte
	n2.Sequencer.Read(func(st *ledger.State) { got = st.Digest() })
	if got != want {
		t.Fatal("the state rebuilt from the log differs from the live one")
	}
}

// TestAReadModelThatDoesNotDecodeIsRebuiltFromTheLog damages a vehicle's row in identity.db (its JSON cut
// short): the node starts all the same, rebuilding the read model from its log, with the state it had.
func TestAReadModelThatDoesNotDecodeIsRebuiltFromTheLog(t *testing.T) {
	dir := t.TempDir()
	n := testnode.Start(t, testnode.Options{Dir: dir})
	owner := testnode.NewKey(t)
	v := n.Vehicle(t, owner)
	n.PairedDevice(t, owner, v, ledger.KindHardware)
	var want [32]byte
	n.Sequencer.Read(func(st *ledger.State) { want = st.Digest() })
	n.Stop()

	db, err := sqlite.Open(filepath.Join(dir, "identity.db"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`UPDATE vehicles SET data = substr(data, 1, 10) WHERE id = ?`, v)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rows, _ := res.RowsAffected(); rows != 1 {
		t.Fatalf("damaged %d rows, want 1", rows)
	}

	n2 := testnode.Start(t, testnode.Options{Dir: dir})
	var got [32]byte
	n2.Sequencer.Read(func(st *ledger.State) { got = st.Digest() })
	if got != want {
		t.Fatal("the state rebuilt from the log differs from the one the node held")
	}
}
