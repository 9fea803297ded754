package graphql

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/ethereum/go-ethereum/common"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/api/graphql/internal/exec"
	"github.com/glovebox/glovebox/ledger"
)

// The page sizes of the paginated queries.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// reader decides whether the caller may read the identity of vehicle: it owns it, or holds a grant in
// force on it whatever its permissions (access.Vehicles). The vehicle's view comes from the same state.
func (r *resolver) reader(ctx context.Context, vehicle uint64) (ledger.Vehicle, access.Role, error) {
	caller, now := CallerFrom(ctx), r.cfg.Now()
	var v ledger.Vehicle
	var role access.Role
	var err error
	r.cfg.State(func(st *ledger.State) {
		d, e := access.Check(st, caller, vehicle, ledger.PermSignals, now)
		var denied *access.Denied
		switch {
		case e == nil:
			role = d.Role
		case errors.As(e, &denied) && slices.Contains(access.Vehicles(st, caller, now), vehicle):
			role = access.RoleGrantee // a grant in force without signals
		case errors.As(e, &denied):
			err = errNotAReader(vehicle)
			return
		default:
			err = accessError(e)
			return
		}
		v, _ = st.Vehicle(vehicle)
	})
	return v, role, err
}

func errNotAReader(vehicle uint64) *gqlerror.Error {
	return codedError(CodeForbidden, "the caller neither owns vehicle %d nor holds a grant in force on it", vehicle)
}

// vehicleReader implements @vehicleReader: with a tokenId in scope the caller must own the vehicle or hold
// a grant in force on it; without one it must be signed in, and the resolver lists only such vehicles.
func (r *resolver) vehicleReader(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	vehicle, ok := tokenIDInScope(ctx)
	if !ok {
		if CallerFrom(ctx) == (common.Address{}) {
			return nil, accessError(access.ErrUnauthenticated)
		}
		return next(ctx)
	}
	if _, _, err := r.reader(ctx, vehicle); err != nil {
		if isForbidden(err) {
			(*queryResolver)(r).recordEntry(ctx, vehicle, grants{}, nil, time.Time{}, time.Time{}, 0, "forbidden")
		}
		return nil, err
	}
	return next(ctx)
}

// owner implements @owner: only the current owner of the vehicle of the field's tokenId.
func (r *resolver) owner(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	vehicle, ok := tokenIDInScope(ctx)
	if !ok {
		return nil, codedError(CodeForbidden, "only a vehicle's owner may read this, and no vehicle is in scope")
	}
	if _, err := r.ownerSince(ctx, vehicle); err != nil {
		if isForbidden(err) {
			(*queryResolver)(r).recordEntry(ctx, vehicle, grants{}, nil, time.Time{}, time.Time{}, 0, "forbidden")
		}
		return nil, err
	}
	return next(ctx)
}

// ownerSince checks that the caller owns vehicle and returns since when.
func (r *resolver) ownerSince(ctx context.Context, vehicle uint64) (time.Time, error) {
	d, err := r.check(ctx, vehicle, ledger.PermSignals)
	var denied *access.Denied
	switch {
	case err == nil && d.Role == access.RoleOwner:
		return d.Since, nil
	case err == nil || errors.As(err, &denied):
		return time.Time{}, codedError(CodeForbidden, "only the owner of vehicle %d may read this", vehicle)
	}
	return time.Time{}, accessError(err)
}

func isForbidden(err error) bool {
	var e *gqlerror.Error
	return errors.As(err, &e) && e.Extensions["code"] == CodeForbidden
}

// vehicleView is the API's view of v for caller.
func vehicleView(st *ledger.State, v ledger.Vehicle, caller common.Address) exec.Vehicle {
	out := exec.Vehicle{ID: strconv.FormatUint(v.ID, 10), TokenID: int(v.ID), Owner: checksummed(v.Owner),
		Definition: &exec.Definition{Make: v.Make, Model: v.Model, Year: int(v.Year)}, PairedDevices: []exec.PairedDevice{}}
	for _, p := range v.Devices {
		out.PairedDevices = append(out.PairedDevices, exec.PairedDevice{Address: checksummed(p.Device), Kind: p.Kind,
			PairedAt: time.UnixMilli(p.FromTime).UTC()})
	}
	if checksummed(v.Owner) != caller.Hex() {
		if g, ok := st.GrantOf(v.ID, caller); ok {
			out.MyGrant = &exec.Grant{Permissions: append([]string{}, g.Permissions...), ExpiresAt: time.Unix(g.ExpiresAt, 0).UTC(),
				Purpose: g.Purpose, TermsURI: g.TermsURI}
		}
	}
	return out
}

func checksummed(a string) string {
	if x, err := ledger.ParseAddress(a); err == nil {
		return x.Hex()
	}
	return a
}

func (q *queryResolver) Vehicle(ctx context.Context, tokenID int) (*exec.Vehicle, error) {
	if tokenID < 0 {
		return nil, codedError(CodeBadRequest, "tokenId %d: vehicle ids are not negative", tokenID)
	}
	vehicle := uint64(tokenID)
	if _, _, err := (*resolver)(q).reader(ctx, vehicle); err != nil {
		return nil, err
	}
	var out exec.Vehicle
	var role access.Role
	caller := CallerFrom(ctx)
	q.cfg.State(func(st *ledger.State) {
		v, _ := st.Vehicle(vehicle)
		out = vehicleView(st, v, caller)
		if out.Owner == caller.Hex() {
			role = access.RoleOwner
		}
	})
	q.recordEntry(ctx, vehicle, grants{owner: role == access.RoleOwner}, nil, time.Time{}, time.Time{}, 1, "ok")
	return &out, nil
}

