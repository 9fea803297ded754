package node_test

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/sqlite"
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

	type key struct {
		src common.Address
		id  string
	}
	acked := map[key][]byte{}
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
					at := time.Now()
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
					acked[key{dv.key.addr, r.ID}] = batch[i].Event
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

	// Open the store as the restarted node would (SQLite recovers the WAL) and look for every record.
	store, err := sqlite.OpenTelemetry(filepath.Join(data, "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		t.Fatal(err)
	}
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
	store.Close()
	// The node starts again on the same directory and indexes everything.
	_, url = startNode(t, data)
	if _, err := client.New(url).StateDigest(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged records all stored once", len(acked))
}

type ecdsaKey struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}
