package attack

import (
	"fmt"
	"testing"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
)

// TestAStrangerIsRefusedAsDocumented checks the refusals docs/graphql.md and docs/ledger.md promise to a
// stranger, where the node used to answer otherwise.
func TestAStrangerIsRefusedAsDocumented(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	stranger := testnode.NewKey(t)
	t.Run("signalsLatest { lastSeen } is FORBIDDEN, not null", func(t *testing.T) {
		a := graphQL(t, n, n.SignIn(t, stranger), fmt.Sprintf(`{ signalsLatest(tokenId: %d) { lastSeen } }`, vid))
		if a.code() != "FORBIDDEN" || a.Errors[0].Extensions["permission"] != ledger.PermSignals {
			t.Errorf("%s", a.Raw)
		}
	})
	t.Run("the owner's lastSeen of a car with no data is null without an error", func(t *testing.T) {
		a := graphQL(t, n, n.SignIn(t, owner), fmt.Sprintf(`{ signalsLatest(tokenId: %d) { lastSeen } }`, vid))
		if len(a.Errors) != 0 || a.Data["signalsLatest"].(map[string]any)["lastSeen"] != nil {
			t.Errorf("%s", a.Raw)
		}
	})
	t.Run("a PairDevice signed only by the device is not_owner", func(t *testing.T) {
		dev := testnode.NewKey(t)
		n.Submit(t, &ledger.Tx{Type: ledger.TypeRegisterDevice, Device: dev.Address, Kind: ledger.KindHardware}, dev)
		tx := &ledger.Tx{Type: ledger.TypePairDevice, Device: dev.Address}
		tx.VehicleID.SetUint64(vid)
		n.Refuse(t, string(ledger.CodeNotOwner), tx, dev)
	})
}
