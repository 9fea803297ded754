package node_test

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/store/sqlite/sqlitetest"
	"github.com/glovebox/glovebox/telemetry"
)

// TestKill9LosesNoAcknowledgedRecord kills a real node with SIGKILL while devices post telemetry, and
// checks that every record it acknowledged as accepted is stored, exactly once, with its bytes.
func TestKill9LosesNoAcknowledgedRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real process")
	}
	data := t.TempDir()
	cmd, url := startNode(t, data)
	acked := killWhilePosting(t, cmd, url, 0)
	checkStored(t, data, acked)
	// The node starts again on the same directory and indexes everything.
	_, url = startNode(t, data)
	if _, err := client.New(url).StateDigest(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged records all stored once", len(acked))
}

// TestKill9WhileClosedHoursAreHeldLosesNoValue kills a node with SIGKILL while devices post records of
// an hour that is closed — a backfill, whose hours the indexer holds in memory until they end, its index
// position before their first record. The node runs three hours behind the machine's clock (devices
// are paired and records accepted on its clock; the telemetry store closes hours on the machine's), in
// a child process of this test binary (runPastNode). After the kill every acknowledged record is stored
// once, records were left unindexed (the hours held), and indexing them as a restart does derives
// exactly what a reindex of the stored records derives: every chunk, summary and latest value.
func TestKill9WhileClosedHoursAreHeldLosesNoValue(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real process")
	}
	const behind = 3 * time.Hour
	data := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), pastNodeData+"="+data, pastNodeBehind+"="+behind.String())
	url := untilListening(t, cmd)
	acked := killWhilePosting(t, cmd, url, behind)
	checkStored(t, data, acked)

	ctx := context.Background()
	store, err := sqlite.OpenTelemetry(filepath.Join(data, "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		t.Fatal(err)
	}
	held, err := store.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if held == 0 {
		t.Fatal("every record was indexed at the kill: no hour was held")
	}
	if _, err := store.Index(ctx); err != nil { // what a restart's catch-up does
		t.Fatal(err)
	}
	if lag, err := store.Lag(ctx); err != nil || lag != 0 {
		t.Fatalf("after the catch-up %d records are not indexed (%v)", lag, err)
	}
	caughtUp, chunks := sqlitetest.Digest(t, data)
	if chunks == 0 {
		t.Fatal("the catch-up wrote no chunks: the records' hours were not closed")
	}
	if _, err := store.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if reindexed, _ := sqlitetest.Digest(t, data); reindexed != caughtUp {
		t.Error("the values indexed after the kill differ from a reindex of the stored records")
	}
	t.Logf("%d acknowledged records stored once; %d records unindexed at the kill; %d chunks", len(acked), held, chunks)
}

// The environment of runPastNode: the data directory, and how far behind the machine's clock it runs.
const (
	pastNodeData   = "GLOVEBOX_TEST_PAST_NODE_DATA"
	pastNodeBehind = "GLOVEBOX_TEST_PAST_NODE_BEHIND"
)

