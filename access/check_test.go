package access_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/ledger"
)

// chain builds a ledger.State in memory by applying transactions directly: State.Apply takes the signers as
// given (verifying signatures is the sequencer's job), so no key, node or store is involved.
type chain struct {
	t     *testing.T
	st    *ledger.State
	now   time.Time // the accept time of the next entry
	nonce uint64
}

func (c *chain) apply(tx *ledger.Tx, signers ...common.Address) ledger.Result {
	c.t.Helper()
	c.nonce++
	tx.Nonce.SetUint64(c.nonce)
	tx.Deadline.SetUint64(uint64(c.now.Unix() + 3600))
	tx.Signatures = make([]ledger.Signature, len(signers))
	res, err := c.st.Apply(&ledger.Entry{AcceptTime: c.now.UnixMilli(), Tx: tx}, signers, c.st.Size())
	if err != nil {
		c.t.Fatalf("%v: %v", tx.Type, err)
	}
	return res
}

func addr(b byte) common.Address { return common.Address{19: b} }

// TestCheck is access.Check as a pure function: one ledger built in memory, and for each case a caller, a
// vehicle, a permission and a time, with the outcome written out.
func TestCheck(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := &chain{t: t, st: ledger.NewState(), now: t0}
	var (
		owner, buyer, dev                         = addr(1), addr(2), addr(3)
		signalsApp, locationApp, rawApp, expiring = addr(10), addr(11), addr(12), addr(13)
		revoked, renounced, transferred, stranger = addr(14), addr(15), addr(16), addr(17)
	)
	register := func() uint64 {
		return c.apply(&ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner, Make: "Volkswagen", Model: "ID.3", Year: 2023}, owner).VehicleID
	}
	vid, sold := register(), register()
	for _, a := range []common.Address{signalsApp, locationApp, rawApp, expiring, revoked, renounced, transferred, stranger} {
		c.apply(&ledger.Tx{Type: ledger.TypeRegisterApp, App: a, Owner: dev, Name: "App", RedirectURIs: []string{"https://app.example/cb"}}, dev, a)
	}
	grant := func(v uint64, app common.Address, expires time.Time, perms ...string) {
		tx := &ledger.Tx{Type: ledger.TypeGrant, App: app, Permissions: perms, Purpose: "A test"}
		tx.VehicleID.SetUint64(v)
		tx.ExpiresAt.SetUint64(uint64(expires.Unix()))
		c.apply(tx, owner)
	}
	far, expiry := t0.Add(24*time.Hour), t0.Add(time.Hour)
	grant(vid, signalsApp, far, ledger.PermSignals)
	grant(vid, locationApp, far, ledger.PermLocation)
	grant(vid, rawApp, far, ledger.PermRaw, ledger.PermInsights)
	grant(vid, expiring, expiry, ledger.PermSignals)
	grant(vid, revoked, far, ledger.PermSignals)
	grant(vid, renounced, far, ledger.PermSignals)
	grant(sold, transferred, far, ledger.PermSignals)
	rev := &ledger.Tx{Type: ledger.TypeRevoke, App: revoked}
	rev.VehicleID.SetUint64(vid)
	c.apply(rev, owner)
	ren := &ledger.Tx{Type: ledger.TypeRenounce, App: renounced}
	ren.VehicleID.SetUint64(vid)
	c.apply(ren, renounced)
	c.now = t0.Add(time.Minute)
	tr := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer}
	tr.VehicleID.SetUint64(sold)
	c.apply(tr, owner)

	now := t0.Add(2 * time.Minute)
	for _, tc := range []struct {
		name       string
		caller     common.Address
		vehicle    uint64
		permission string
		at         time.Time
		want       string // "owner since <ms>", "grantee since <ms>", "forbidden <permission>", "unauthenticated", "not found" or "error"
	}{
		{"the owner reads signals", owner, vid, ledger.PermSignals, now, "owner since 1772366400000"},
		{"the owner reads raw", owner, vid, ledger.PermRaw, now, "owner since 1772366400000"},
		{"the owner reads commands", owner, vid, ledger.PermCommands, now, "owner since 1772366400000"},
		{"an app granted signals reads signals", signalsApp, vid, ledger.PermSignals, now, "grantee since 1772366400000"},
		{"an app granted signals may not read the location", signalsApp, vid, ledger.PermLocation, now, "forbidden location"},
		{"an app granted signals may not read the approximate location", signalsApp, vid, ledger.PermLocationApproximate, now, "forbidden location:approximate"},
		{"an app granted location reads the location", locationApp, vid, ledger.PermLocation, now, "grantee since 1772366400000"},
		{"location implies location:approximate", locationApp, vid, ledger.PermLocationApproximate, now, "grantee since 1772366400000"},
		{"location does not imply signals", locationApp, vid, ledger.PermSignals, now, "forbidden signals"},
		{"an app granted raw and insights reads insights", rawApp, vid, ledger.PermInsights, now, "grantee since 1772366400000"},
		{"an app granted raw and insights may not stream", rawApp, vid, ledger.PermStream, now, "forbidden stream"},
		{"a grant holds in the second before it expires", expiring, vid, ledger.PermSignals, expiry.Add(-time.Millisecond), "grantee since 1772366400000"},
		{"a grant ends at the exact second it expires", expiring, vid, ledger.PermSignals, expiry, "forbidden signals"},
		{"a revoked grant reads nothing", revoked, vid, ledger.PermSignals, now, "forbidden signals"},
		{"a renounced grant reads nothing", renounced, vid, ledger.PermSignals, now, "forbidden signals"},
		{"a transfer ends the grants on the vehicle", transferred, sold, ledger.PermSignals, now, "forbidden signals"},
		{"the seller reads nothing of the sold vehicle", owner, sold, ledger.PermSignals, now, "forbidden signals"},
		{"the buyer reads only since the sale", buyer, sold, ledger.PermSignals, now, "owner since 1772366460000"},
		{"an app without a grant reads nothing", stranger, vid, ledger.PermSignals, now, "forbidden signals"},
		{"nobody signed in is unauthenticated", common.Address{}, vid, ledger.PermSignals, now, "unauthenticated"},
		{"nobody signed in is unauthenticated even for a vehicle that does not exist", common.Address{}, 999, ledger.PermSignals, now, "unauthenticated"},
		{"a vehicle that does not exist is not found", owner, 999, ledger.PermSignals, now, "not found"},
		{"an unknown permission is an error, not a refusal", owner, vid, "everything", now, "error"},
		{"a per-signal permission is not a permission Check knows", signalsApp, vid, ledger.SignalPermission("speed"), now, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := access.Check(c.st, tc.caller, tc.vehicle, tc.permission, tc.at)
			var denied *access.Denied
			var got string
			switch {
			case err == nil:
				got = fmt.Sprintf("%s since %d", d.Role, d.Since.UnixMilli())
				if (d.Role == access.RoleGrantee) != (d.Grant != nil) {
					t.Errorf("role %s with grant %+v", d.Role, d.Grant)
				}
			case errors.Is(err, access.ErrUnauthenticated):
				got = "unauthenticated"
			case errors.Is(err, access.ErrNotFound):
				got = "not found"
			case errors.As(err, &denied):
				got = "forbidden " + denied.Permission
				if denied.Reason == "" {
					t.Error("a refusal without a reason")
				}
			default:
				got = "error"
			}
			if got != tc.want {
				t.Errorf("got %q, want %q (%v)", got, tc.want, err)
			}
		})
	}
}
