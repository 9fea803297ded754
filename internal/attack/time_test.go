package attack

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// accessEntries reads the REST access log of vehicle as token's holder sees it.
func accessEntries(t *testing.T, n *testnode.Node, token string, vehicle uint64) []map[string]any {
	t.Helper()
	status, _, body := get(t, n, token, fmt.Sprintf("/v1/vehicles/%d/access?limit=500", vehicle))
	var page struct{ Entries []map[string]any }
	if status != 200 || json.Unmarshal(body, &page) != nil {
		t.Fatalf("access log: %d %s", status, body)
	}
	return page.Entries
}

// TestTheBuyerDoesNotSeeTheSellersAccessLog: an app the seller granted reads the car, the seller sells
// it. The seller saw the read in the car's access log; the buyer, who owns the car from the sale on, sees
// none of the reads made before it, over REST as over GraphQL.
func TestTheBuyerDoesNotSeeTheSellersAccessLog(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	seller, buyer := testnode.NewKey(t), testnode.NewKey(t)
	vid := n.Vehicle(t, seller)
	app := n.App(t, testnode.NewKey(t))
	n.Grant(t, seller, vid, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals)
	if a := graphQL(t, n, n.SignIn(t, app), fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { value } } }`, vid)); len(a.Errors) != 0 {
		t.Fatalf("the app's read: %s", a.Raw)
	}
	sellerToken := n.SignIn(t, seller)
	for i := 0; len(accessEntries(t, n, sellerToken, vid)) == 0; i++ { // the recorder writes in batches
		if i == 200 {
			t.Fatal("the app's read never reached the access log")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tx := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
	tx.VehicleID.SetUint64(vid)
	n.Submit(t, tx, seller)
	buyerToken := n.SignIn(t, buyer)
	if es := accessEntries(t, n, buyerToken, vid); len(es) != 0 {
		t.Errorf("REST shows the buyer %d reads made under the seller: %v", len(es), es)
	}
	a := graphQL(t, n, buyerToken, fmt.Sprintf(`{ accessLog(tokenId: %d) { nodes { caller } } }`, vid))
	if nodes := a.Data["accessLog"].(map[string]any)["nodes"].([]any); len(a.Errors) != 0 || len(nodes) != 0 {
		t.Errorf("GraphQL shows the buyer the seller's reads: %s", a.Raw)
	}
}

// TestARecordDatedAheadDoesNotOutliveItsPairing: a device sends a record dated a few seconds ahead of the
// node's clock, and its pairing ends before that time: by a sale (which unpairs a software device) or an
// unpairing. The record verified against the pairing while it was open; it must not be stored dated after
// the pairing's end, to be served to the next owner (or anyone) with that pairing's proof. It is held
// until its time and found not_paired then; nothing of it is stored, so no read path (rawRecords,
// signalsLatest, exports, credentials, which all read the stored records or what was derived from them)
// can serve it.
func TestARecordDatedAheadDoesNotOutliveItsPairing(t *testing.T) {
	for _, c := range []struct {
		name string
		kind string
		end  func(n *testnode.Node, owner, buyer, dev testnode.Key, vid uint64)
	}{
		{"sold, which unpairs the software device", ledger.KindSoftware, func(n *testnode.Node, owner, buyer, _ testnode.Key, vid uint64) {
			tx := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
			tx.VehicleID.SetUint64(vid)
			n.Submit(t, tx, owner)
		}},
		{"unpaired by its owner", ledger.KindHardware, func(n *testnode.Node, owner, _, dev testnode.Key, vid uint64) {
			tx := &ledger.Tx{Type: ledger.TypeUnpairDevice, Device: dev.Address}
			tx.VehicleID.SetUint64(vid)
			n.Submit(t, tx, owner)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := testnode.Start(t, testnode.Options{})
			owner, buyer := testnode.NewKey(t), testnode.NewKey(t)
			vid := n.Vehicle(t, owner)
			dev := n.PairedDevice(t, owner, vid, c.kind)
			ahead := time.Now().Add(4 * time.Second)
			sub := testnode.Record(t, dev, vid, "ahead", ahead, telemetry.EventSignal{Name: "speed", Timestamp: ahead, Value: 123.0})
			answer := make(chan []telemetry.Result, 1)
			go func() {
				res, err := n.Client.PostEvents(context.Background(), []telemetry.Submission{sub})
				if err != nil {
					t.Error(err)
				}
				answer <- res
			}()
			time.Sleep(500 * time.Millisecond) // the record is verified while the pairing is open
			c.end(n, owner, buyer, dev, vid)
			if res := <-answer; len(res) != 1 || res[0].Status != telemetry.StatusNotPaired {
				t.Fatalf("the record dated after its pairing's end was answered %+v, want not_paired", res)
			}
			var stored int
			if err := n.Telemetry.DB().QueryRow(`SELECT count(*) FROM records WHERE source = ?`, dev.Address.Bytes()).Scan(&stored); err != nil || stored != 0 {
				t.Fatalf("%d records of the device are stored (%v)", stored, err)
			}
			reader := owner
			if c.kind == ledger.KindSoftware {
				reader = buyer
			}
			q := fmt.Sprintf(`{ rawRecords(tokenId: %d, from: %q, to: %q) { nodes { id } } }`, vid,
				ahead.Add(-time.Minute).UTC().Format(time.RFC3339), ahead.Add(time.Minute).UTC().Format(time.RFC3339))
			a := graphQL(t, n, n.SignIn(t, reader), q)
			if nodes, _ := a.Data["rawRecords"].(map[string]any)["nodes"].([]any); len(a.Errors) != 0 || len(nodes) != 0 {
				t.Fatalf("rawRecords serves the vehicle's owner %s", a.Raw)
			}
		})
	}
}
