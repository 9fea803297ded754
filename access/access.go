// Package access is the one place that decides whether a caller may read something of a vehicle now. It
// is a pure function of the ledger's current state, the caller's address (from a sign-in token, which says
// who the caller is and nothing else) and the clock: no store, no cache, so a revocation, an expiry or a
// transfer takes effect on the very next request.
//
// The rules:
//   - No caller (no or an invalid token): Unauthenticated.
//   - A vehicle that does not exist: NotFound (vehicle ids are public in the log, so saying so leaks nothing).
//   - The vehicle's current owner may read everything, but only data measured since they got the vehicle
//     (Decision.Since): a buyer does not see the seller's trips.
//   - An app may read with the permissions of its grant on the vehicle while the grant is in force
//     (now < expiresAt, to the second), also only since the current owner got the vehicle (the grant was
//     given by that owner; a transfer ends every grant anyway). `location` implies `location:approximate`.
//   - Anyone else, or a permission the grant lacks: Forbidden, naming the permission.
//   - A signal (CheckSignal): as its permission, and for a signal that `signals` guards, a grant naming
//     `signals:<name>` reads that one signal. A refusal names the permission and the signal. Every read
//     path that hands out signal values (GraphQL, webhooks, subscriptions, credentials) asks CheckSignal, or
//     Scope.AllowsSignal for many signals of one vehicle decided at once.
//
// A burned vehicle keeps its owner's read access to its history; it has no grants.
//
// It owns the decision only: recording what was read is package accesslog's, and access imports nothing of
// the project but ledger (no store, no API, no telemetry).
//
// It imports only ledger: never a store, the API or telemetry, so that the decision stays a pure function
// of the state.
package access

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/ledger"
)

// Errors callers branch on. Forbidden errors are *Denied.
var (
	ErrUnauthenticated = errors.New("sign in first: no valid access token")
	ErrNotFound        = errors.New("no such vehicle")
)

// Denied is a refusal that names the missing permission, and the signal when one signal was asked for.
type Denied struct {
	Permission string
	Signal     string // the catalogue name of the signal refused (CheckSignal), or ""
	Reason     string
}

func (d *Denied) Error() string {
	if d.Signal != "" {
		if d.Permission == ledger.PermSignals {
			return fmt.Sprintf("signal %s: permission %q or %q needed: %s", d.Signal, d.Permission, ledger.SignalPermission(d.Signal), d.Reason)
		}
		return fmt.Sprintf("signal %s: permission %q needed: %s", d.Signal, d.Permission, d.Reason)
	}
	return fmt.Sprintf("permission %q needed: %s", d.Permission, d.Reason)
}

// Role is how the caller relates to the vehicle.
type Role string

// The roles.
const (
	RoleOwner   Role = "owner"
	RoleGrantee Role = "grantee"
)

// Decision is a granted access: in which role, and from when on the caller may see data.
type Decision struct {
	Role  Role
	Since time.Time // data measured before this belongs to earlier owners
	// Grant is the grant the access rests on, for a grantee.
	Grant *ledger.Grant
}

// Check decides whether caller (the zero address: nobody signed in) may use permission on vehicle
// vehicleID now. It returns ErrUnauthenticated, ErrNotFound or a *Denied when it may not.
func Check(st *ledger.State, caller common.Address, vehicleID uint64, permission string, now time.Time) (Decision, error) {
	if caller == (common.Address{}) {
		return Decision{}, ErrUnauthenticated
	}
	if !ledger.KnownPermission(permission) {
		return Decision{}, fmt.Errorf("access: unknown permission %q", permission)
	}
	v, ok := st.Vehicle(vehicleID)
	if !ok {
		return Decision{}, ErrNotFound
	}
	since := time.UnixMilli(v.OwnedSince)
	// ParseAddress checks the owner's EIP-55 checksum (a Keccak hash), so only for the caller who may be the
	// owner: an address it accepts is the one HexToAddress reads.
	if common.HexToAddress(v.Owner) == caller {
		if owner, err := ledger.ParseAddress(v.Owner); err == nil && owner == caller {
			return Decision{Role: RoleOwner, Since: since}, nil
		}
	}
	g, ok := st.GrantOf(vehicleID, caller)
	if !ok {
		return Decision{}, &Denied{Permission: permission, Reason: fmt.Sprintf("%s holds no grant on vehicle %d", caller.Hex(), vehicleID)}
	}
	if !g.ActiveAt(now.Unix()) {
		return Decision{}, &Denied{Permission: permission, Reason: fmt.Sprintf("the grant on vehicle %d expired at %s", vehicleID,
			time.Unix(g.ExpiresAt, 0).UTC().Format(time.RFC3339))}
	}
	if !Implies(g.Permissions, permission) {
		return Decision{}, &Denied{Permission: permission, Reason: fmt.Sprintf("the grant on vehicle %d does not include it", vehicleID)}
	}
	return Decision{Role: RoleGrantee, Since: since, Grant: &g}, nil
}

