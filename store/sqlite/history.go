package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/glovebox/glovebox/telemetry"
)

// History answers history (bucketed aggregation) queries from a signals database; it is a
// telemetry.History.
type History struct {
	db    *sql.DB
	names sync.Map // signal name → its id (a name, once stored, keeps its id)
	stmts stmtCache
	// gen, when set (a Telemetry's), changes after every commit that changes the stale table; the stale
	// spans read at a generation are remembered until it changes.
	gen     *atomic.Uint64
	staleMu sync.Mutex
	stales  map[[2]int64]staleEntry
}

type staleEntry struct {
	gen          uint64
	since, until int64
	ok           bool
}

// NewHistory returns a History over the derived signals database (Telemetry.SignalsDB).
func NewHistory(db *sql.DB) *History { return &History{db: db, stmts: stmtCache{db: db}} }

// queryRow runs a query that returns one row, prepared once.
func (h *History) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := h.stmts.stmt(ctx, q)
	if err != nil {
		return h.db.QueryRowContext(ctx, q, args...) // reports the error
	}
	return st.QueryRowContext(ctx, args...)
}

// Aggregate implements telemetry.History.
func (h *History) Aggregate(ctx context.Context, a telemetry.Aggregation, put func(b int64, agg string, v any)) error {
	if a.Step <= 0 || a.Lo >= a.Hi {
		return nil
	}
	name, ok, err := h.nameID(ctx, a.Signal)
	if !ok || err != nil {
		return err // !ok: never measured by anyone
	}
	q := &aggQuery{h: h, a: a, name: name}
	if a.Keep != nil {
		return telemetry.FoldHistory(a, q.scan(ctx), put)
	}
	numeric := a.Kind == telemetry.KindNumber || a.Kind == telemetry.KindBool
	if numeric { // SQLite keeps a whole REAL in an ANY column as an INTEGER; numbers come out as float64
		inner := put
		put = func(b int64, agg string, v any) {
			if i, ok := v.(int64); ok {
				v = float64(i)
			}
			inner(b, agg, v)
		}
	}
	stats, first, last, err := aggKinds(a, numeric, false)
	if err != nil {
		return err
	}
	if stats || first || last {
		parts := map[int64]*partial{}
		part := func(b int64) *partial {
			p := parts[b]
			if p == nil {
				p = &partial{}
				parts[b] = p
			}
			return p
		}
		var segs []segment
		var err error
		if !a.NoRollup && a.Lo >= a.From && a.Hi <= a.From+a.Step {
			err = q.oneBucket(ctx, stats, first, last, part(0))
			if parts[0].n == 0 && !parts[0].hasFirst && !parts[0].hasLast {
				delete(parts, 0)
			}
		} else {
			segs, err = q.segments(ctx)
		}
		if err != nil {
			return err
		}
		for _, s := range segs {
			if s.level >= 0 {
				if err := q.rolled(ctx, s, part); err != nil {
					return err
				}
				continue
			}
			if stats {
				if err := q.stats(ctx, s, part); err != nil {
					return err
				}
			}
			if first {
				if err := q.edge(ctx, s, false, part); err != nil {
					return err
				}
			}
			if last {
				if err := q.edge(ctx, s, true, part); err != nil {
					return err
				}
			}
		}
		for b, p := range parts {
			p.put(a.Aggs, func(agg string, v any) { put(b, agg, v) })
		}
	}
	for _, agg := range a.Aggs {
		var err error
		switch agg {
		case telemetry.AggAvg, telemetry.AggMin, telemetry.AggMax, telemetry.AggCount, telemetry.AggFirst, telemetry.AggLast:
			continue
		case telemetry.AggTop, telemetry.AggUnique:
			if a.Kind != telemetry.KindString && a.Kind != telemetry.KindStrings {
				return fmt.Errorf("%s does not apply to %s", agg, a.Signal)
			}
			err = q.counts(ctx, agg, put)
		case telemetry.AggMedian:
			if !numeric {
				return fmt.Errorf("%s does not apply to %s", agg, a.Signal)
			}
			err = q.values(ctx, agg, put)
		case telemetry.AggMean:
			if a.Kind != telemetry.KindLocation {
				return fmt.Errorf("%s does not apply to %s", agg, a.Signal)
			}
			err = q.values(ctx, agg, put)
		case telemetry.AggRand:
			err = q.values(ctx, agg, put)
		default:
			return fmt.Errorf("no aggregation %q", agg)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// nameID returns the id of signal, false if no one ever measured it.
func (h *History) nameID(ctx context.Context, signal string) (int64, bool, error) {
	if id, ok := h.names.Load(signal); ok {
		return id.(int64), true, nil
	}
	var name int64
	err := h.queryRow(ctx, `SELECT id FROM names WHERE name = ?`, signal).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("couldn't look up signal %s: %w", signal, err)
	}
	h.names.Store(signal, name)
	return name, true, nil
}

// AggregateSpans implements telemetry.SpanAggregator: the roll-ups and values of every span in one query
// (spanBuckets).
func (h *History) AggregateSpans(ctx context.Context, a telemetry.Aggregation, spans []telemetry.Span, put func(i int, agg string, v any)) error {
	name, ok, err := h.nameID(ctx, a.Signal)
	if !ok || err != nil || len(spans) == 0 {
		return err
	}
	numeric := a.Kind == telemetry.KindNumber || a.Kind == telemetry.KindBool
	stats, first, last, err := aggKinds(a, numeric, true)
	if err != nil {
		return err
	}
	// one bucket from 0 as wide as can be: a stale segment's rows all fall in bucket 0 of its span
	a.From, a.Step = 0, math.MaxInt64
	q := &aggQuery{h: h, a: a, name: name}
	ps := make([]*partial, len(spans))
	var valid []telemetry.Span
	var idx []int
	for i, s := range spans {
		ps[i] = &partial{}
		if s.Start < s.End {
			valid, idx = append(valid, s), append(idx, i)
		}
	}
	vps := make([]*partial, len(idx))
	for j, i := range idx {
		vps[j] = ps[i]
	}
	if err := q.spanBuckets(ctx, valid, stats, first, last, vps); err != nil {
		return err
	}
	for i, p := range ps {
		if numeric {
			p.put(a.Aggs, func(agg string, v any) {
				if n, ok := v.(int64); ok { // SQLite keeps a whole REAL in an ANY column as an INTEGER
					v = float64(n)
				}
				put(i, agg, v)
			})
			continue
		}
		p.put(a.Aggs, func(agg string, v any) { put(i, agg, v) })
	}
	return nil
}

// put hands over the aggregations of a bucket that has them.
func (p *partial) put(aggs []string, put func(agg string, v any)) {
	for _, agg := range aggs {
		switch agg {
		case telemetry.AggCount:
			if p.n > 0 {
				put(agg, float64(p.n))
			}
		case telemetry.AggAvg:
			if p.n > 0 {
				put(agg, p.sum/float64(p.n))
			}
		case telemetry.AggMin:
			if p.n > 0 {
				put(agg, p.flo)
			}
		case telemetry.AggMax:
			if p.n > 0 {
				put(agg, p.fhi)
			}
		case telemetry.AggFirst:
			if p.hasFirst {
				put(agg, p.first())
			}
		case telemetry.AggLast:
			if p.hasLast {
				put(agg, p.last())
			}
		}
	}
}

// partial is what the segments of one bucket contributed so far.
type partial struct {
	n                 int64
	sum               float64
	flo, fhi          float64 // minimum and maximum (numbers)
	ft, lt            int64
	fv, lv            any // first and last value; nil for a number, which is in ffv or flv
	ffv, flv          float64
	hasFirst, hasLast bool
}

func (p *partial) first() any {
	if p.fv == nil {
		return p.ffv
	}
	return p.fv
}

func (p *partial) last() any {
	if p.lv == nil {
		return p.flv
	}
	return p.lv
}

// segment is a span [lo, hi) of measurement times read either from the roll-ups of one level (whole
// units only) or, when level < 0, from the values.
type segment struct {
	lo, hi int64
	level  int
}

type aggQuery struct {
	h    *History
	a    telemetry.Aggregation
	name int64
}

func floorTo(x, w int64) int64 {
	q := x / w
	if x%w != 0 && x < 0 {
		q--
	}
	return q * w
}

// segments splits [Lo, Hi) into what the roll-ups can answer — runs of whole units, outside the stale
// span, of the widest level whose units the buckets are made of and, at the range's unaligned ends, of
// the finer levels — and what must be read from the values: less than a minute at each end, and the
// stale span (whole minutes: Roll recomputes every unit that overlaps it, at every level, so a unit
// outside it is current).
func (q *aggQuery) segments(ctx context.Context) ([]segment, error) {
	a := q.a
	level := -1
	if !a.NoRollup {
		for k, w := range RollupWidths {
			if a.Step%w == 0 && floorTo(a.From, w) == a.From {
				level = k
			}
		}
	}
	if level < 0 {
		return []segment{{a.Lo, a.Hi, -1}}, nil
	}
	var since, until int64
	err := q.h.queryRow(ctx, `SELECT since, until FROM stale WHERE vehicle = ? AND name = ?`, a.Vehicle, q.name).Scan(&since, &until)
	stale := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("couldn't read the roll-up state of %s: %w", a.Signal, err)
	}
	var segs []segment
	if !stale {
		return coverUnits(segs, a.Lo, a.Hi, level), nil
	}
	w0 := RollupWidths[0]
	s, u := floorTo(since, w0), floorTo(until, w0)+w0
	segs = coverUnits(segs, a.Lo, min(a.Hi, s), level)
	if lo, hi := max(a.Lo, s), min(a.Hi, u); lo < hi {
		segs = append(segs, segment{lo, hi, -1})
	}
	return coverUnits(segs, max(a.Lo, u), a.Hi, level), nil
}

// coverUnits appends to segs the segments that cover [lo, hi) with the widest whole units of the levels
// up to top that fit, consecutive units of one level in one segment, and what no minute covers as
// values. A unit of a level up to top never straddles two buckets: its width divides top's, which
// divides the step.
func coverUnits(segs []segment, lo, hi int64, top int) []segment {
	add := func(lo, hi int64, level int) {
		if n := len(segs); n > 0 && segs[n-1].level == level && segs[n-1].hi == lo {
			segs[n-1].hi = hi
			return
		}
		segs = append(segs, segment{lo, hi, level})
	}
	for pos := lo; pos < hi; {
		k := -1
		for j := top; j >= 0; j-- {
			if w := RollupWidths[j]; floorTo(pos, w) == pos && pos+w <= hi {
				k = j
				break
			}
		}
		if k < 0 {
			next := min(hi, floorTo(pos, RollupWidths[0])+RollupWidths[0])
			add(pos, next, -1)
			pos = next
			continue
		}
		w := RollupWidths[k]
		n := (floorTo(hi, w) - pos) / w // the run of whole units of level k from pos
		if k < top {
			// a finer level covers only up to the next unit of the level above it
			n = min(n, (floorTo(pos, RollupWidths[k+1])+RollupWidths[k+1]-pos)/w)
		}
		add(pos, pos+n*w, k)
		pos += n * w
	}
	return segs
}

// The SQL of the segment queries; each binds From, Step, vehicle, name, and the segment's bounds (in ms
// for values, in units for roll-ups).
const (
	valuesWhere = `FROM signals WHERE vehicle = ? AND name = ? AND time >= ? AND time < ?`
	rollupWhere = `FROM rollup WHERE vehicle = ? AND name = ? AND level = %d AND unit >= ? AND unit < ?`
)

func (q *aggQuery) segmentArgs(s segment) []any {
	if s.level < 0 {
		return []any{q.a.From, q.a.Step, q.a.Vehicle, q.name, s.lo, s.hi}
	}
	w := RollupWidths[s.level]
	return []any{q.a.From, q.a.Step, q.a.Vehicle, q.name, s.lo / w, s.hi / w}
}

func (q *aggQuery) bucketExpr(s segment) string {
	if s.level < 0 {
		return `(time - ?) / ?`
	}
	return fmt.Sprintf(`(unit * %d - ?) / ?`, RollupWidths[s.level])
}

func (q *aggQuery) where(s segment) string {
	if s.level < 0 {
		return valuesWhere
	}
	return fmt.Sprintf(rollupWhere, s.level)
}

func (q *aggQuery) query(ctx context.Context, sqlText string, args []any, each func(rows *sql.Rows) error) error {
	st, err := q.h.stmts.stmt(ctx, sqlText)
	if err != nil {
		return fmt.Errorf("couldn't aggregate %s of vehicle %d: %w", q.a.Signal, q.a.Vehicle, err)
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("couldn't aggregate %s of vehicle %d: %w", q.a.Signal, q.a.Vehicle, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return fmt.Errorf("couldn't aggregate %s of vehicle %d: %w", q.a.Signal, q.a.Vehicle, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't aggregate %s of vehicle %d: %w", q.a.Signal, q.a.Vehicle, err)
	}
	return nil
}

// stats adds a segment's count, sum, minimum and maximum per bucket.
func (q *aggQuery) stats(ctx context.Context, s segment, part func(int64) *partial) error {
	cols := `COUNT(*), SUM(val), MIN(val), MAX(val)`
	if s.level >= 0 {
		cols = `SUM(cnt), SUM(total), MIN(lo), MAX(hi)`
	}
	sqlText := `SELECT ` + q.bucketExpr(s) + ` AS b, ` + cols + ` ` + q.where(s) + ` GROUP BY b`
	return q.query(ctx, sqlText, q.segmentArgs(s), func(rows *sql.Rows) error {
		var b, n int64
		var sum sql.NullFloat64
		var lo, hi any
		if err := rows.Scan(&b, &n, &sum, &lo, &hi); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		fl, err := telemetry.AsFloat(lo)
		if err != nil {
			return err
		}
		fh, err := telemetry.AsFloat(hi)
		if err != nil {
			return err
		}
		p := part(b)
		if p.n == 0 {
			p.flo, p.fhi = fl, fh
		} else {
			p.flo, p.fhi = min(p.flo, fl), max(p.fhi, fh)
		}
		p.n += n
		p.sum += sum.Float64
		return nil
	})
}

// rolled adds a roll-up segment's count, sum, minimum, maximum, first and last value per bucket, read in
// one pass over its units in order (numbers scanned as numbers: no value is boxed per row).
func (q *aggQuery) rolled(ctx context.Context, s segment, part func(int64) *partial) error {
	w := RollupWidths[s.level]
	sqlText := fmt.Sprintf(`SELECT unit, cnt, total, lo, hi, ft, fv, lt, lv FROM rollup WHERE vehicle = ? AND name = ? AND level = %d AND unit >= ? AND unit < ? ORDER BY unit`, s.level)
	numeric := q.a.Kind == telemetry.KindNumber || q.a.Kind == telemetry.KindBool
	var cur int64 = -1
	var p *partial
	// Scanned into interfaces, which database/sql fills without conversion; numbers are read below.
	var cols [9]any
	dest := make([]any, len(cols))
	for i := range cols {
		dest[i] = &cols[i]
	}
	return q.query(ctx, sqlText, []any{q.a.Vehicle, q.name, s.lo / w, s.hi / w}, func(rows *sql.Rows) error {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		unit, n, ft, lt := asInt(cols[0]), asInt(cols[1]), asInt(cols[5]), asInt(cols[7])
		if b := (unit*w - q.a.From) / q.a.Step; b != cur || p == nil {
			cur, p = b, part(b)
		}
		if numeric {
			lo, hi := asNumber(cols[3]), asNumber(cols[4])
			if p.n == 0 {
				p.flo, p.fhi = lo, hi
			} else {
				p.flo, p.fhi = min(p.flo, lo), max(p.fhi, hi)
			}
			p.sum += asNumber(cols[2])
			if !p.hasFirst || ft < p.ft {
				p.ft, p.ffv, p.fv, p.hasFirst = ft, asNumber(cols[6]), nil, true
			}
			if !p.hasLast || lt > p.lt {
				p.lt, p.flv, p.lv, p.hasLast = lt, asNumber(cols[8]), nil, true
			}
		} else {
			if !p.hasFirst || ft < p.ft {
				p.ft, p.fv, p.hasFirst = ft, cols[6], true
			}
			if !p.hasLast || lt > p.lt {
				p.lt, p.lv, p.hasLast = lt, cols[8], true
			}
		}
		p.n += n
		return nil
	})
}

// asInt and asNumber read the integer and number columns of a roll-up row (0 for NULL).
func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	return 0
}

func asNumber(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	}
	return 0
}

// edge adds a segment's first (or last) value per bucket. With exactly one MIN or MAX aggregate, SQLite
// takes a bare column from the row holding that minimum or maximum.
func (q *aggQuery) edge(ctx context.Context, s segment, last bool, part func(int64) *partial) error {
	cols := `MIN(time), val`
	switch {
	case last && s.level < 0:
		cols = `MAX(time), val`
	case !last && s.level >= 0:
		cols = `MIN(ft), fv`
	case last && s.level >= 0:
		cols = `MAX(lt), lv`
	}
	sqlText := `SELECT ` + q.bucketExpr(s) + ` AS b, ` + cols + ` ` + q.where(s) + ` GROUP BY b`
	return q.query(ctx, sqlText, q.segmentArgs(s), func(rows *sql.Rows) error {
		var b, t int64
		var v any
		if err := rows.Scan(&b, &t, &v); err != nil {
			return err
		}
		p := part(b)
		if last && (!p.hasLast || t > p.lt) {
			p.lt, p.lv, p.hasLast = t, v, true
		}
		if !last && (!p.hasFirst || t < p.ft) {
			p.ft, p.fv, p.hasFirst = t, v, true
		}
		return nil
	})
}

// scan hands FoldHistory every value of the range in time order (numbers as float64).
func (q *aggQuery) scan(ctx context.Context) func(yield func(t int64, v any) error) error {
	return func(yield func(t int64, v any) error) error {
		rows, err := q.h.db.QueryContext(ctx, `SELECT time, val `+valuesWhere+` ORDER BY time`, q.a.Vehicle, q.name, q.a.Lo, q.a.Hi)
		if err != nil {
			return fmt.Errorf("couldn't read %s of vehicle %d: %w", q.a.Signal, q.a.Vehicle, err)
		}
		defer rows.Close()
		numeric := q.a.Kind == telemetry.KindNumber || q.a.Kind == telemetry.KindBool
		for rows.Next() {
			var t int64
			var v any
			if err := rows.Scan(&t, &v); err != nil {
				return fmt.Errorf("couldn't read %s of vehicle %d: %w", q.a.Signal, q.a.Vehicle, err)
			}
			if i, ok := v.(int64); ok && numeric {
				v = float64(i)
			}
			if err := yield(t, v); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("couldn't read %s of vehicle %d: %w", q.a.Signal, q.a.Vehicle, err)
		}
		return nil
	}
}

// counts computes TOP or UNIQUE from the distinct values of each bucket with how often each occurs.
func (q *aggQuery) counts(ctx context.Context, agg string, put func(int64, string, any)) error {
	s := segment{q.a.Lo, q.a.Hi, -1}
	sqlText := `SELECT ` + q.bucketExpr(s) + ` AS b, val, COUNT(*) ` + q.where(s) + ` GROUP BY b, val ORDER BY b, val`
	var cur int64 = -1
	var distinct []string
	var top string
	var topN int64
	flush := func() {
		if cur < 0 {
			return
		}
		if agg == telemetry.AggTop {
			put(cur, agg, top)
		} else {
			j, _ := json.Marshal(distinct)
			put(cur, agg, string(j))
		}
	}
	err := q.query(ctx, sqlText, q.segmentArgs(s), func(rows *sql.Rows) error {
		var b, n int64
		var v any
		if err := rows.Scan(&b, &v, &n); err != nil {
			return err
		}
		str, err := telemetry.AsString(v)
		if err != nil {
			return err
		}
		if b != cur {
			flush()
			cur, distinct, top, topN = b, nil, "", 0
		}
		distinct = append(distinct, str) // ORDER BY b, val: sorted
		if n > topN {                    // ties keep the smaller value, met first
			top, topN = str, n
		}
		return nil
	})
	if err == nil {
		flush()
	}
	return err
}

// values computes MED, RAND or MEAN from every value of each bucket, read in time order.
func (q *aggQuery) values(ctx context.Context, agg string, put func(int64, string, any)) error {
	s := segment{q.a.Lo, q.a.Hi, -1}
	sqlText := `SELECT ` + q.bucketExpr(s) + ` AS b, val ` + q.where(s) + ` ORDER BY time`
	var cur int64 = -1
	var bucket []any
	flush := func() error {
		if cur < 0 || len(bucket) == 0 {
			return nil
		}
		switch agg {
		case telemetry.AggRand:
			put(cur, agg, bucket[telemetry.RandIndex(q.a.Vehicle, q.a.Signal, q.a.From+cur*q.a.Step, len(bucket))])
		case telemetry.AggMedian:
			fs := make([]float64, len(bucket))
			for i, v := range bucket {
				f, err := telemetry.AsFloat(v)
				if err != nil {
					return err
				}
				fs[i] = f
			}
			put(cur, agg, telemetry.Median(fs))
		case telemetry.AggMean:
			m, err := telemetry.MeanLocation(bucket)
			if err != nil {
				return err
			}
			put(cur, agg, m)
		}
		return nil
	}
	err := q.query(ctx, sqlText, q.segmentArgs(s), func(rows *sql.Rows) error {
		var b int64
		var v any
		if err := rows.Scan(&b, &v); err != nil {
			return err
		}
		if b != cur {
			if err := flush(); err != nil {
				return err
			}
			cur, bucket = b, bucket[:0]
		}
		bucket = append(bucket, v)
		return nil
	})
	if err == nil {
		err = flush()
	}
	return err
}

// oneBucket aggregates a query of one bucket (whatever its alignment) into p, as spanBuckets does.
func (q *aggQuery) oneBucket(ctx context.Context, stats, first, last bool, p *partial) error {
	return q.spanBuckets(ctx, []telemetry.Span{{Start: q.a.Lo, End: q.a.Hi}}, stats, first, last, []*partial{p})
}

// spanBuckets aggregates each of spans (whatever their alignment) into ps[i], in one query for all of them:
// with stats as spanRollups does; without, the first and last value of each span from the values table
// alone, two index seeks a span, fewer pages and rows than the roll-ups would give (a trip of 45 minutes
// is nine five-minute units), and no stale span to mind.
func (q *aggQuery) spanBuckets(ctx context.Context, spans []telemetry.Span, stats, first, last bool, ps []*partial) error {
	a := q.a
	numeric := a.Kind == telemetry.KindNumber || a.Kind == telemetry.KindBool
	if stats { // the rows of the roll-ups and values, first and last included, are the fastest way
		return q.spanRollups(ctx, spans, stats, first, last, ps)
	}
	if !first && !last {
		return nil
	}
	keys := make([][5]int64, 0, len(spans)) // vehicle, name, from, to, span
	for i, sp := range spans {
		if sp.Start < sp.End {
			keys = append(keys, [5]int64{int64(a.Vehicle), q.name, sp.Start, sp.End, int64(i)})
		}
	}
	if len(keys) == 0 {
		return nil
	}
	var cols [3]any
	dest := []any{&cols[0], &cols[1], &cols[2]}
	return q.query(ctx, edgesSQL, []any{jsonText(keys)}, func(rows *sql.Rows) error {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		i, t, v := asInt(cols[0]), asInt(cols[1]), cols[2]
		if i < 0 || i >= int64(len(ps)) {
			return fmt.Errorf("span %d of %d", i, len(ps))
		}
		p := ps[i]
		if first && (!p.hasFirst || t < p.ft) {
			p.ft, p.hasFirst = t, true
			if numeric {
				p.ffv, p.fv = asNumber(v), nil
			} else {
				p.fv = v
			}
		}
		if last && (!p.hasLast || t > p.lt) {
			p.lt, p.hasLast = t, true
			if numeric {
				p.flv, p.lv = asNumber(v), nil
			} else {
				p.lv = v
			}
		}
		return nil
	})
}

// spanRollups aggregates each of spans (whatever their alignment) into ps[i]: the widest whole roll-up
// units of every level that fit in each span outside the stale span and the unaligned ends (less than a
// minute each) from their values, of every span in one query, and a span's share of the stale span as a
// segment of values.
func (q *aggQuery) spanRollups(ctx context.Context, spans []telemetry.Span, stats, first, last bool, ps []*partial) error {
	a := q.a
	since, until, err := q.h.staleSpan(ctx, a.Vehicle, q.name)
	stale := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("couldn't read the roll-up state of %s: %w", a.Signal, err)
	}
	var ranges [][6]int64 // vehicle, name, level, first unit, end unit, span
	var keys [][5]int64   // vehicle, name, from, to, span
	type staleSeg struct {
		i int
		s segment
	}
	var staleSegs []staleSeg
	for i, sp := range spans {
		r := &runsQuery{units: make([][][2]int64, len(RollupWidths))}
		if !stale {
			r.cover(sp.Start, sp.End)
		} else {
			r.cover(sp.Start, min(sp.End, since))
			if seg := (segment{max(sp.Start, since), min(sp.End, until+1), -1}); seg.lo < seg.hi {
				staleSegs = append(staleSegs, staleSeg{i, seg})
			}
			r.cover(max(sp.Start, until+1), sp.End)
		}
		for k, us := range r.units {
			for _, u := range us {
				ranges = append(ranges, [6]int64{int64(a.Vehicle), q.name, int64(k), u[0], u[1], int64(i)})
			}
		}
		for _, u := range r.raw {
			keys = append(keys, [5]int64{int64(a.Vehicle), q.name, u[0], u[1], int64(i)})
		}
	}
	numeric := a.Kind == telemetry.KindNumber || a.Kind == telemetry.KindBool
	addValue := func(p *partial, n int64, sum, lo, hi float64, ft int64, fv any, lt int64, lv any) {
		if numeric && n > 0 {
			if p.n == 0 {
				p.flo, p.fhi = lo, hi
			} else {
				p.flo, p.fhi = min(p.flo, lo), max(p.fhi, hi)
			}
			p.sum += sum
		}
		p.n += n
		if !p.hasFirst || ft < p.ft {
			p.ft, p.hasFirst = ft, true
			if numeric {
				p.ffv, p.fv = asNumber(fv), nil
			} else {
				p.fv = fv
			}
		}
		if !p.hasLast || lt > p.lt {
			p.lt, p.hasLast = lt, true
			if numeric {
				p.flv, p.lv = asNumber(lv), nil
			} else {
				p.lv = lv
			}
		}
	}
	if len(ranges) > 0 || len(keys) > 0 {
		var cols [9]any
		dest := make([]any, len(cols))
		for i := range cols {
			dest[i] = &cols[i]
		}
		// the whole units, and at the unaligned ends the minute's roll-up where all its values lie inside
		// the range (a trip that ends at its last value), else the values, in one query: span, cnt, total,
		// lo, hi, ft, fv, lt, lv. A value measured before the stale span was rolled up with its minute.
		sqlText := oneBucketSQL
		if !first && !last {
			sqlText = statsSQL
		}
		err = q.query(ctx, sqlText, []any{jsonText(ranges), jsonText(keys)}, func(rows *sql.Rows) error {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			i := asInt(cols[0])
			if i < 0 || i >= int64(len(ps)) {
				return fmt.Errorf("span %d of %d", i, len(ps))
			}
			addValue(ps[i], asInt(cols[1]), asNumber(cols[2]), asNumber(cols[3]), asNumber(cols[4]), asInt(cols[5]), cols[6], asInt(cols[7]), cols[8])
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, ss := range staleSegs {
		p := ps[ss.i]
		part := func(int64) *partial { return p }
		if stats {
			if err := q.stats(ctx, ss.s, part); err != nil {
				return err
			}
		}
		if first {
			if err := q.edge(ctx, ss.s, false, part); err != nil {
				return err
			}
		}
		if last {
			if err := q.edge(ctx, ss.s, true, part); err != nil {
				return err
			}
		}
	}
	return nil
}

const oneBucketSQL = `SELECT j.value ->> 5, r.cnt, r.total, r.lo, r.hi, r.ft, r.fv, r.lt, r.lv FROM json_each(?1) j CROSS JOIN rollup r
WHERE r.vehicle = j.value ->> 0 AND r.name = j.value ->> 1 AND r.level = j.value ->> 2 AND r.unit >= j.value ->> 3 AND r.unit < j.value ->> 4
UNION ALL
SELECT j.value ->> 4, r.cnt, r.total, r.lo, r.hi, r.ft, r.fv, r.lt, r.lv FROM json_each(?2) j CROSS JOIN rollup r
WHERE r.vehicle = j.value ->> 0 AND r.name = j.value ->> 1 AND r.level = 0
	AND r.unit >= (j.value ->> 2) / 60000 AND r.unit <= (j.value ->> 3 - 1) / 60000
	AND r.ft >= j.value ->> 2 AND r.lt < j.value ->> 3
UNION ALL
SELECT j.value ->> 4, 1, s.val, s.val, s.val, s.time, s.val, s.time, s.val FROM json_each(?2) j CROSS JOIN rollup r CROSS JOIN signals s
WHERE r.vehicle = j.value ->> 0 AND r.name = j.value ->> 1 AND r.level = 0
	AND r.unit >= (j.value ->> 2) / 60000 AND r.unit <= (j.value ->> 3 - 1) / 60000
	AND NOT (r.ft >= j.value ->> 2 AND r.lt < j.value ->> 3)
	AND s.vehicle = r.vehicle AND s.name = r.name
	AND s.time >= MAX(j.value ->> 2, r.unit * 60000) AND s.time < MIN(j.value ->> 3, r.unit * 60000 + 60000)`

// statsSQL is oneBucketSQL without the first and last values, which statistics alone do not need.
const statsSQL = `SELECT j.value ->> 5, r.cnt, r.total, r.lo, r.hi, r.ft, NULL, r.lt, NULL FROM json_each(?1) j CROSS JOIN rollup r
WHERE r.vehicle = j.value ->> 0 AND r.name = j.value ->> 1 AND r.level = j.value ->> 2 AND r.unit >= j.value ->> 3 AND r.unit < j.value ->> 4
UNION ALL
SELECT j.value ->> 4, r.cnt, r.total, r.lo, r.hi, r.ft, NULL, r.lt, NULL FROM json_each(?2) j CROSS JOIN rollup r
WHERE r.vehicle = j.value ->> 0 AND r.name = j.value ->> 1 AND r.level = 0
	AND r.unit >= (j.value ->> 2) / 60000 AND r.unit <= (j.value ->> 3 - 1) / 60000
	AND r.ft >= j.value ->> 2 AND r.lt < j.value ->> 3
UNION ALL
SELECT j.value ->> 4, 1, s.val, s.val, s.val, s.time, NULL, s.time, NULL FROM json_each(?2) j CROSS JOIN rollup r CROSS JOIN signals s
WHERE r.vehicle = j.value ->> 0 AND r.name = j.value ->> 1 AND r.level = 0
	AND r.unit >= (j.value ->> 2) / 60000 AND r.unit <= (j.value ->> 3 - 1) / 60000
	AND NOT (r.ft >= j.value ->> 2 AND r.lt < j.value ->> 3)
	AND s.vehicle = r.vehicle AND s.name = r.name
	AND s.time >= MAX(j.value ->> 2, r.unit * 60000) AND s.time < MIN(j.value ->> 3, r.unit * 60000 + 60000)`

// edgesSQL reads the first and the last value of each span (?1): span, time, value.
const edgesSQL = `SELECT j.value ->> 4, s.time, s.val FROM json_each(?1) j CROSS JOIN signals s
WHERE s.vehicle = j.value ->> 0 AND s.name = j.value ->> 1 AND s.time IN (
	(SELECT MIN(time) FROM signals WHERE vehicle = j.value ->> 0 AND name = j.value ->> 1 AND time >= j.value ->> 2 AND time < j.value ->> 3),
	(SELECT MAX(time) FROM signals WHERE vehicle = j.value ->> 0 AND name = j.value ->> 1 AND time >= j.value ->> 2 AND time < j.value ->> 3))`

// aggKinds sorts a's aggregations into statistics (avg, min, max, count: numeric signals only), first and
// last; strict refuses any other name (others are answered elsewhere).
func aggKinds(a telemetry.Aggregation, numeric, strict bool) (stats, first, last bool, err error) {
	for _, agg := range a.Aggs {
		switch agg {
		case telemetry.AggAvg, telemetry.AggMin, telemetry.AggMax, telemetry.AggCount:
			if !numeric {
				return false, false, false, fmt.Errorf("%s does not apply to %s", agg, a.Signal)
			}
			stats = true
		case telemetry.AggFirst:
			first = true
		case telemetry.AggLast:
			last = true
		default:
			if strict {
				return false, false, false, fmt.Errorf("no span aggregation %q", agg)
			}
		}
	}
	return stats, first, last, nil
}
