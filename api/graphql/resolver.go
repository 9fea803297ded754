package graphql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/ethereum/go-ethereum/common"
	"github.com/uber/h3-go/v4"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api/graphql/internal/exec"
	"github.com/glovebox/glovebox/api/graphql/internal/schemagen"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// ApproximateResolution is the H3 resolution of approximate locations (cells of about 36 km²).
const ApproximateResolution = 6

// resolver answers the queries; it holds no state of its own beyond the configuration.
type resolver struct {
	cfg   Config
	perms []string // every permission a SignalCollection field can require
}

func newResolver(cfg Config) *resolver {
	r := &resolver{cfg: cfg, perms: []string{ledger.PermLocationApproximate, ledger.PermInsights}}
	for _, s := range cfg.Catalog.Signals {
		if !slices.Contains(r.perms, s.Permission) {
			r.perms = append(r.perms, s.Permission)
		}
	}
	return r
}

func (r *resolver) Query() exec.QueryResolver { return (*queryResolver)(r) }

// check asks package access whether the caller may use permission on vehicle now.
func (r *resolver) check(ctx context.Context, vehicle uint64, permission string) (access.Decision, error) {
	var d access.Decision
	var err error
	r.cfg.State(func(st *ledger.State) {
		d, err = access.Check(st, CallerFrom(ctx), vehicle, permission, r.cfg.Now())
	})
	return d, err
}

// grants is what the caller may read of one vehicle, decided once per query field.
type grants struct {
	allowed map[string]bool // permission → held
	signals map[string]bool // signals readable one by one (`signals:<name>`) when `signals` is not held
	since   time.Time       // data measured before this belongs to an earlier owner
	owner   bool            // the caller owns the vehicle (its reads are not logged)
}

// any reports whether the caller may read any signal (insights, which reads no signal value, does not
// count).
func (g grants) any() bool {
	for p, ok := range g.allowed {
		if ok && p != ledger.PermInsights {
			return true
		}
	}
	return len(g.signals) > 0
}

// signal reports whether the caller may read the catalogue signal s: by its permission, or one by one
// (access.ImpliesSignal decided it in grantsOf).
func (g grants) signal(s *telemetry.Signal) bool {
	return g.allowed[s.Permission] || (s.Permission == ledger.PermSignals && g.signals[s.Name])
}

// grantsOf decides every SignalCollection permission and signal for the caller on vehicle from one view of
// the ledger (access.ScopeOf). Not signed in and no such vehicle are errors; a denied permission is not.
func (r *resolver) grantsOf(ctx context.Context, vehicle uint64) (grants, error) {
	g := grants{allowed: map[string]bool{}}
	var err error
	caller, now := CallerFrom(ctx), r.cfg.Now()
	r.cfg.State(func(st *ledger.State) {
		sc, e := access.ScopeOf(st, caller, vehicle, now)
		var denied *access.Denied
		switch {
		case errors.As(e, &denied):
			return
		case e != nil:
			err = e
			return
		}
		for _, p := range r.perms {
			if sc.Allows(p) {
				g.allowed[p], g.since, g.owner = true, sc.Since, sc.Role == access.RoleOwner
			}
		}
		if g.allowed[ledger.PermSignals] {
			return
		}
		for i := range r.cfg.Catalog.Signals {
			s := &r.cfg.Catalog.Signals[i]
			if s.Permission == ledger.PermSignals && sc.AllowsSignal(s.Name, s.Permission) {
				if g.signals == nil {
					g.signals = map[string]bool{}
				}
				g.signals[s.Name], g.since = true, sc.Since
			}
		}
	})
	if err != nil {
		return grants{}, accessError(err)
	}
	return g, nil
}

// signalField returns the catalogue signal a SignalCollection or SignalAggregations field resolves, if the
// field being resolved is one.
func (r *resolver) signalField(ctx context.Context) (*telemetry.Signal, bool) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || (fc.Object != "SignalCollection" && fc.Object != "SignalAggregations") {
		return nil, false
	}
	return r.cfg.Catalog.Lookup(fc.Field.Name)
}

