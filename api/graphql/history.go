package graphql

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/glovebox/glovebox/api/graphql/internal/exec"
	"github.com/glovebox/glovebox/api/graphql/internal/schemagen"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// The limits of a signals query.
const (
	MinInterval = time.Second
	MaxRange    = 31 * 24 * time.Hour
	MaxBuckets  = 10_000
)

// The keys of a SignalAggregations row that are not response names (those cannot start with NUL).
const (
	rowTimestamp = "\x00timestamp"
	rowGrants    = "\x00grants"
	rowVehicle   = "\x00vehicle" // the vehicle of a subscription's SignalCollection
	rowNothing   = "\x00nothing" // set in a SignalCollection whose caller may read no signal of the vehicle
)

// aggregate implements @aggregate: a SignalAggregations field is read from its row by response name
// (alias), since one signal may be asked several times with different aggregations.
func (r *resolver) aggregate(ctx context.Context, obj any, next graphql.Resolver) (any, error) {
	row, ok := obj.(map[string]any)
	fc := graphql.GetFieldContext(ctx)
	if !ok || fc == nil {
		return next(ctx)
	}
	return row[fc.Field.Alias], nil
}

type signalAggregationsResolver resolver

func (r *resolver) SignalAggregations() exec.SignalAggregationsResolver {
	return (*signalAggregationsResolver)(r)
}

func (*signalAggregationsResolver) Timestamp(_ context.Context, obj map[string]any) (*time.Time, error) {
	t, ok := obj[rowTimestamp].(time.Time)
	if !ok {
		return nil, fmt.Errorf("a SignalAggregations row without its timestamp")
	}
	return &t, nil
}

// wanted is one aggregation asked for: a signal field under a response name.
type wanted struct {
	alias  string
	signal telemetry.Signal // the signal read
	agg    string
	perm   string           // the permission the field requires
	approx bool             // the location field snapped to its H3 cell (currentLocationApproximateCoordinates)
	keep   func(v any) bool // the field's filter argument, nil when it has none
}

// window is the time span of a signals query: buckets of width step aligned to from, and the span
// [lo, hi) of measurement times read (from and to, narrowed to the current owner's era).
type window struct {
	from, to time.Time
	step     time.Duration
	lo, hi   int64 // unix ms
}

// buckets is how many buckets the window has (the last may be cut short by to).
func (w window) buckets() int {
	span := w.to.Sub(w.from)
	n := span / w.step
	if span%w.step != 0 {
		n++
	}
	return int(n)
}

func (w window) bucketStart(b int64) time.Time {
	return w.from.Add(time.Duration(b) * w.step)
}

