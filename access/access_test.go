package access_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestTheAuthorizationMatrix builds one ledger with every kind of caller — the owner, an app per single
// permission, an app whose grant expires, one that was revoked, one that renounced, one whose grant ended
// with a transfer, an unrelated app, nobody — and checks every permission for each, including the exact
// second of expiry.
func TestTheAuthorizationMatrix(t *testing.T) {
	c := &clock{time.Now().Truncate(time.Second)}
	n := testnode.Start(t, testnode.Options{Now: c.now})
	owner, buyer := testnode.NewKey(t), testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	sold := n.Vehicle(t, owner)
	far := c.t.Add(24 * time.Hour).Unix()
	expiry := c.t.Add(time.Hour).Unix()

	apps := map[string]testnode.Key{}
	for _, p := range ledger.Permissions {
		a := n.App(t, owner)
		n.Grant(t, owner, vid, a.Address, far, p)
		apps[p] = a
	}
	expiring := n.App(t, owner)
	n.Grant(t, owner, vid, expiring.Address, expiry, ledger.PermSignals)
	revoked := n.App(t, owner)
	n.Grant(t, owner, vid, revoked.Address, far, ledger.PermSignals)
	rev := &ledger.Tx{Type: ledger.TypeRevoke, App: revoked.Address}
	rev.VehicleID.SetUint64(vid)
	n.Submit(t, rev, owner)
	renounced := n.App(t, owner)
	n.Grant(t, owner, vid, renounced.Address, far, ledger.PermSignals)
	ren := &ledger.Tx{Type: ledger.TypeRenounce, App: renounced.Address}
	ren.VehicleID.SetUint64(vid)
	n.Submit(t, ren, renounced)
	transferred := n.App(t, owner)
	n.Grant(t, owner, sold, transferred.Address, far, ledger.PermSignals)
	c.t = c.t.Add(time.Minute)
	tr := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
	tr.VehicleID.SetUint64(sold)
	n.Submit(t, tr, owner)
	unrelated := n.App(t, owner)

	type want int
	const (
		allow want = iota
		forbid
		unauth
		notFound
	)
	check := func(t *testing.T, caller common.Address, vehicle uint64, perm string, at time.Time, w want) {
		t.Helper()
		var d access.Decision
		var err error
		n.Sequencer.Read(func(st *ledger.State) { d, err = access.Check(st, caller, vehicle, perm, at) })
		var denied *access.Denied
		switch {
		case w == allow && err != nil:
			t.Fatalf("%s on vehicle %d refused: %v", perm, vehicle, err)
		case w == forbid && (!errors.As(err, &denied) || denied.Permission != perm):
			t.Fatalf("%s on vehicle %d: got %v (%+v), want forbidden naming %s", perm, vehicle, err, d, perm)
		case w == unauth && !errors.Is(err, access.ErrUnauthenticated):
			t.Fatalf("got %v, want unauthenticated", err)
		case w == notFound && !errors.Is(err, access.ErrNotFound):
			t.Fatalf("got %v, want not found", err)
		}
	}
	now := c.t
	for _, perm := range ledger.Permissions {
		t.Run(perm, func(t *testing.T) {
			t.Run("the owner may", func(t *testing.T) { check(t, owner.Address, vid, perm, now, allow) })
			for p, a := range apps {
				w := forbid
				if p == perm || (perm == ledger.PermLocationApproximate && p == ledger.PermLocation) {
					w = allow
				}
				t.Run("the app granted "+p, func(t *testing.T) { check(t, a.Address, vid, perm, now, w) })
			}
			t.Run("an app after revoke may not", func(t *testing.T) { check(t, revoked.Address, vid, perm, now, forbid) })
			t.Run("an app after renounce may not", func(t *testing.T) { check(t, renounced.Address, vid, perm, now, forbid) })
			t.Run("an app after the vehicle's transfer may not", func(t *testing.T) { check(t, transferred.Address, sold, perm, now, forbid) })
			t.Run("the seller after the transfer may not", func(t *testing.T) { check(t, owner.Address, sold, perm, now, forbid) })
			t.Run("the buyer may", func(t *testing.T) { check(t, buyer.Address, sold, perm, now, allow) })
			t.Run("an unrelated app may not", func(t *testing.T) { check(t, unrelated.Address, vid, perm, now, forbid) })
			t.Run("nobody signed in may not", func(t *testing.T) { check(t, common.Address{}, vid, perm, now, unauth) })
			t.Run("no one may read a vehicle that does not exist", func(t *testing.T) { check(t, owner.Address, 999, perm, now, notFound) })
		})
	}
	t.Run("a grant holds until the second before it expires", func(t *testing.T) {
		check(t, expiring.Address, vid, ledger.PermSignals, time.Unix(expiry-1, 999e6), allow)
	})
	t.Run("a grant ends at the exact second it expires", func(t *testing.T) {
		check(t, expiring.Address, vid, ledger.PermSignals, time.Unix(expiry, 0), forbid)
	})
	t.Run("the buyer sees nothing from before the sale", func(t *testing.T) {
		var d access.Decision
		n.Sequencer.Read(func(st *ledger.State) { d, _ = access.Check(st, buyer.Address, sold, ledger.PermSignals, now) })
		v, _ := n.Client.Vehicle(t.Context(), sold)
		if d.Since.UnixMilli() != v.OwnedSince || d.Since.Before(now.Add(-time.Second)) {
			t.Fatalf("buyer may see data since %s; sold at %d", d.Since, v.OwnedSince)
		}
	})
	t.Run("the vehicles a caller may see", func(t *testing.T) {
		var owned, held, none []uint64
		n.Sequencer.Read(func(st *ledger.State) {
			owned = access.Vehicles(st, owner.Address, now)
			held = access.Vehicles(st, apps[ledger.PermRaw].Address, now)
			none = access.Vehicles(st, expiring.Address, time.Unix(expiry, 0))
		})
		if len(owned) != 1 || owned[0] != vid || len(held) != 1 || held[0] != vid || len(none) != 0 {
			t.Fatalf("owner %v, grantee %v, expired grantee %v", owned, held, none)
		}
	})
}