// requires implements @requires: the field resolves only if the caller holds permission on the vehicle
// of the enclosing query field's tokenId. A field with no such vehicle in scope is refused.
func (r *resolver) requires(ctx context.Context, obj any, next graphql.Resolver, permission string) (any, error) {
	// A SignalAggregations row carries what its signals query decided, from the same view of the ledger:
	// deciding again for each field of each of up to 10,000 rows would only cost.
	sig, isSignal := r.signalField(ctx)
	if isSignal && sig.Permission != permission {
		isSignal = false // approximateLocation: its own permission, no catalogue signal of that name
	}
	if row, ok := obj.(map[string]any); ok {
		if g, ok := row[rowGrants].(grants); ok && (g.allowed[permission] || (isSignal && g.signal(sig))) {
			return next(ctx)
		}
	}
	vehicle, ok := tokenIDInScope(ctx)
	if row, isRow := obj.(map[string]any); !ok && isRow {
		// A subscription's push is marshalled outside the subscription field's context: its
		// collection names its vehicle.
		vehicle, ok = row[rowVehicle].(uint64)
	}
	if fc := graphql.GetFieldContext(ctx); !ok && fc != nil && fc.Object == "Query" {
		if _, has := fc.Args["tokenId"]; has {
			// A nullable tokenId left out: the query is malformed whoever asks it.
			return nil, codedError(CodeBadRequest, "tokenId (a vehicle id) is required")
		}
	}
	if !ok {
		e := codedError(CodeForbidden, "permission %q needed, and no vehicle is in scope", permission)
		e.Extensions["permission"] = permission
		return nil, e
	}
	check := r.check
	if isSignal {
		check = func(ctx context.Context, vehicle uint64, permission string) (access.Decision, error) {
			var d access.Decision
			var err error
			r.cfg.State(func(st *ledger.State) {
				d, err = access.CheckSignal(st, CallerFrom(ctx), vehicle, sig.Name, permission, r.cfg.Now())
			})
			return d, err
		}
	}
	if _, err := check(ctx, vehicle, permission); err != nil {
		var denied *access.Denied
		if fc := graphql.GetFieldContext(ctx); errors.As(err, &denied) && fc != nil && (fc.Object == "Query" || fc.Object == "Subscription") {
			// A query field refused as a whole (rawRecords): its owner sees the attempt.
			(*queryResolver)(r).recordEntry(ctx, vehicle, grants{}, []string{permission}, time.Time{}, time.Time{}, 0, "forbidden")
		}
		return nil, accessError(err)
	}
	return next(ctx)
}

// perSignal implements @perSignal. On a Query field it decides what the caller may read of the vehicle of
// the field's tokenId (grantsOf, from one view of the ledger) and hands that decision to the field's
// resolver in the context; the resolver reads only the signals the decision allows (decided), and a
// resolver that finds no decision refuses. So a field that lost its directive reads nothing: deny by
// default. The decision's error (not signed in, no such vehicle) is the resolver's to return, after its
// own argument checks, so that a malformed query stays BAD_REQUEST whoever asks it.
//
// On SignalCollection.lastSeen and SignalAggregations.timestamp the directive decides nothing: those
// values are drawn from the signals their query field's decision already filtered, except that a
// SignalCollection whose caller may read nothing of the vehicle answers lastSeen FORBIDDEN rather than
// null, as the listing queries do.
func (r *resolver) perSignal(ctx context.Context, obj any, next graphql.Resolver) (any, error) {
	if fc := graphql.GetFieldContext(ctx); fc == nil || fc.Object != "Query" {
		if row, ok := obj.(map[string]any); ok && row[rowNothing] == true {
			return nil, errNothingReadable()
		}
		return next(ctx)
	}
	if vehicle, ok := tokenIDInScope(ctx); ok {
		ctx = r.decideSignals(ctx, vehicle)
	}
	return next(ctx)
}

// signalDecision is @perSignal's decision for one query field.
type signalDecision struct {
	vehicle uint64
	g       grants
	err     error
}

type signalDecisionKey struct{}