// runPastNode serves a node on the data directory named by pastNodeData, on a loopback port it prints
// as `glovebox serve` does, with its clock pastNodeBehind behind the machine's, until it is killed. This
// test binary runs it in a child process (TestMain): `glovebox serve` has no clock to set.
func runPastNode(dir string) int {
	behind, err := time.ParseDuration(os.Getenv(pastNodeBehind))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	n, err := node.Open(ctx, node.Config{DataDir: dir, Now: func() time.Time { return time.Now().Add(-behind) },
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go n.Run(ctx)
	fmt.Printf("Glovebox test node listening on http://%s/ (%s behind)\n", ln.Addr(), behind)
	fmt.Fprintln(os.Stderr, http.Serve(ln, n.API))
	return 1
}

// killWhilePosting pairs eight vehicles with a device each on the node at url, has each device post
// batches of records timestamped behind before now until the node (cmd) is killed with SIGKILL after
// half a second to a second, and returns the events of the records the node acknowledged as accepted.
func killWhilePosting(t *testing.T, cmd *exec.Cmd, url string, behind time.Duration) map[recordKey][]byte {
	t.Helper()
	c := client.New(url)
	ctx := context.Background()
	d, err := c.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := crypto.GenerateKey()
	ownerAddr := crypto.PubkeyToAddress(owner.PublicKey)
	const vehicles = 8
	type device struct {
		key     *ecdsaKey
		vehicle uint64
	}
	var devs []device
	for i := 0; i < vehicles; i++ {
		dk, _ := crypto.GenerateKey()
		da := crypto.PubkeyToAddress(dk.PublicKey)
		txs := []*ledger.Tx{
			{Type: ledger.TypeRegisterVehicle, Owner: ownerAddr, Make: "Crash", Model: "Test", Year: 2024},
			{Type: ledger.TypeRegisterDevice, Device: da, Kind: ledger.KindHardware},
		}
		client.Prepare(txs[0], time.Hour)
		d.Sign(txs[0], owner)
		client.Prepare(txs[1], time.Hour)
		d.Sign(txs[1], dk)
		items, err := c.SubmitBatch(ctx, txs)
		if err != nil || items[0].Error != nil || items[1].Error != nil {
			t.Fatalf("setup: %v %+v", err, items)
		}
		vid := items[0].Result.VehicleID
		pair := &ledger.Tx{Type: ledger.TypePairDevice, Device: da}
		pair.VehicleID.SetUint64(vid)
		client.Prepare(pair, time.Hour)
		d.Sign(pair, owner)
		d.Sign(pair, dk)
		if _, err := c.Submit(ctx, pair); err != nil {
			t.Fatal(err)
		}
		devs = append(devs, device{&ecdsaKey{dk, da}, vid})
	}
	time.Sleep(5 * time.Millisecond) // records start after the pairings' accept time

	acked := map[recordKey][]byte{}
	var mu sync.Mutex
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w, dv := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; runCtx.Err() == nil; n++ {
				batch := make([]telemetry.Submission, 1+rand.IntN(20))
				for i := range batch {
					at := time.Now().Add(-behind)
					ev, _ := telemetry.NewEvent(dv.key.addr, dv.vehicle, fmt.Sprintf("%d-%d-%d", w, n, i), at, []telemetry.EventSignal{
						{Name: "speed", Timestamp: at, Value: float64(i)},
						{Name: "isIgnitionOn", Timestamp: at, Value: true},
					})
					batch[i], _ = telemetry.Sign(ev, dv.key.key)
				}
				res, err := c.PostEvents(runCtx, batch)
				if err != nil {
					continue // killed mid-request: not acknowledged
				}
				mu.Lock()
				for i, r := range res {
					if r.Status != telemetry.StatusAccepted {
						t.Errorf("record refused: %+v", r)
					}
					acked[recordKey{dv.key.addr, r.ID}] = batch[i].Event
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Duration(500+rand.IntN(500)) * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	cancel()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before the kill")
	}
	return acked
}

// recordKey names a record: its device and id.
type recordKey struct {
	src common.Address
	id  string
}

// checkStored opens the telemetry store in data as the restarted node would (SQLite recovers the WAL)
// and requires every acknowledged record in it exactly once, with its bytes.
func checkStored(t *testing.T, data string, acked map[recordKey][]byte) {
	t.Helper()
	store, err := sqlite.OpenTelemetry(filepath.Join(data, "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for k, ev := range acked {
		var stored []byte
		var n int
		if err := store.DB().QueryRow(`SELECT event, (SELECT count(*) FROM records WHERE source = ? AND id = ?) FROM records WHERE source = ? AND id = ?`,
			k.src.Bytes(), k.id, k.src.Bytes(), k.id).Scan(&stored, &n); err != nil {
			t.Fatalf("acknowledged record %s/%s is lost: %v", k.src.Hex(), k.id, err)
		}
		if stored, err = sqlite.DecodeEvent(stored); err != nil {
			t.Fatal(err)
		}
		if n != 1 || string(stored) != string(ev) {
			t.Fatalf("record %s/%s stored %d times or with other bytes", k.src.Hex(), k.id, n)
		}
	}
}

type ecdsaKey struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}
