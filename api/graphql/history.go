package graphql

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
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
	perm   string // the permission the field requires
	approx bool   // the location field snapped to its H3 cell (currentLocationApproximateCoordinates)
}

// window is the time span of a signals query: buckets of width step aligned to from, and the span
// [lo, hi) of measurement times read (from and to, narrowed to the current owner's era).
type window struct {
	from, to time.Time
	step     time.Duration
	lo, hi   int64 // unix ms
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
	if span := to.Sub(from); span > MaxRange {
		return window{}, codedError(CodeBadRequest, "from and to are %s apart; at most 31 days are allowed", span)
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

// wantedFields collects the SignalAggregations fields the query asks for, with their aggregation.
func (q *queryResolver) wantedFields(ctx context.Context) ([]wanted, error) {
	var out []wanted
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
		agg, _ := f.ArgumentMap(vars)["agg"].(string)
		if agg == "" {
			return nil, codedError(CodeBadRequest, "%s needs an aggregation (agg)", f.Alias)
		}
		w := wanted{alias: f.Alias, signal: *s, agg: agg, perm: s.Permission, approx: approx}
		if approx {
			w.perm = ledger.PermLocationApproximate
		}
		out = append(out, w)
	}
	return out, nil
}

func (q *queryResolver) Signals(ctx context.Context, tokenID int, interval string, from, to time.Time, filter *exec.SignalFilter) ([]map[string]any, error) {
	if tokenID < 0 {
		return nil, codedError(CodeBadRequest, "tokenId %d: vehicle ids are not negative", tokenID)
	}
	if filter != nil && filter.Source != nil {
		return nil, codedError(CodeBadRequest, "filter.source is not supported yet")
	}
	w, err := parseWindow(interval, from, to)
	if err != nil {
		return nil, err
	}
	ws, err := q.wantedFields(ctx)
	if err != nil {
		return nil, err
	}
	vehicle := uint64(tokenID)
	g, err := (*resolver)(q).grantsOf(ctx, vehicle)
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
	for _, p := range perms {
		if !g.allowed[p] {
			q.recordEntry(ctx, vehicle, g, perms, w.bucketStart(0), w.to, 0, "forbidden")
			e := codedError(CodeForbidden, "permission %q needed for a signal asked for", p)
			e.Extensions["permission"] = p
			return nil, e
		}
	}
	if len(ws) == 0 && !g.any() {
		q.recordEntry(ctx, vehicle, g, nil, w.from, w.to, 0, "forbidden")
		return nil, errNothingReadable()
	}

	rows := map[int64]map[string]any{}
	values := 0
	put := func(b int64, alias string, v any) {
		row := rows[b]
		if row == nil {
			row = map[string]any{rowTimestamp: w.bucketStart(b), rowGrants: g}
			rows[b] = row
		}
		row[alias] = v
		values++
	}
	if w.lo < w.hi {
		stats := statsCache{} // MIN, MAX and AVG of one signal come from one grouped query
		for _, x := range ws {
			if err := q.aggregateSignal(ctx, vehicle, w, x, stats, put); err != nil {
				return nil, err
			}
		}
	}
	bs := make([]int64, 0, len(rows))
	for b := range rows {
		bs = append(bs, b)
	}
	slices.Sort(bs)
	out := make([]map[string]any, len(bs))
	for i, b := range bs {
		out[i] = rows[b]
	}
	q.recordEntry(ctx, vehicle, g, perms, time.UnixMilli(w.lo).UTC(), w.to, values, "ok")
	return out, nil
}

// The SQL of the aggregations; every query binds from, step (ms), vehicle, signal name, lo and hi.
const (
	bucketExpr   = `(s.time - ?) / ?`
	signalFilter = `s.vehicle = ? AND s.name = (SELECT id FROM names WHERE name = ?) AND s.time >= ? AND s.time < ?`
	// statsSQL reads the minimum, maximum and mean of each bucket.
	statsSQL = `SELECT ` + bucketExpr + ` AS b, MIN(s.val), MAX(s.val), AVG(s.val) FROM signals s WHERE ` + signalFilter + ` GROUP BY b`
	// edgeSQL reads the value of the first (MIN) or last (MAX) measurement of each bucket.
	edgeSQL = `SELECT e.b, s.val FROM (SELECT ` + bucketExpr + ` AS b, %s(s.time) AS t FROM signals s WHERE ` + signalFilter +
		` GROUP BY b) e JOIN signals s ON s.vehicle = ? AND s.name = (SELECT id FROM names WHERE name = ?) AND s.time = e.t`
	// countsSQL reads the distinct values of each bucket with how often each occurs.
	countsSQL = `SELECT ` + bucketExpr + ` AS b, s.val, COUNT(*) FROM signals s WHERE ` + signalFilter + ` GROUP BY b, s.val ORDER BY b, s.val`
	// rawSQL reads every value in time order, for MED and RAND, which need the values of a bucket.
	rawSQL = `SELECT ` + bucketExpr + ` AS b, s.val FROM signals s WHERE ` + signalFilter + ` ORDER BY s.time`
)

// statsCache holds, per signal, the MIN, MAX and AVG of each bucket read by statsSQL within one request.
type statsCache map[string]map[int64][3]any

// aggregateSignal computes one aggregation of one signal per bucket and hands each to put.
func (q *queryResolver) aggregateSignal(ctx context.Context, vehicle uint64, w window, x wanted, stats statsCache, put func(int64, string, any)) error {
	stepMS := w.step.Milliseconds()
	args := []any{w.from.UnixMilli(), stepMS, vehicle, x.signal.Name, w.lo, w.hi}
	numeric := x.signal.Kind == telemetry.KindNumber || x.signal.Kind == telemetry.KindBool
	query := func(sqlText string, args []any, ncols int, each func(b int64, vals []any) error) error {
		rows, err := q.cfg.Signals.QueryContext(ctx, q.rebind(sqlText, x.signal.Kind), args...)
		if err != nil {
			return fmt.Errorf("couldn't aggregate %s of vehicle %d: %w", x.signal.Name, vehicle, err)
		}
		defer rows.Close()
		for rows.Next() {
			var b int64
			vals := make([]any, ncols)
			dest := []any{&b}
			for i := range vals {
				dest = append(dest, &vals[i])
			}
			if err := rows.Scan(dest...); err != nil {
				return fmt.Errorf("couldn't aggregate %s of vehicle %d: %w", x.signal.Name, vehicle, err)
			}
			if err := each(b, vals); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("couldn't aggregate %s of vehicle %d: %w", x.signal.Name, vehicle, err)
		}
		return nil
	}
	value := func(raw any) (any, error) {
		if x.signal.Kind == telemetry.KindLocation {
			loc, err := asLocation(raw)
			if err == nil && x.approx {
				loc = ApproximateLocation(loc.Latitude, loc.Longitude)
			}
			return &loc, err
		}
		if numeric {
			f, err := asFloat(raw)
			return &f, err
		}
		s, err := asString(raw)
		return &s, err
	}
	agg := x.agg
	if x.signal.Kind == telemetry.KindLocation && agg == "AVG" {
		agg = "MEAN" // of the raw rows: the stored locations are blobs
	}
	switch agg {
	case "AVG", "MIN", "MAX":
		col := map[string]int{"MIN": 0, "MAX": 1, "AVG": 2}[x.agg]
		buckets, ok := stats[x.signal.Name]
		if !ok {
			buckets = map[int64][3]any{}
			if err := query(statsSQL, args, 3, func(b int64, vals []any) error {
				buckets[b] = [3]any{vals[0], vals[1], vals[2]}
				return nil
			}); err != nil {
				return err
			}
			stats[x.signal.Name] = buckets
		}
		for b, vals := range buckets {
			v, err := value(vals[col])
			if err != nil {
				return err
			}
			put(b, x.alias, v)
		}
		return nil
	case "FIRST", "LAST":
		fn := map[string]string{"FIRST": "MIN", "LAST": "MAX"}[x.agg]
		return query(fmt.Sprintf(edgeSQL, fn), append(args, vehicle, x.signal.Name), 1, func(b int64, vals []any) error {
			v, err := value(vals[0])
			if err == nil {
				put(b, x.alias, v)
			}
			return err
		})
	case "TOP", "UNIQUE":
		var cur int64 = -1
		var distinct []string
		var top string
		var topN int64
		flush := func() {
			if cur < 0 {
				return
			}
			if x.agg == "TOP" {
				s := top
				put(cur, x.alias, &s)
			} else {
				j, _ := json.Marshal(distinct)
				s := string(j)
				put(cur, x.alias, &s)
			}
		}
		err := query(countsSQL, args, 2, func(b int64, vals []any) error {
			s, err := asString(vals[0])
			if err != nil {
				return err
			}
			n, _ := vals[1].(int64)
			if b != cur {
				flush()
				cur, distinct, top, topN = b, nil, "", 0
			}
			distinct = append(distinct, s) // ORDER BY b, val: sorted
			if n > topN {                  // ties keep the smaller value, met first
				top, topN = s, n
			}
			return nil
		})
		if err == nil {
			flush()
		}
		return err
	case "MED", "RAND", "MEAN":
		var cur int64 = -1
		var bucket []any
		flush := func() error {
			if cur < 0 || len(bucket) == 0 {
				return nil
			}
			var pick any
			switch agg {
			case "RAND":
				pick = bucket[randIndex(vehicle, x.signal.Name, w.bucketStart(cur), len(bucket))]
			case "MED":
				pick = median(bucket)
			default:
				var err error
				if pick, err = meanLocation(bucket); err != nil {
					return err
				}
			}
			v, err := value(pick)
			if err == nil {
				put(cur, x.alias, v)
			}
			return err
		}
		err := query(rawSQL, args, 1, func(b int64, vals []any) error {
			if b != cur {
				if err := flush(); err != nil {
					return err
				}
				cur, bucket = b, bucket[:0]
			}
			bucket = append(bucket, vals[0])
			return nil
		})
		if err == nil {
			err = flush()
		}
		return err
	}
	return codedError(CodeBadRequest, "%s: aggregation %s does not apply to this signal", x.alias, x.agg)
}

// randIndex picks one of n values of a bucket by a hash of the vehicle, the signal and the bucket's start,
// so that the same data gives the same answer.
func randIndex(vehicle uint64, signal string, start time.Time, n int) int {
	h := fnv.New64a()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], vehicle)
	binary.BigEndian.PutUint64(b[8:], uint64(start.UnixMilli()))
	h.Write(b[:])
	h.Write([]byte(signal))
	return int(h.Sum64() % uint64(n))
}