// decideSignals returns ctx carrying the caller's grants on vehicle, decided now. @perSignal calls it; so do
// the executors that stand in for gqlgen's (the fast path, a subscription's push, which decides again at
// every push because a grant may have ended).
func (r *resolver) decideSignals(ctx context.Context, vehicle uint64) context.Context {
	g, err := r.grantsOf(ctx, vehicle)
	return context.WithValue(ctx, signalDecisionKey{}, &signalDecision{vehicle: vehicle, g: g, err: err})
}

// decided returns the grants @perSignal decided on vehicle for the field being resolved. Without a
// decision on that vehicle the field is refused with FORBIDDEN: its schema lost the directive.
func decided(ctx context.Context, vehicle uint64) (grants, error) {
	d, _ := ctx.Value(signalDecisionKey{}).(*signalDecision)
	if d == nil || d.vehicle != vehicle {
		return grants{}, codedError(CodeForbidden, "no per-signal permission was decided for this field (@perSignal): it is refused")
	}
	return d.g, d.err
}

// tokenIDInScope finds the tokenId argument of the nearest enclosing field that has one.
func tokenIDInScope(ctx context.Context) (uint64, bool) {
	for fc := graphql.GetFieldContext(ctx); fc != nil; fc = fc.Parent {
		switch id := fc.Args["tokenId"].(type) {
		case int:
			if id >= 0 {
				return uint64(id), true
			}
		case *int: // a nullable tokenId (DIMO's attestations)
			if id != nil && *id >= 0 {
				return uint64(*id), true
			}
		}
	}
	return 0, false
}

type queryResolver resolver

// value is one latest value the caller may read, under its SignalCollection field name.
type value struct {
	name   string
	kind   telemetry.Kind
	time   time.Time
	number float64
	text   string
	loc    exec.Location
}

// readable returns the latest values of vehicle that the caller may read, by field name. Only the
// signals the caller holds the permission of are read, and only values measured since the current owner
// got the vehicle.
func (q *queryResolver) readable(ctx context.Context, tokenID int, filter *exec.SignalFilter) ([]value, grants, error) {
	return q.readableWith(ctx, tokenID, filter, nil)
}

// readableWith is readable with fresh values (newest per signal name) that may be newer than the stored
// ones: a subscription's, accepted but perhaps not indexed yet.
func (q *queryResolver) readableWith(ctx context.Context, tokenID int, filter *exec.SignalFilter, fresh map[string]telemetry.Value) ([]value, grants, error) {
	if tokenID < 0 {
		return nil, grants{}, codedError(CodeBadRequest, "tokenId %d: vehicle ids are not negative", tokenID)
	}
	source, err := sourceOf(filter)
	if err != nil {
		return nil, grants{}, err
	}
	vehicle := uint64(tokenID)
	g, err := decided(ctx, vehicle)
	if err != nil {
		return nil, grants{}, err
	}
	if !g.any() {
		q.record(ctx, vehicle, g, 0, "forbidden")
		return nil, g, nil
	}
	vs, err := q.latest(ctx, vehicle, g, source, fresh)
	if err != nil {
		return nil, grants{}, err
	}
	q.record(ctx, vehicle, g, len(vs), "ok")
	return vs, g, nil
}

// record appends an access entry when the caller is not the vehicle's owner: the owner sees every read
// of the vehicle's data by anyone else, given or refused.
func (q *queryResolver) record(ctx context.Context, vehicle uint64, g grants, values int, outcome string) {
	var perms []string
	for _, p := range q.perms {
		if g.allowed[p] {
			perms = append(perms, p)
		}
	}
	for _, s := range q.cfg.Catalog.Signals {
		if g.signals[s.Name] {
			perms = append(perms, ledger.SignalPermission(s.Name))
		}
	}
	q.recordEntry(ctx, vehicle, g, perms, g.since, q.cfg.Now(), values, outcome)
}