// parseWindow checks the arguments of a signals query.
func parseWindow(interval string, from, to time.Time) (window, error) {
	step, err := time.ParseDuration(interval)
	if err != nil {
		return window{}, codedError(CodeBadRequest, "interval %q is not a duration such as 5m, 1h or 24h", interval)
	}
	if step < MinInterval {
		return window{}, codedError(CodeBadRequest, "interval %s is shorter than %s", step, MinInterval)
	}
	if step%time.Millisecond != 0 {
		return window{}, codedError(CodeBadRequest, "interval %s is not a whole number of milliseconds", step)
	}
	if !from.Before(to) {
		return window{}, codedError(CodeBadRequest, "from (%s) must be before to (%s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	n := to.Sub(from) / step // no (span + step - 1) / step: a huge step would overflow
	if to.Sub(from)%step != 0 {
		n++
	}
	if n > MaxBuckets {
		return window{}, codedError(CodeBadRequest, "%d intervals of %s between from and to; at most %d are allowed", n, step, MaxBuckets)
	}
	from, to = from.Truncate(time.Millisecond), to.Truncate(time.Millisecond)
	return window{from: from.UTC(), to: to.UTC(), step: step, lo: from.UnixMilli(), hi: to.UnixMilli()}, nil
}

// rolledUp reports whether the roll-ups serve a signals query whole (MaxRange does not apply to it):
// buckets made of whole minutes from a minute boundary, and aggregations the roll-ups hold (of the values
// unfiltered; AVG of a location is a mean of the values).
func rolledUp(w window, ws []wanted) bool {
	if w.step%time.Minute != 0 || w.from.UnixMilli()%time.Minute.Milliseconds() != 0 {
		return false
	}
	for _, x := range ws {
		if x.keep != nil || !slices.Contains([]string{"AVG", "MIN", "MAX", "FIRST", "LAST"}, x.agg) ||
			x.agg == "AVG" && x.signal.Kind == telemetry.KindLocation {
			return false
		}
	}
	return true
}

// wantedFields collects the SignalAggregations fields the query asks for, with their aggregation.
func (q *queryResolver) wantedFields(ctx context.Context) ([]wanted, error) {
	var out []wanted
	var err error
	vars := graphql.GetOperationContext(ctx).Variables
	for _, f := range graphql.CollectFieldsCtx(ctx, nil) {
		if f.Name == "timestamp" || f.Name == "__typename" {
			continue
		}
		name, approx := f.Name, f.Name == schemagen.ApproximateLocationField
		if approx {
			name = telemetry.SignalLocation
		}
		s, ok := q.cfg.Catalog.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("SignalAggregations.%s is no catalogue signal", f.Name)
		}
		args := f.ArgumentMap(vars)
		agg, _ := args["agg"].(string)
		if agg == "" {
			return nil, codedError(CodeBadRequest, "%s needs an aggregation (agg)", f.Alias)
		}
		w := wanted{alias: f.Alias, signal: *s, agg: agg, perm: s.Permission, approx: approx}
		if raw := args["filter"]; raw != nil {
			if w.keep, err = fieldFilter(*s, raw, f.Alias+".filter"); err != nil {
				return nil, err
			}
		}
		if approx {
			w.perm = ledger.PermLocationApproximate
		}
		out = append(out, w)
	}
	return out, nil
}

func (q *queryResolver) Signals(ctx context.Context, tokenID int, interval string, from, to time.Time, filter *exec.SignalFilter) ([]map[string]any, error) {
	t, err := q.signals(ctx, tokenID, interval, from, to, filter, q.wantedFields)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, t.rows)
	for b := range len(t.has) { // no has: no values, no rows
		if !t.has[b] {
			continue
		}
		row := make(map[string]any, len(t.fields)+2)
		row[rowTimestamp], row[rowGrants] = t.w.bucketStart(int64(b)), t.g
		for i, alias := range t.fields {
			if v := t.vals[b*len(t.fields)+i]; v != nil {
				row[alias] = v
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// table is a signals answer: n buckets of the fields asked for (by alias, in the order asked), vals[b*len
// (fields)+i] the value of field i in bucket b or nil, has[b] whether bucket b has any value (rows of them).
type table struct {
	w      window
	g      grants
	fields []string
	n      int
	vals   []any
	has    []bool
	rows   int
}

// signals answers a signals query whose fields wanted returns; both executors (gqlgen's and the fast
// path's) call it, so they check and record alike.
func (q *queryResolver) signals(ctx context.Context, tokenID int, interval string, from, to time.Time, filter *exec.SignalFilter,
	wanted func(context.Context) ([]wanted, error)) (*table, error) {
	if tokenID < 0 {
		return nil, codedError(CodeBadRequest, "tokenId %d: vehicle ids are not negative", tokenID)
	}
	if filter != nil && filter.Source != nil {
		return nil, codedError(CodeBadRequest, "filter.source: signals takes no source (signalsLatest, availableSignals and signalsSnapshot do)")
	}
	w, err := parseWindow(interval, from, to)
	if err != nil {
		return nil, err
	}
	ws, err := wanted(ctx)
	if err != nil {
		return nil, err
	}
	if span := w.to.Sub(w.from); span > MaxRange && !rolledUp(w, ws) {
		return nil, codedError(CodeBadRequest, "from and to are %s apart; at most 31 days are allowed unless interval is a whole "+
			"number of minutes, from is on a minute boundary and every field asks AVG, MIN, MAX, FIRST or LAST without a filter "+
			"(AVG not of a location)", span)
	}
	vehicle := uint64(tokenID)
	g, err := decided(ctx, vehicle)
	if err != nil {
		return nil, err
	}
	var perms []string // the permissions the answer uses
	for _, x := range ws {
		if !slices.Contains(perms, x.perm) {
			perms = append(perms, x.perm)
		}
	}
	w.lo = max(w.lo, g.since.UnixMilli())
	for _, x := range ws {
		if !g.allowed[x.perm] && (x.approx || !g.signal(&x.signal)) {
			q.recordEntry(ctx, vehicle, g, perms, w.bucketStart(0), w.to, 0, "forbidden")
			e := codedError(CodeForbidden, "permission %q needed for a signal asked for", x.perm)
			if !x.approx && x.perm == ledger.PermSignals {
				e = codedError(CodeForbidden, "signal %s: permission %q or %q needed", x.signal.Name, x.perm, ledger.SignalPermission(x.signal.Name))
			}
			e.Extensions["permission"] = x.perm
			if !x.approx {
				e.Extensions["signal"] = x.signal.Name
			}
			return nil, e
		}
	}
	if len(ws) == 0 && !g.any() {
		q.recordEntry(ctx, vehicle, g, nil, w.from, w.to, 0, "forbidden")
		return nil, errNothingReadable()
	}

	t := &table{w: w, g: g, n: w.buckets()}
	for _, x := range ws {
		t.fields = append(t.fields, x.alias)
	}
	values := 0
	if w.lo < w.hi && len(ws) > 0 {
		t.vals, t.has = make([]any, t.n*len(ws)), make([]bool, t.n)
		put := func(b int64, field int, v any) {
			if b < 0 || b >= int64(t.n) {
				return // outside the window: no store puts one
			}
			if !t.has[b] {
				t.has[b] = true
				t.rows++
			}
			t.vals[int(b)*len(ws)+field] = v
			values++
		}
		if err := q.aggregateSignals(ctx, vehicle, w, ws, put); err != nil {
			return nil, err
		}
	}
	q.recordEntry(ctx, vehicle, g, perms, time.UnixMilli(w.lo).UTC(), w.to, values, "ok")
	return t, nil
}

// fieldFilter decodes and checks the filter argument of a field of signal s.
func fieldFilter(s telemetry.Signal, raw any, arg string) (func(any) bool, error) {
	switch s.Kind {
	case telemetry.KindNumber, telemetry.KindBool:
		var f exec.SignalFloatFilter
		if err := parseFilter(raw, &f); err != nil {
			return nil, codedError(CodeBadRequest, "%s: %v", arg, err)
		}
		return floatFilter(&f, arg)
	case telemetry.KindLocation:
		var f exec.SignalLocationFilter
		if err := parseFilter(raw, &f); err != nil {
			return nil, codedError(CodeBadRequest, "%s: %v", arg, err)
		}
		return locationFilter(&f, arg)
	}
	return nil, codedError(CodeBadRequest, "%s: %s takes no filter", arg, s.Name)
}

// signalAggs collects, per signal, the aggregations asked for, so that one store call answers them all.
type signalAggs struct {
	signal telemetry.Signal
	keep   func(any) bool // a field with a filter has a group of its own
	aggs   []string
	fields []wanted
	index  []int // of each field among all the fields asked for
}

// storeAgg is the store's name for a field's aggregation: AVG of a location is the store's MEAN.
func storeAgg(x wanted) string {
	if x.signal.Kind == telemetry.KindLocation && x.agg == "AVG" {
		return telemetry.AggMean
	}
	return x.agg
}

// aggregateSignals computes the wanted aggregations per bucket and hands each to put.
func (q *queryResolver) aggregateSignals(ctx context.Context, vehicle uint64, w window, ws []wanted, put func(b int64, field int, v any)) error {
	var groups []*signalAggs
	for fi, x := range ws {
		if !aggregationApplies(x) {
			return codedError(CodeBadRequest, "%s: aggregation %s does not apply to this signal", x.alias, x.agg)
		}
		i := slices.IndexFunc(groups, func(g *signalAggs) bool { return g.signal.Name == x.signal.Name && g.keep == nil && x.keep == nil })
		if i < 0 {
			groups = append(groups, &signalAggs{signal: x.signal, keep: x.keep})
			i = len(groups) - 1
		}
		g := groups[i]
		if a := storeAgg(x); !slices.Contains(g.aggs, a) {
			g.aggs = append(g.aggs, a)
		}
		g.fields = append(g.fields, x)
		g.index = append(g.index, fi)
	}
	h := q.cfg.Telemetry
	var floats floatSlab
	for _, g := range groups {
		a := telemetry.Aggregation{Vehicle: vehicle, Signal: g.signal.Name, Kind: g.signal.Kind,
			From: w.from.UnixMilli(), Step: w.step.Milliseconds(), Lo: w.lo, Hi: w.hi, Aggs: g.aggs, Keep: g.keep}
		var convErr error
		err := h.Aggregate(ctx, a, func(b int64, agg string, raw any) {
			for j, x := range g.fields {
				if storeAgg(x) != agg {
					continue
				}
				v, err := fieldValue(x, raw, &floats)
				if err != nil {
					convErr = err
					continue
				}
				put(b, g.index[j], v)
			}
		})
		if err == nil {
			err = convErr
		}
		if err != nil {
			return fmt.Errorf("couldn't aggregate %s of vehicle %d: %w", g.signal.Name, vehicle, err)
		}
	}
	return nil
}

// aggregationApplies reports whether a field's aggregation is one its signal's kind has.
func aggregationApplies(x wanted) bool {
	switch x.signal.Kind {
	case telemetry.KindNumber, telemetry.KindBool:
		return slices.Contains([]string{"AVG", "MED", "MAX", "MIN", "RAND", "FIRST", "LAST"}, x.agg)
	case telemetry.KindString, telemetry.KindStrings:
		return slices.Contains([]string{"RAND", "TOP", "UNIQUE", "FIRST", "LAST"}, x.agg)
	case telemetry.KindLocation:
		return slices.Contains([]string{"AVG", "RAND", "FIRST", "LAST"}, x.agg)
	}
	return false
}

// fieldValue turns a stored value into the field's GraphQL value; an approximate location field gets the
// centre of the point's H3 cell.
func fieldValue(x wanted, raw any, floats *floatSlab) (any, error) {
	switch x.signal.Kind {
	case telemetry.KindLocation:
		loc, err := asLocation(raw)
		if err == nil && x.approx {
			loc = ApproximateLocation(loc.Latitude, loc.Longitude)
		}
		return &loc, err
	case telemetry.KindNumber, telemetry.KindBool:
		f, err := telemetry.AsFloat(raw)
		return floats.new(f), err
	}
	s, err := telemetry.AsString(raw)
	return &s, err
}

// floatSlab hands out *float64s from shared arrays: an answer of 10,000 buckets holds tens of thousands
// of them, one allocation each otherwise.
type floatSlab struct{ free []float64 }

func (s *floatSlab) new(f float64) *float64 {
	if len(s.free) == cap(s.free) {
		s.free = make([]float64, 0, 1024) // the filled array lives on through the pointers into it
	}
	s.free = append(s.free, f)
	return &s.free[len(s.free)-1]
}

func asLocation(raw any) (exec.Location, error) {
	switch x := raw.(type) {
	case exec.Location:
		return x, nil
	case []byte:
		lat, lon, hdop, err := telemetry.DecodeLocation(x)
		return exec.Location{Latitude: lat, Longitude: lon, Hdop: hdop}, err
	}
	return exec.Location{}, fmt.Errorf("a stored location is a %T", raw)
}