// The cursors are opaque to clients: a kind and a position, base64url.
func encodeCursor(kind string, pos uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatUint(pos, 10)))
}

func decodeCursor(kind string, c *string) (uint64, bool, error) {
	if c == nil || *c == "" {
		return 0, false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*c)
	rest, ok := strings.CutPrefix(string(b), kind+":")
	if err != nil || !ok {
		return 0, false, codedError(CodeBadRequest, "after: %q is not a cursor of this list", *c)
	}
	pos, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return 0, false, codedError(CodeBadRequest, "after: %q is not a cursor of this list", *c)
	}
	return pos, true, nil
}

func pageSize(first *int) (int, error) {
	if first == nil {
		return DefaultPageSize, nil
	}
	if *first < 0 || *first > MaxPageSize {
		return 0, codedError(CodeBadRequest, "first is %d; it must be 0 to %d", *first, MaxPageSize)
	}
	return *first, nil
}

func (q *queryResolver) Vehicles(ctx context.Context, first *int, after *string) (*exec.VehicleConnection, error) {
	caller := CallerFrom(ctx)
	if caller == (common.Address{}) {
		return nil, accessError(access.ErrUnauthenticated)
	}
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	afterID, hasAfter, err := decodeCursor("vehicle", after)
	if err != nil {
		return nil, err
	}
	out := &exec.VehicleConnection{Edges: []exec.VehicleEdge{}, Nodes: []exec.Vehicle{}, PageInfo: &exec.PageInfo{}}
	var read []uint64 // the vehicles shown to the caller as a grantee
	q.cfg.State(func(st *ledger.State) {
		ids := access.Vehicles(st, caller, q.cfg.Now())
		slices.Sort(ids)
		ids = slices.Compact(ids)
		out.TotalCount = len(ids)
		if hasAfter {
			i, _ := slices.BinarySearch(ids, afterID+1)
			ids = ids[i:]
		}
		if len(ids) > n {
			ids, out.PageInfo.HasNextPage = ids[:n], true
		}
		for _, id := range ids {
			v, ok := st.Vehicle(id)
			if !ok {
				continue
			}
			view := vehicleView(st, v, caller)
			c := encodeCursor("vehicle", id)
			out.Edges = append(out.Edges, exec.VehicleEdge{Cursor: c, Node: &view})
			out.Nodes = append(out.Nodes, view)
			out.PageInfo.EndCursor = &c
			if view.Owner != caller.Hex() {
				read = append(read, id)
			}
		}
	})
	for _, id := range read {
		q.recordEntry(ctx, id, grants{}, nil, time.Time{}, time.Time{}, 1, "ok")
	}
	return out, nil
}

func (q *queryResolver) AccessLog(ctx context.Context, tokenID int, first *int, after *string) (*exec.AccessEntryConnection, error) {
	if tokenID < 0 {
		return nil, codedError(CodeBadRequest, "tokenId %d: vehicle ids are not negative", tokenID)
	}
	vehicle := uint64(tokenID)
	since, err := (*resolver)(q).ownerSince(ctx, vehicle)
	if err != nil {
		return nil, err
	}
	if q.cfg.AccessLog == nil {
		return nil, errors.New("graphql: no access log configured")
	}
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	before, _, err := decodeCursor("access", after)
	if err != nil {
		return nil, err
	}
	if after != nil && before == 0 {
		return nil, codedError(CodeBadRequest, "after: %q is not a cursor of this list", *after)
	}
	out := &exec.AccessEntryConnection{Edges: []exec.AccessEntryEdge{}, Nodes: []exec.AccessEntry{}, PageInfo: &exec.PageInfo{}}
	if n == 0 {
		return out, nil
	}
	es, err := q.cfg.AccessLog.List(ctx, vehicle, int64(before), n+1)
	if err != nil {
		return nil, fmt.Errorf("couldn't list the access log of vehicle %d: %w", vehicle, err)
	}
	for i, e := range es {
		if e.Time.Before(since) { // read under an earlier owner; older ones follow
			break
		}
		if i == n {
			out.PageInfo.HasNextPage = true
			break
		}
		node := exec.AccessEntry{Time: e.Time.UTC(), Caller: e.Caller.Hex(), Query: e.Query, Permissions: append([]string{}, e.Permissions...),
			Values: e.Values, Outcome: e.Outcome}
		if !e.From.IsZero() {
			t := e.From.UTC()
			node.From = &t
		}
		if !e.To.IsZero() {
			t := e.To.UTC()
			node.To = &t
		}
		c := encodeCursor("access", uint64(e.Seq))
		out.Edges = append(out.Edges, exec.AccessEntryEdge{Cursor: c, Node: &node})
		out.Nodes = append(out.Nodes, node)
		out.PageInfo.EndCursor = &c
	}
	return out, nil
}
