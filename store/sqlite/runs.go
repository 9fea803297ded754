package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/glovebox/glovebox/telemetry"
)

// Runs implements telemetry.Reader from the roll-ups: it splits the range into the widest whole units it
// can (outside the signal's stale span), takes a unit whole when all its values are of one class (its
// minimum and maximum are) and it is no wider than MaxGap, opens the others into the units of the level
// below, and reads values only in the minutes it opened, the range's unaligned ends and the stale span.
// One query per level, whatever the number of units.
func (t *Telemetry) Runs(ctx context.Context, q telemetry.RunsQuery) ([]telemetry.Run, error) {
	if q.Lo >= q.Hi {
		return nil, nil
	}
	t.mu.Lock()
	name, ok := t.names[q.Signal]
	t.mu.Unlock()
	if !ok {
		return nil, nil // never measured by anyone
	}
	r := &runsQuery{t: t, q: q, name: name, units: make([][][2]int64, len(RollupWidths))}
	since, until, err := t.history.staleSpan(ctx, q.Vehicle, name)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		r.cover(q.Lo, q.Hi)
	case err != nil:
		return nil, fmt.Errorf("couldn't read the roll-up state of %s: %w", q.Signal, err)
	default:
		r.cover(q.Lo, min(q.Hi, since))
		r.addRaw(max(q.Lo, since), min(q.Hi, until+1))
		r.cover(max(q.Lo, until+1), q.Hi)
	}
	for k := len(RollupWidths) - 1; k >= 0; k-- {
		if err := r.level(ctx, k); err != nil {
			return nil, err
		}
	}
	if err := r.values(ctx); err != nil {
		return nil, err
	}
	slices.SortFunc(r.pieces, func(a, b piece) int { return cmpInt64(a.t0, b.t0) })
	var out []telemetry.Run
	var cls float64
	for _, p := range r.pieces {
		if n := len(out); n > 0 && p.cls == cls && (q.MaxGap == 0 || p.t0-out[n-1].End <= q.MaxGap) {
			out[n-1].End, out[n-1].Last, out[n-1].Count = p.t1, p.v1, out[n-1].Count+p.n
			continue
		}
		out = append(out, telemetry.Run{Start: p.t0, End: p.t1, First: p.v0, Last: p.v1, Count: p.n})
		cls = p.cls
	}
	return out, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// piece is a whole roll-up unit of one class, or one value.
type piece struct {
	t0, t1 int64
	v0, v1 float64
	n      int64
	cls    float64
}

type runsQuery struct {
	t      *Telemetry
	q      telemetry.RunsQuery
	name   int64
	units  [][][2]int64 // per level, ranges of units to read
	raw    [][2]int64   // ranges of times to read the values of
	pieces []piece
}

func (r *runsQuery) class(v float64) float64 {
	if r.q.Cuts == nil {
		return v
	}
	return float64(r.q.Class(v))
}

func (r *runsQuery) addUnits(k int, lo, hi int64) {
	if n := len(r.units[k]); n > 0 && r.units[k][n-1][1] == lo {
		r.units[k][n-1][1] = hi
		return
	}
	r.units[k] = append(r.units[k], [2]int64{lo, hi})
}

func (r *runsQuery) addRaw(lo, hi int64) {
	if lo >= hi {
		return
	}
	if n := len(r.raw); n > 0 && r.raw[n-1][1] == lo {
		r.raw[n-1][1] = hi
		return
	}
	r.raw = append(r.raw, [2]int64{lo, hi})
}

// cover splits [lo, hi) into the widest whole units that fit, and values at the unaligned ends.
func (r *runsQuery) cover(lo, hi int64) {
	for pos := lo; pos < hi; {
		k := -1
		for j := len(RollupWidths) - 1; j >= 0; j-- {
			if w := RollupWidths[j]; floorTo(pos, w) == pos && pos+w <= hi {
				k = j
				break
			}
		}
		if k < 0 {
			next := min(hi, floorTo(pos, RollupWidths[0])+RollupWidths[0])
			r.addRaw(pos, next)
			pos = next
			continue
		}
		w := RollupWidths[k]
		r.addUnits(k, pos/w, pos/w+1)
		pos += w
	}
}