// recordEntry appends an access entry for the enclosing query field, naming perms and the span [from,
// to) of measurement times the answer drew on, unless the caller owns the vehicle.
func (q *queryResolver) recordEntry(ctx context.Context, vehicle uint64, g grants, perms []string, from, to time.Time, values int, outcome string) {
	if q.cfg.Record == nil || g.owner || CallerFrom(ctx) == (common.Address{}) {
		return
	}
	name := "graphql"
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		name = fc.Field.Name
	}
	if !allowEntry(ctx, vehicle, name, perms, outcome) {
		return
	}
	q.cfg.Record(accesslog.Entry{Time: q.cfg.Now(), Vehicle: vehicle, Caller: CallerFrom(ctx), Query: name, Permissions: perms,
		From: from, To: to, Values: values, Outcome: outcome})
}

// latest reads the latest values of vehicle that g allows (those source signed, if not nil), a value of
// fresh replacing an older stored one.
func (q *queryResolver) latest(ctx context.Context, vehicle uint64, g grants, source *common.Address, fresh map[string]telemetry.Value) ([]value, error) {
	var rows []telemetry.LatestRow
	var err error
	if source != nil {
		rows, err = q.cfg.Telemetry.LatestFrom(ctx, vehicle, *source, g.since.UnixMilli())
	} else {
		rows, err = q.cfg.Telemetry.Latest(ctx, vehicle, g.since.UnixMilli()) // since the current owner got it
	}
	if err != nil {
		return nil, err
	}
	var out []value
	seen := map[string]bool{}
	for _, r := range rows {
		s, ok := q.cfg.Catalog.Lookup(r.Name)
		if !ok {
			continue // a signal dropped from the catalogue
		}
		seen[r.Name] = true
		var v value
		if f, ok := fresh[r.Name]; ok && f.Time > r.Time {
			v = liveValue(f)
		} else if v, err = decode(s, time.UnixMilli(r.Time).UTC(), r.Val); err != nil {
			return nil, fmt.Errorf("vehicle %d, %s: %w", vehicle, r.Name, err)
		}
		out = g.appendAllowed(out, s, v)
	}
	for name, f := range fresh {
		if !seen[name] && f.Signal != nil && f.Time >= g.since.UnixMilli() {
			out = g.appendAllowed(out, f.Signal, liveValue(f))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// appendAllowed appends v, a value of s, to out as far as g allows: as it is, and (for the location) its
// approximation.
func (g grants) appendAllowed(out []value, s *telemetry.Signal, v value) []value {
	precise, approx := g.signal(s), s.Name == telemetry.SignalLocation && g.allowed[ledger.PermLocationApproximate]
	{
		if precise {
			out = append(out, v)
		}
		if approx {
			out = append(out, approximate(v))
		}
	}
	return out
}

// liveValue is a value as a record carried it.
func liveValue(f telemetry.Value) value {
	v := value{name: f.Signal.Name, kind: f.Signal.Kind, time: time.UnixMilli(f.Time).UTC(), number: f.Number, text: f.String}
	if f.Signal.Kind == telemetry.KindLocation {
		v.loc = exec.Location{Latitude: f.Lat, Longitude: f.Lon, Hdop: f.HDOP}
	}
	return v
}

// decode reads a stored value: REAL for numbers and booleans, TEXT for strings, a 24-byte BLOB for
// locations.
func decode(s *telemetry.Signal, at time.Time, raw any) (value, error) {
	v := value{name: s.Name, kind: s.Kind, time: at}
	switch s.Kind {
	case telemetry.KindNumber, telemetry.KindBool:
		switch x := raw.(type) {
		case float64:
			v.number = x
		case int64:
			v.number = float64(x)
		default:
			return value{}, fmt.Errorf("a stored number is a %T", raw)
		}
	case telemetry.KindString, telemetry.KindStrings:
		switch x := raw.(type) {
		case string:
			v.text = x
		case []byte:
			v.text = string(x)
		default:
			return value{}, fmt.Errorf("a stored string is a %T", raw)
		}
	case telemetry.KindLocation:
		b, ok := raw.([]byte)
		if !ok {
			return value{}, fmt.Errorf("a stored location is a %T", raw)
		}
		lat, lon, hdop, err := telemetry.DecodeLocation(b)
		if err != nil {
			return value{}, err
		}
		v.loc = exec.Location{Latitude: lat, Longitude: lon, Hdop: hdop}
	default:
		return value{}, fmt.Errorf("unknown kind %v", s.Kind)
	}
	return v, nil
}

// approximate returns the location v snapped to the centre of its H3 resolution-6 cell, without hdop.
func approximate(v value) value {
	centre := ApproximateLocation(v.loc.Latitude, v.loc.Longitude)
	return value{name: schemagen.ApproximateLocationField, kind: telemetry.KindLocation, time: v.time, loc: centre}
}

// ApproximateLocation returns the centre of the H3 resolution-6 cell containing (lat, lon).
func ApproximateLocation(lat, lon float64) exec.Location {
	c := h3.CellToLatLng(h3.LatLngToCell(h3.NewLatLng(lat, lon), ApproximateResolution))
	return exec.Location{Latitude: c.Lat, Longitude: c.Lng}
}

func lastSeen(vs []value) *time.Time {
	var t time.Time
	for _, v := range vs {
		if v.time.After(t) {
			t = v.time
		}
	}
	if t.IsZero() {
		return nil
	}
	return &t
}

func (q *queryResolver) SignalsLatest(ctx context.Context, tokenID int, filter *exec.SignalFilter) (map[string]any, error) {
	vs, g, err := q.readable(ctx, tokenID, filter)
	if err != nil {
		return nil, err
	}
	out := collection(vs)
	if !g.any() {
		out[rowNothing] = true // lastSeen is FORBIDDEN, not null: see perSignal
	}
	return out, nil
}

// collection is a SignalCollection of vs.
func collection(vs []value) map[string]any {
	out := make(map[string]any, len(vs)+1)
	if t := lastSeen(vs); t != nil {
		out["lastSeen"] = *t
	}
	for _, v := range vs {
		switch v.kind {
		case telemetry.KindNumber, telemetry.KindBool:
			out[v.name] = &exec.SignalFloat{Timestamp: v.time, Value: v.number}
		case telemetry.KindString, telemetry.KindStrings:
			out[v.name] = &exec.SignalString{Timestamp: v.time, Value: v.text}
		case telemetry.KindLocation:
			loc := v.loc
			out[v.name] = &exec.SignalLocation{Timestamp: v.time, Value: &loc}
		}
	}
	return out
}

// errNothingReadable is the answer of the listing queries to a caller who may read nothing of the vehicle.
func errNothingReadable() error {
	e := codedError(CodeForbidden, "permission %q needed: the caller may read no signal of this vehicle", ledger.PermSignals)
	e.Extensions["permission"] = ledger.PermSignals
	return e
}

func (q *queryResolver) AvailableSignals(ctx context.Context, tokenID int, filter *exec.SignalFilter) ([]string, error) {
	vs, g, err := q.readable(ctx, tokenID, filter)
	if err != nil {
		return nil, err
	}
	if !g.any() {
		return nil, errNothingReadable()
	}
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.name)
	}
	return out, nil
}

func (q *queryResolver) SignalsSnapshot(ctx context.Context, tokenID int, filter *exec.SignalFilter) (*exec.SignalsSnapshotResponse, error) {
	vs, g, err := q.readable(ctx, tokenID, filter)
	if err != nil {
		return nil, err
	}
	if !g.any() {
		return nil, errNothingReadable()
	}
	out := &exec.SignalsSnapshotResponse{LastSeen: lastSeen(vs), Signals: make([]exec.LatestSignal, 0, len(vs))}
	for _, v := range vs {
		s := exec.LatestSignal{Name: v.name, Timestamp: v.time}
		switch v.kind {
		case telemetry.KindNumber, telemetry.KindBool:
			s.ValueNumber = &v.number
		case telemetry.KindString, telemetry.KindStrings:
			s.ValueString = &v.text
		case telemetry.KindLocation:
			s.ValueLocation = &v.loc
		}
		out.Signals = append(out.Signals, s)
	}
	return out, nil
}
