package attack

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
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