// level reads the units of level k to read: a unit of one class no wider than MaxGap is a piece, any
// other is opened into the level below (or, for minutes, its values).
func (r *runsQuery) level(ctx context.Context, k int) error {
	if len(r.units[k]) == 0 {
		return nil
	}
	w := RollupWidths[k]
	whole := r.q.MaxGap == 0 || w <= r.q.MaxGap
	keys := make([][5]int64, len(r.units[k]))
	for i, u := range r.units[k] {
		keys[i] = [5]int64{int64(r.q.Vehicle), r.name, int64(k), u[0], u[1]}
	}
	rows, err := r.t.readQuery(ctx, rollupRanges, jsonText(keys))
	if err != nil {
		return fmt.Errorf("couldn't read the roll-ups of %s: %w", r.q.Signal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var unit, n, ft, lt int64
		var lo, hi, fv, lv, total any
		if err := rows.Scan(&unit, &n, &lo, &hi, &ft, &fv, &lt, &lv, &total); err != nil {
			return fmt.Errorf("couldn't read the roll-ups of %s: %w", r.q.Signal, err)
		}
		if c := r.class(asNumber(lo)); whole && c == r.class(asNumber(hi)) {
			r.pieces = append(r.pieces, piece{t0: ft, t1: lt, v0: asNumber(fv), v1: asNumber(lv), n: n, cls: c})
			continue
		}
		if k == 0 {
			r.addRaw(unit*w, (unit+1)*w)
			continue
		}
		f := w / RollupWidths[k-1]
		r.addUnits(k-1, unit*f, (unit+1)*f)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't read the roll-ups of %s: %w", r.q.Signal, err)
	}
	slices.SortFunc(r.units[max(k-1, 0)], func(a, b [2]int64) int { return cmpInt64(a[0], b[0]) })
	return nil
}

// values reads the values of the raw ranges, one piece each.
func (r *runsQuery) values(ctx context.Context) error {
	if len(r.raw) == 0 {
		return nil
	}
	keys := make([][4]int64, len(r.raw))
	for i, u := range r.raw {
		keys[i] = [4]int64{int64(r.q.Vehicle), r.name, u[0], u[1]}
	}
	rows, err := r.t.readQuery(ctx, valueRanges, jsonText(keys))
	if err != nil {
		return fmt.Errorf("couldn't read %s of vehicle %d: %w", r.q.Signal, r.q.Vehicle, err)
	}
	defer rows.Close()
	for rows.Next() {
		var tm int64
		var v any
		if err := rows.Scan(&tm, &v); err != nil {
			return fmt.Errorf("couldn't read %s of vehicle %d: %w", r.q.Signal, r.q.Vehicle, err)
		}
		f := asNumber(v)
		r.pieces = append(r.pieces, piece{t0: tm, t1: tm, v0: f, v1: f, n: 1, cls: r.class(f)})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't read %s of vehicle %d: %w", r.q.Signal, r.q.Vehicle, err)
	}
	return nil
}

// readQuery runs a read query on the signals database, prepared once.
func (t *Telemetry) readQuery(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := t.history.stmts.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// Queries over lists of ranges, each a JSON array element: every value a query compares with a key column
// comes from the JSON and none is a bound parameter, because SQLite (built with STAT4) prepares a
// statement again whenever a parameter compared with an indexed column is bound to a new value.
const (
	// [vehicle, name, level, first unit, end unit]
	rollupRanges = `SELECT r.unit, r.cnt, r.lo, r.hi, r.ft, r.fv, r.lt, r.lv, r.total FROM json_each(?) j CROSS JOIN rollup r
WHERE r.vehicle = j.value ->> 0 AND r.name = j.value ->> 1 AND r.level = j.value ->> 2 AND r.unit >= j.value ->> 3 AND r.unit < j.value ->> 4`
	// [vehicle, name, from, to]
	valueRanges = `SELECT s.time, s.val FROM json_each(?) j CROSS JOIN signals s
WHERE s.vehicle = j.value ->> 0 AND s.name = j.value ->> 1 AND s.time >= j.value ->> 2 AND s.time < j.value ->> 3`
	// [vehicle, name]
	staleOf = `SELECT s.since, s.until FROM json_each(?) j CROSS JOIN stale s WHERE s.vehicle = j.value ->> 0 AND s.name = j.value ->> 1`
)

// jsonText encodes v (numbers) as JSON text.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// staleSpan returns the span of vehicle's signal name indexed since the last roll (sql.ErrNoRows if none).
func (h *History) staleSpan(ctx context.Context, vehicle uint64, name int64) (since, until int64, err error) {
	key := [2]int64{int64(vehicle), name}
	var gen uint64
	if h.gen != nil {
		gen = h.gen.Load() // before the read: a change after it makes the entry old
		h.staleMu.Lock()
		e, ok := h.stales[key]
		h.staleMu.Unlock()
		if ok && e.gen == gen {
			if !e.ok {
				return 0, 0, sql.ErrNoRows
			}
			return e.since, e.until, nil
		}
	}
	err = h.queryRow(ctx, staleOf, jsonText([][2]int64{key})).Scan(&since, &until)
	if h.gen != nil && (err == nil || errors.Is(err, sql.ErrNoRows)) {
		h.staleMu.Lock()
		if h.stales == nil || len(h.stales) > 100_000 {
			h.stales = map[[2]int64]staleEntry{}
		}
		h.stales[key] = staleEntry{gen: gen, since: since, until: until, ok: err == nil}
		h.staleMu.Unlock()
	}
	return since, until, err
}
