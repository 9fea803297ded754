package node_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api/wire"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/internal/tmpfs"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/verify"
)

// diskLoad drives a node with telemetry and transactions and keeps what it acknowledged.
type diskLoad struct {
	t        *testing.T
	n        *testnode.Node
	dev      testnode.Key
	vehicle  uint64
	seq      int
	records  map[string][]byte // acknowledged record id → its event bytes
	receipts []*wire.Receipt   // acknowledged transactions
}

// post sends k records and returns how many were accepted and how many answered unavailable; any other
// answer fails the test.
func (l *diskLoad) post(k int) (accepted, unavailable int) {
	l.t.Helper()
	batch := make([]telemetry.Submission, k)
	for i := range batch {
		l.seq++
		batch[i] = testnode.Record(l.t, l.dev, l.vehicle, fmt.Sprintf("r%d", l.seq), time.Now())
	}
	res, err := l.n.Client.PostEvents(context.Background(), batch)
	if err != nil {
		l.t.Fatalf("POST /v1/events: %v", err)
	}
	for i, r := range res {
		switch r.Status {
		case telemetry.StatusAccepted:
			l.records[r.ID] = batch[i].Event
			accepted++
		case telemetry.StatusUnavailable:
			unavailable++
		default:
			l.t.Fatalf("record %s: %s (%s)", r.ID, r.Status, r.Message)
		}
	}
	return accepted, unavailable
}

// register submits a new vehicle and reports whether it was accepted (false: unavailable; any other
// answer fails the test).
func (l *diskLoad) register() bool {
	l.t.Helper()
	k := testnode.NewKey(l.t)
	tx := l.n.Sign(l.t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: k.Address, Make: "Full", Model: "Disk", Year: 2024}, k)
	rc, err := l.n.Client.Submit(context.Background(), tx)
	var ae *client.APIError
	switch {
	case err == nil:
		l.receipts = append(l.receipts, rc)
		return true
	case errors.As(err, &ae) && ae.Code == "unavailable" && ae.Status == 503:
		return false
	}
	l.t.Fatalf("RegisterVehicle: %v", err)
	return false
}

// TestAFullDiskAnswersUnavailableLosesNothingAndResumes runs a node on a small tmpfs, fills it, and checks
// that ingest and transactions answer unavailable without acknowledging anything they did not store,
// that reads go on, and that once the room is back everything resumes with every acknowledged record and
// transaction in place and the log verifying.
func TestAFullDiskAnswersUnavailableLosesNothingAndResumes(t *testing.T) {
	dir := tmpfs.Mount(t, 24<<20)
	n := testnode.Start(t, testnode.Options{Dir: dir})
	ctx := context.Background()
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	l := &diskLoad{t: t, n: n, vehicle: vid, dev: n.PairedDevice(t, owner, vid, ledger.KindHardware), records: map[string][]byte{}}
	token := n.SignIn(t, owner)
	time.Sleep(5 * time.Millisecond) // records start after the pairing's accept time
	if a, u := l.post(100); a != 100 || u != 0 || !l.register() {
		t.Fatalf("before the disk fills: %d accepted, %d unavailable", a, u)
	}

	filler := tmpfs.Fill(t, dir)
	// SQLite may still have room in pages it holds: drive until both paths answer unavailable.
	var recUnavailable, txUnavailable int
	for deadline := time.Now().Add(15 * time.Second); recUnavailable == 0 || txUnavailable == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the disk is full, yet after 15 s %d records and %d transactions answered unavailable",
				recUnavailable, txUnavailable)
		}
		_, u := l.post(200)
		recUnavailable += u
		if !l.register() {
			txUnavailable++
		}
	}
	// While full: reads work, and a further write is refused the same way.
	if _, err := n.Client.Vehicle(ctx, vid); err != nil {
		t.Fatalf("reading a vehicle on a full disk: %v", err)
	}
	if _, err := n.Client.Transaction(ctx, l.receipts[0].Index); err != nil {
		t.Fatalf("reading a receipt on a full disk: %v", err)
	}
	gq, err := n.Client.GraphQL(ctx, token, fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { value } } }`, vid), nil)
	if err != nil || len(gq.Errors) != 0 {
		t.Fatalf("reading signals on a full disk: %v %+v", err, gq)
	}
	if l.register() {
		t.Fatal("a transaction was accepted on a full disk after others were refused")
	}

	tmpfs.Free(t, filler)
	// Everything resumes: the first tries may still meet a save catching up, so a few rounds are allowed.
	resumed := false
	for deadline := time.Now().Add(10 * time.Second); !resumed && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		a, u := l.post(50)
		resumed = a == 50 && u == 0 && l.register()
	}
	if !resumed {
		t.Fatal("ingest and transactions did not resume once the room was back")
	}
	t.Logf("%d records and %d transactions acknowledged; %d records and %d transactions answered unavailable",
		len(l.records), len(l.receipts), recUnavailable, txUnavailable)

	// Every acknowledged transaction is in the log, at its index, and the log verifies.
	for _, rc := range l.receipts {
		got, err := n.Client.Transaction(ctx, rc.Index)
		if err != nil || got.Hash != rc.Hash {
			t.Fatalf("acknowledged transaction %d: %+v, %v", rc.Index, got, err)
		}
	}
	if _, err := verify.Log(ctx, n.Client, verify.Options{Key: n.LogKey}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// Every acknowledged record is stored once, with its bytes, also after a restart.
	n.Stop()
	store, err := sqlite.OpenTelemetry(filepath.Join(dir, "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		t.Fatal(err)
	}
	src := l.dev.Address.Bytes()
	for id, ev := range l.records {
		var stored []byte
		var count int
		if err := store.DB().QueryRow(`SELECT event, (SELECT count(*) FROM records WHERE source = ? AND id = ?) FROM records WHERE source = ? AND id = ?`,
			src, id, src, id).Scan(&stored, &count); err != nil {
			t.Fatalf("acknowledged record %s is lost: %v", id, err)
		}
		if stored, err = sqlite.DecodeEvent(stored); err != nil {
			t.Fatal(err)
		}
		if count != 1 || string(stored) != string(ev) {
			t.Fatalf("record %s stored %d times or with other bytes", id, count)
		}
	}
	store.Close()
	n2 := testnode.Start(t, testnode.Options{Dir: dir})
	if _, err := verify.Log(ctx, n2.Client, verify.Options{Key: n2.LogKey}); err != nil {
		t.Fatalf("verify after a restart: %v", err)
	}
}