// TestCheckSignal: a grant naming signals:<name> reads that signal and no other, never a location signal
// or a whole permission; a refusal names the permission and the signal; revoked and expired grants read
// nothing; Scope answers as CheckSignal does.
func TestCheckSignal(t *testing.T) {
	c := &clock{time.Now().Truncate(time.Second)}
	n := testnode.Start(t, testnode.Options{Now: c.now})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	far, expiry := c.t.Add(24*time.Hour).Unix(), c.t.Add(time.Hour).Unix()
	odo, odoApprox, revoked, expired := n.App(t, owner), n.App(t, owner), n.App(t, owner), n.App(t, owner)
	const x = "powertrainTransmissionTravelledDistance"
	n.Grant(t, owner, vid, odo.Address, far, ledger.SignalPermission(x))
	n.Grant(t, owner, vid, odoApprox.Address, far, ledger.SignalPermission(x), ledger.PermLocationApproximate)
	n.Grant(t, owner, vid, revoked.Address, far, ledger.SignalPermission(x))
	n.Grant(t, owner, vid, expired.Address, expiry, ledger.SignalPermission(x))
	rev := &ledger.Tx{Type: ledger.TypeRevoke, App: revoked.Address}
	rev.VehicleID.SetUint64(vid)
	n.Submit(t, rev, owner)
	now := time.Unix(expiry, 0)

	type ask struct{ signal, permission string }
	asks := []ask{{x, ledger.PermSignals}, {"speed", ledger.PermSignals}, {"currentLocationCoordinates", ledger.PermLocation}}
	for _, tc := range []struct {
		name   string
		caller common.Address
		want   string // per ask: "ok", or the refusal's permission/signal
	}{
		{"owner", owner.Address, "[ok ok ok]"},
		{"signals:x", odo.Address, "[ok signals/speed location/currentLocationCoordinates]"},
		{"signals:x + location:approximate", odoApprox.Address, "[ok signals/speed location/currentLocationCoordinates]"},
		{"revoked", revoked.Address, "[signals/" + x + " signals/speed location/currentLocationCoordinates]"},
		{"expired", expired.Address, "[signals/" + x + " signals/speed location/currentLocationCoordinates]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got, scoped []string
			n.Sequencer.Read(func(st *ledger.State) {
				sc, _ := access.ScopeOf(st, tc.caller, vid, now)
				for _, a := range asks {
					_, err := access.CheckSignal(st, tc.caller, vid, a.signal, a.permission, now)
					var d *access.Denied
					switch {
					case err == nil:
						got = append(got, "ok")
					case errors.As(err, &d):
						got = append(got, d.Permission+"/"+d.Signal)
					default:
						got = append(got, err.Error())
					}
					if sc.AllowsSignal(a.signal, a.permission) != (err == nil) {
						scoped = append(scoped, a.signal)
					}
				}
				if _, err := access.Check(st, tc.caller, vid, ledger.PermSignals, now); err == nil && tc.caller != owner.Address {
					t.Error("a per-signal grant passes the whole signals permission")
				}
			})
			if fmt.Sprint(got) != tc.want {
				t.Errorf("got %v, want %s", got, tc.want)
			}
			if len(scoped) > 0 {
				t.Errorf("Scope.AllowsSignal disagrees with CheckSignal on %v", scoped)
			}
		})
	}
}
