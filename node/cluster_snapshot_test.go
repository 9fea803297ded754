package node_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
)

// TestAClusterProcessStartsFromTheNewestSnapshot has a sequencer store a snapshot of its state and append
// more, then starts another process, which restores the snapshot, replays only what follows, and holds
// the same state. Then the stored snapshot's digest is damaged, and a third process replays the whole log
// instead, to the same state.
func TestAClusterProcessStartsFromTheNewestSnapshot(t *testing.T) {
	ctx := context.Background()
	dsn, pool, ns := pgBackend(t, false)
	data := t.TempDir()
	open := func(roles ...string) (*node.Cluster, string, func()) {
		c, err := node.OpenCluster(ctx, node.ClusterConfig{Store: dsn, NATS: ns.URL(), Roles: roles, DataDir: data,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(c.API)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(runCtx) }()
		return c, srv.URL, func() {
			srv.Close()
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			c.Close()
		}
	}
	a, urlA, stopA := open(node.RoleSequencer, node.RoleAPI)
	ca := client.New(urlA)
	d, err := ca.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := crypto.GenerateKey()
	register := func(n int) {
		t.Helper()
		txs := make([]*ledger.Tx, n)
		for i := range txs {
			txs[i] = &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: crypto.PubkeyToAddress(owner.PublicKey), Make: "Snap", Model: "Shot", Year: 2025}
			client.Prepare(txs[i], time.Hour)
			d.Sign(txs[i], owner)
		}
		// Until the process holds the lease, submissions are refused as unavailable.
		for deadline := time.Now().Add(30 * time.Second); ; {
			items, err := ca.SubmitBatch(ctx, txs)
			if err == nil {
				for _, it := range items {
					if it.Error != nil {
						t.Fatalf("refused: %+v", it.Error)
					}
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	register(30)
	snapSize, err := a.SaveSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	register(5)
	want, err := ca.StateDigest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopA()
	if snapSize != 30 {
		t.Fatalf("snapshot of %d entries, want 30", snapSize)
	}

	for _, step := range []struct {
		name     string
		damage   string // SQL run on the snapshots before the process starts
		restored int64
	}{
		{name: "the stored snapshot", restored: snapSize},
		// The digest line's last hex digit (p, counted from 0) changes: the snapshot still decodes, to a
		// state that is not its digest's. Its first line, "glovebox-snapshot/3\n", is 20 bytes.
		{name: "a snapshot whose digest was damaged", restored: 0,
			damage: `UPDATE identity_snapshots SET data = overlay(data placing convert_to(CASE WHEN get_byte(data, p) = 48 THEN '1' ELSE '0' END, 'UTF8') from p + 1 for 1)
				FROM (SELECT size AS s, position('\x0a'::bytea in substring(data from 21)) + 18 AS p FROM identity_snapshots) d WHERE size = d.s`},
	} {
		if step.damage != "" {
			if _, err := pool.Exec(ctx, step.damage); err != nil {
				t.Fatal(err)
			}
		}
		b, urlB, stopB := open(node.RoleAPI)
		if b.RestoredFrom != step.restored {
			t.Fatalf("%s: restored from a snapshot of %d entries, want %d", step.name, b.RestoredFrom, step.restored)
		}
		got, err := client.New(urlB).StateDigest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.TreeSize != want.TreeSize || got.Digest != want.Digest {
			t.Fatalf("%s: state %d %s, want %d %s", step.name, got.TreeSize, got.Digest, want.TreeSize, want.Digest)
		}
		stopB()
	}
}