// median returns the middle value of numbers (the mean of the two middle ones for an even count).
func median(vals []any) any {
	fs := make([]float64, 0, len(vals))
	for _, v := range vals {
		f, err := asFloat(v)
		if err != nil {
			return v // not a number: left to value() to refuse
		}
		fs = append(fs, f)
	}
	sort.Float64s(fs)
	m := len(fs) / 2
	if len(fs)%2 == 1 {
		return fs[m]
	}
	return (fs[m-1] + fs[m]) / 2
}

// meanLocation is the mean of the latitudes, longitudes and hdops of stored locations.
func meanLocation(vals []any) (exec.Location, error) {
	var m exec.Location
	for _, v := range vals {
		loc, err := asLocation(v)
		if err != nil {
			return exec.Location{}, err
		}
		m.Latitude += loc.Latitude
		m.Longitude += loc.Longitude
		m.Hdop += loc.Hdop
	}
	n := float64(len(vals))
	return exec.Location{Latitude: m.Latitude / n, Longitude: m.Longitude / n, Hdop: m.Hdop / n}, nil
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

func asFloat(raw any) (float64, error) {
	switch x := raw.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("a stored number is a %T", raw)
}

func asString(raw any) (string, error) {
	switch x := raw.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	}
	return "", fmt.Errorf("a stored string is a %T", raw)
}
