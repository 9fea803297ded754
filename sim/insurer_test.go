package sim

import (
	"crypto/ecdsa"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/sqlite"
)

// TestDemoInsurerSharesThroughTheRealAPI runs the demo with its insurer app against a real node: the app
// is registered by the first owner, granted the first three cars, reads them over GraphQL with its own
// key (recorded in each car's access log), and a grant the owner revokes stays revoked when the demo
// starts again.
func TestDemoInsurerSharesThroughTheRealAPI(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	dir := t.TempDir()
	var said []string
	opts := Options{Node: n.URL, Vehicles: 4, Rate: 100 * time.Millisecond, Duration: 300 * time.Millisecond, Seed: 7, KeysDir: dir,
		Logger: slog.New(slog.DiscardHandler), DemoApp: true, DemoAppEvery: time.Hour, Progress: func(s string) { said = append(said, s) }}
	if _, err := Run(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	specs := Specs(7, 4)
	appKey := deriveKey(7, -1, "insurer")
	app := crypto.PubkeyToAddress(appKey.PublicKey)
	a, err := n.Client.App(t.Context(), app)
	if err != nil || a.Name != InsurerName || a.Owner != specs[0].Owner.Hex() {
		t.Fatalf("app %+v, %v; want %q owned by %s", a, err, InsurerName, specs[0].Owner.Hex())
	}
	for id, want := range map[uint64]bool{1: true, 2: true, 3: true, 4: false} {
		if granted := hasGrant(n, id, app); granted != want {
			t.Errorf("vehicle %d: granted %v, want %v", id, granted, want)
		}
	}
	if !slices.ContainsFunc(said, func(s string) bool { return strings.HasPrefix(s, `Demo app "Acme Insurance (demo)"`) }) {
		t.Errorf("progress %q does not name the demo app", said)
	}

	// Its key file is the app's key, for `glovebox token --key`.
	b, err := os.ReadFile(filepath.Join(dir, InsurerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := keystore.DecryptKey(b, DemoPassphrase); err != nil || k.Address != app {
		t.Fatalf("key file: %v, %v", k, err)
	}

	// It reads what it may, through the API, as itself; the owner sees each read.
	ins := &insurer{c: n.Client, key: appKey, addr: app.Hex(), logger: slog.New(slog.DiscardHandler)}
	if got, err := ins.readAll(t.Context()); err != nil || got != 3 {
		t.Fatalf("readAll = %d, %v; want 3 cars", got, err)
	}
	// The owner of vehicle 2 revokes; the demo starts again and leaves it revoked.
	revoke := &ledger.Tx{Type: ledger.TypeRevoke, App: app}
	revoke.VehicleID.SetUint64(2)
	n.Submit(t, revoke, key(specs[1].OwnerKey))
	revoked := time.Now()
	if _, err := Run(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if hasGrant(n, 2, app) {
		t.Errorf("the revoked grant on vehicle 2 came back")
	}
	if got, err := ins.readAll(t.Context()); err != nil || got != 2 {
		t.Fatalf("readAll after the revocation = %d, %v; want 2 cars", got, err)
	}

	// Stopping the node flushes the access log: each car shows the app's reads while it held a grant (the
	// demo's own reader may have read once more in each run, before it was stopped).
	n.Stop()
	al, err := sqlite.OpenAccessLog(filepath.Join(n.Dir, "access.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	for id, want := range map[uint64]struct{ before, after bool }{1: {true, true}, 2: {true, false}, 3: {true, true}, 4: {false, false}} {
		entries, err := al.List(t.Context(), id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var before, after bool
		for _, e := range entries {
			if e.Caller == app && e.Query == "signalsLatest" && e.Outcome == "ok" {
				before = before || e.Time.Before(revoked)
				after = after || e.Time.After(revoked)
			}
		}
		if before != want.before || after != want.after {
			t.Errorf("vehicle %d: the app read it before the revocation %v, after %v; want %v, %v (%+v)", id, before, after, want.before, want.after, entries)
		}
	}
}

func key(k *ecdsa.PrivateKey) testnode.Key {
	return testnode.Key{Key: k, Address: crypto.PubkeyToAddress(k.PublicKey)}
}

func hasGrant(n *testnode.Node, id uint64, app common.Address) bool {
	var ok bool
	n.Sequencer.Read(func(s *ledger.State) { _, ok = s.GrantOf(id, app) })
	return ok
}