// CheckSignal decides whether caller may read the catalogue signal name, which the catalogue guards with
// permission (telemetry.Signal.Permission), of vehicle vehicleID now. It is Check(permission), except that
// for a signal `signals` guards, a grant in force naming `signals:<name>` is enough. A refusal is a *Denied
// naming the permission and the signal. Webhooks, subscriptions and credentials call this for every
// signal they hand out (or ScopeOf once and Scope.AllowsSignal per signal).
func CheckSignal(st *ledger.State, caller common.Address, vehicleID uint64, name, permission string, now time.Time) (Decision, error) {
	d, err := Check(st, caller, vehicleID, permission, now)
	var denied *Denied
	if err == nil || !errors.As(err, &denied) {
		return d, err
	}
	if permission == ledger.PermSignals {
		if g, ok := st.GrantOf(vehicleID, caller); ok && g.ActiveAt(now.Unix()) && g.Has(ledger.SignalPermission(name)) {
			v, _ := st.Vehicle(vehicleID)
			return Decision{Role: RoleGrantee, Since: time.UnixMilli(v.OwnedSince), Grant: &g}, nil
		}
	}
	return Decision{}, &Denied{Permission: permission, Signal: name, Reason: denied.Reason}
}

// Scope is what a caller may read of one vehicle, decided once from one view of the ledger, for read paths
// that ask about many permissions or signals at once (a GraphQL query, a webhook delivery). The zero Scope
// allows nothing.
type Scope struct {
	Decision
	granted []string // the grant's permissions in force; nil for the owner, who holds all
}

// ScopeOf returns what caller may read of vehicle vehicleID now. It returns ErrUnauthenticated or
// ErrNotFound, and a *Denied (naming `signals`) when the caller holds no grant in force at all.
func ScopeOf(st *ledger.State, caller common.Address, vehicleID uint64, now time.Time) (Scope, error) {
	if caller == (common.Address{}) {
		return Scope{}, ErrUnauthenticated
	}
	v, ok := st.Vehicle(vehicleID)
	if !ok {
		return Scope{}, ErrNotFound
	}
	since := time.UnixMilli(v.OwnedSince)
	if owner, err := ledger.ParseAddress(v.Owner); err == nil && owner == caller {
		return Scope{Decision: Decision{Role: RoleOwner, Since: since}}, nil
	}
	g, ok := st.GrantOf(vehicleID, caller)
	if !ok {
		return Scope{}, &Denied{Permission: ledger.PermSignals, Reason: fmt.Sprintf("%s holds no grant on vehicle %d", caller.Hex(), vehicleID)}
	}
	if !g.ActiveAt(now.Unix()) {
		return Scope{}, &Denied{Permission: ledger.PermSignals, Reason: fmt.Sprintf("the grant on vehicle %d expired at %s", vehicleID,
			time.Unix(g.ExpiresAt, 0).UTC().Format(time.RFC3339))}
	}
	return Scope{Decision: Decision{Role: RoleGrantee, Since: since, Grant: &g}, granted: g.Permissions}, nil
}

// Allows reports whether the scope includes the whole permission.
func (s Scope) Allows(permission string) bool {
	switch s.Role {
	case RoleOwner:
		return true
	case RoleGrantee:
		return Implies(s.granted, permission)
	}
	return false
}

// AllowsSignal reports whether the scope lets the caller read the catalogue signal name, which the
// catalogue guards with permission.
func (s Scope) AllowsSignal(name, permission string) bool {
	switch s.Role {
	case RoleOwner:
		return true
	case RoleGrantee:
		return ImpliesSignal(s.granted, name, permission)
	}
	return false
}

// AnySignal reports whether the scope lets the caller read at least one signal that `signals` guards, by
// the whole permission or one by one.
func (s Scope) AnySignal() bool {
	if s.Allows(ledger.PermSignals) {
		return true
	}
	for _, p := range s.granted {
		if _, ok := ledger.SignalOf(p); ok {
			return true
		}
	}
	return false
}

// ImpliesSignal reports whether a set of granted permissions allows reading the catalogue signal name,
// which the catalogue guards with permission: by that permission (Implies), or by `signals:<name>` for a
// signal `signals` guards.
func ImpliesSignal(granted []string, name, permission string) bool {
	if Implies(granted, permission) {
		return true
	}
	return permission == ledger.PermSignals && slices.Contains(granted, ledger.SignalPermission(name))
}

// Implies reports whether a set of granted permissions allows permission: by name, and location for
// location:approximate.
func Implies(granted []string, permission string) bool {
	for _, p := range granted {
		if p == permission || (permission == ledger.PermLocationApproximate && p == ledger.PermLocation) {
			return true
		}
	}
	return false
}

// Vehicles lists the vehicles caller may see anything of now: those it owns, and those on which it holds
// a grant in force.
func Vehicles(st *ledger.State, caller common.Address, now time.Time) []uint64 {
	if caller == (common.Address{}) {
		return nil
	}
	acc := st.Account(caller)
	out := append([]uint64(nil), acc.Vehicles...)
	for _, g := range acc.GrantsHeld {
		if g.ActiveAt(now.Unix()) {
			out = append(out, g.VehicleID)
		}
	}
	return out
}
