package webhook

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/ledger"
)

// allowedByChecks is Allowed as one access check a permission: what Allowed must answer, error for error.
func allowedByChecks(st *ledger.State, app common.Address, vehicle uint64, perms []string, now time.Time) error {
	d, err := access.Check(st, app, vehicle, ledger.PermStream, now)
	if err != nil {
		return err
	}
	if d.Role == access.RoleOwner {
		return nil
	}
	for _, p := range perms {
		var err error
		if name, ok := ledger.SignalOf(p); ok {
			_, err = access.CheckSignal(st, app, vehicle, name, ledger.PermSignals, now)
		} else {
			_, err = access.Check(st, app, vehicle, p, now)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Allowed reads the vehicle once and checks the permissions against the grant found: for every caller,
// vehicle and set of permissions it answers as a check of each permission would.
func TestAllowedAnswersAsACheckOfEachPermission(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := ledger.NewState()
	nonce := uint64(0)
	apply := func(tx *ledger.Tx, signers ...common.Address) ledger.Result {
		t.Helper()
		nonce++
		tx.Nonce.SetUint64(nonce)
		tx.Deadline.SetUint64(uint64(t0.Unix() + 3600))
		tx.Signatures = make([]ledger.Signature, len(signers))
		res, err := st.Apply(&ledger.Entry{AcceptTime: t0.UnixMilli(), Tx: tx}, signers, st.Size())
		if err != nil {
			t.Fatalf("%v: %v", tx.Type, err)
		}
		return res
	}
	a := func(b byte) common.Address { return common.Address{19: b} }
	owner, dev, stranger := a(1), a(2), a(3)
	vid := apply(&ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner, Make: "Volkswagen", Model: "ID.3", Year: 2023}, owner).VehicleID
	speed := ledger.SignalPermission("speed")
	grants := map[common.Address][]string{
		a(10): {ledger.PermStream, ledger.PermSignals},
		a(11): {ledger.PermStream, speed},
		a(12): {ledger.PermStream},
		a(13): {ledger.PermSignals, ledger.PermInsights},
		a(14): {ledger.PermStream, ledger.PermLocation, ledger.PermInsights},
	}
	callers := []common.Address{owner, stranger, {}}
	for app, perms := range grants {
		apply(&ledger.Tx{Type: ledger.TypeRegisterApp, App: app, Owner: dev, Name: "App", RedirectURIs: []string{"https://app.example/cb"}}, dev, app)
		tx := &ledger.Tx{Type: ledger.TypeGrant, App: app, Permissions: perms, Purpose: "A test"}
		tx.VehicleID.SetUint64(vid)
		tx.ExpiresAt.SetUint64(uint64(t0.Add(time.Hour).Unix()))
		apply(tx, owner)
		callers = append(callers, app)
	}
	permSets := [][]string{nil, {speed}, {ledger.SignalPermission("odometer")}, {ledger.PermSignals}, {ledger.PermLocationApproximate},
		{ledger.PermInsights}, {ledger.PermInsights, speed}, {"no-such-permission"}}
	checked, refused := 0, 0
	for _, now := range []time.Time{t0, t0.Add(2 * time.Hour)} { // the grants in force, then expired
		for _, caller := range callers {
			for _, vehicle := range []uint64{vid, vid + 1} {
				for _, perms := range permSets {
					want, got := allowedByChecks(st, caller, vehicle, perms, now), Allowed(st, caller, vehicle, perms, now)
					if fmt.Sprint(got) != fmt.Sprint(want) || errors.As(got, new(*access.Denied)) != errors.As(want, new(*access.Denied)) {
						t.Errorf("%s on %d with %v at %s: %v, want %v", caller.Hex(), vehicle, perms, now.Format(time.TimeOnly), got, want)
					}
					checked++
					if want != nil {
						refused++
					}
				}
			}
		}
	}
	if refused == 0 || refused == checked {
		t.Fatalf("%d of %d cases refused: the table tells nothing", refused, checked)
	}
}
