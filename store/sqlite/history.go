package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/chunk"
	"github.com/glovebox/glovebox/telemetry/series"
)

// History answers history (bucketed aggregation) queries from a signals database; it is a
// telemetry.History and a telemetry.SpanAggregator. FIRST, LAST, MIN, MAX, AVG and COUNT take a chunk
// that lies wholly inside one bucket from its summary (AVG from exact sums, so every answer is
// telemetry.FoldHistory's to the bit); every other aggregation, a value filter (Keep) and NoRollup
// read the values (eachValue) and fold them with telemetry.FoldHistory.
type History struct {
	db    *sql.DB
	names sync.Map // signal name → its id (a name, once stored, keeps its id)
	stmts stmtCache
}

// NewHistory returns a History over the derived signals database (Telemetry.SignalsDB).
func NewHistory(db *sql.DB) *History { return &History{db: db, stmts: stmtCache{db: db}} }

// Aggregate implements telemetry.History.
func (h *History) Aggregate(ctx context.Context, a telemetry.Aggregation, put func(b int64, agg string, v any)) error {
	if a.Step <= 0 || a.Lo >= a.Hi {
		return nil
	}
	s, ok, err := h.sig(ctx, a)
	if !ok || err != nil {
		return err // !ok: never measured by anyone
	}
	var sums, rest []string
	for _, agg := range a.Aggs {
		if a.Keep == nil && summarized(agg) {
			sums = append(sums, agg)
		} else {
			rest = append(rest, agg)
		}
	}
	if len(rest) > 0 {
		b := a
		b.Aggs = rest
		scan := func(yield func(t int64, v any) error) error {
			return snapshot(ctx, h.db, func(q querier) error {
				return eachValue(ctx, q, s, a.Lo, a.Hi, func(p series.Point) error { return yield(p.T, p.V) })
			})
		}
		if err := telemetry.FoldHistory(b, scan, put); err != nil {
			return err
		}
	}
	if len(sums) == 0 {
		return nil
	}
	if err := checkAggs(a, sums); err != nil {
		return err
	}
	bucket := func(t int64) (int64, bool) { return (t - a.From) / a.Step, true }
	whole := func(c *chunkRow) bool {
		b, _ := bucket(c.start)
		e, _ := bucket(c.end)
		return !a.NoRollup && b == e
	}
	return h.fold(ctx, s, a.Lo, a.Hi, bucket, whole, func(b int64, p *partial) { p.put(sums, func(agg string, v any) { put(b, agg, v) }) })
}

// AggregateSpans implements telemetry.SpanAggregator: spans that do not overlap are aggregated in one
// walk over the range they cover, others one by one.
func (h *History) AggregateSpans(ctx context.Context, a telemetry.Aggregation, spans []telemetry.Span, put func(i int, agg string, v any)) error {
	for _, agg := range a.Aggs {
		if !summarized(agg) {
			return fmt.Errorf("no span aggregation %q", agg)
		}
	}
	if err := checkAggs(a, a.Aggs); err != nil {
		return err
	}
	var order []int // the spans that are not empty, by start
	for i, sp := range spans {
		if sp.Start < sp.End {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(i, j int) int { return cmp.Compare(spans[i].Start, spans[j].Start) })
	for k := 1; k < len(order); k++ {
		if spans[order[k]].Start < spans[order[k-1]].End { // overlapping: one by one
			for _, i := range order {
				b := a
				b.From, b.Step, b.Lo, b.Hi = spans[i].Start, spans[i].End-spans[i].Start, spans[i].Start, spans[i].End
				if err := h.Aggregate(ctx, b, func(_ int64, agg string, v any) { put(i, agg, v) }); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if len(order) == 0 {
		return nil
	}
	s, ok, err := h.sig(ctx, a)
	if !ok || err != nil {
		return err
	}
	// bucket is the position in order of the span that holds t
	bucket := func(t int64) (int64, bool) {
		k := spanAt(order, spans, t)
		return int64(k), k >= 0 && t < spans[order[k]].End
	}
	// a chunk is taken whole when its first and last values lie in the same span, or in the same gap
	// between two spans (then it is left out): no span starts or ends within it
	whole := func(c *chunkRow) bool {
		b, bok := bucket(c.start)
		e, eok := bucket(c.end)
		return b == e && bok == eok
	}
	lo, hi := spans[order[0]].Start, spans[order[len(order)-1]].End
	return h.fold(ctx, s, lo, hi, bucket, whole, func(b int64, p *partial) {
		p.put(a.Aggs, func(agg string, v any) { put(order[b], agg, v) })
	})
}

// spanAt returns the position in order of the last span (by start) that starts at or before t, -1 if none.
func spanAt(order []int, spans []telemetry.Span, t int64) int {
	k, found := slices.BinarySearchFunc(order, t, func(i int, t int64) int { return cmp.Compare(spans[i].Start, t) })
	if found {
		return k
	}
	return k - 1
}

// fold aggregates the values of s in [lo, hi) by bucket (FIRST, LAST, MIN, MAX, AVG and COUNT; values
// outside every bucket are left out), a chunk from its summary when whole says so, and hands each bucket
// that has values to put, in bucket order.
func (h *History) fold(ctx context.Context, s sig, lo, hi int64, bucket func(t int64) (int64, bool), whole func(c *chunkRow) bool,
	put func(b int64, p *partial)) error {
	parts := map[int64]*partial{}
	var lastB int64
	var lastP *partial // values come in time order: most share the bucket of the one before
	part := func(b int64) *partial {
		if lastP != nil && b == lastB {
			return lastP
		}
		p := parts[b]
		if p == nil {
			p = &partial{}
			parts[b] = p
		}
		lastB, lastP = b, p
		return p
	}
	num := numeric(s.kind)
	err := snapshot(ctx, h.db, func(q querier) error {
		return walk(ctx, q, s, lo, hi, whole, func(c *chunkRow) error {
			if b, ok := bucket(c.start); ok {
				return part(b).addChunk(s, c)
			}
			return nil
		}, func(p series.Point) error {
			if b, ok := bucket(p.T); ok {
				part(b).add(p, num)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	bs := make([]int64, 0, len(parts))
	for b := range parts {
		bs = append(bs, b)
	}
	slices.Sort(bs)
	for _, b := range bs {
		put(b, parts[b])
	}
	return nil
}

// summarized reports whether a chunk's summary answers agg.
func summarized(agg string) bool {
	switch agg {
	case telemetry.AggAvg, telemetry.AggMin, telemetry.AggMax, telemetry.AggCount, telemetry.AggFirst, telemetry.AggLast:
		return true
	}
	return false
}

// checkAggs refuses aggs (all summarized) that do not apply to a's kind, as telemetry.FoldHistory does.
func checkAggs(a telemetry.Aggregation, aggs []string) error {
	for _, agg := range aggs {
		if agg != telemetry.AggFirst && agg != telemetry.AggLast && !numeric(a.Kind) {
			return fmt.Errorf("%s does not apply to %s", agg, a.Signal)
		}
	}
	return nil
}

// sig returns the stored signal a asks about, false if no one ever measured it.
func (h *History) sig(ctx context.Context, a telemetry.Aggregation) (sig, bool, error) {
	name, ok, err := h.nameID(ctx, a.Signal)
	return sig{vehicle: a.Vehicle, name: name, signal: a.Signal, kind: a.Kind}, ok, err
}

// nameID returns the id of signal, false if no one ever measured it.
func (h *History) nameID(ctx context.Context, signal string) (int64, bool, error) {
	if id, ok := h.names.Load(signal); ok {
		return id.(int64), true, nil
	}
	st, err := h.stmts.stmt(ctx, `SELECT id FROM names WHERE name = ?`)
	if err != nil {
		return 0, false, fmt.Errorf("couldn't look up signal %s: %w", signal, err)
	}
	var name int64
	err = st.QueryRowContext(ctx, signal).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("couldn't look up signal %s: %w", signal, err)
	}
	h.names.Store(signal, name)
	return name, true, nil
}

// partial is what the values and chunks of one bucket contributed so far.
type partial struct {
	n      int64
	sum    chunk.Sum
	lo, hi float64 // minimum and maximum (numbers)
	ft, lt int64
	fv, lv any // first and last value
}

func (p *partial) add(v series.Point, num bool) {
	if num {
		f := v.V.(float64)
		p.sum.Add(f)
		p.extremes(f, f)
	}
	p.ends(v.T, v.V, v.T, v.V)
	p.n++
}

func (p *partial) addChunk(s sig, c *chunkRow) error {
	if numeric(s.kind) {
		sum, err := c.sum(s)
		if err != nil {
			return err
		}
		p.sum.Merge(sum)
		p.extremes(c.lo, c.hi)
	}
	p.ends(c.start, c.fv, c.end, c.lv)
	p.n += c.cnt
	return nil
}

// extremes adds a minimum and maximum (before n counts them), as Go's min and max do.
func (p *partial) extremes(lo, hi float64) {
	if p.n == 0 {
		p.lo, p.hi = lo, hi
		return
	}
	p.lo, p.hi = min(p.lo, lo), max(p.hi, hi)
}

func (p *partial) ends(ft int64, fv any, lt int64, lv any) {
	if p.n == 0 || ft < p.ft {
		p.ft, p.fv = ft, fv
	}
	if p.n == 0 || lt > p.lt {
		p.lt, p.lv = lt, lv
	}
}

// put hands over the aggregations of a bucket.
func (p *partial) put(aggs []string, put func(agg string, v any)) {
	if p.n == 0 {
		return
	}
	for _, agg := range aggs {
		switch agg {
		case telemetry.AggCount:
			put(agg, float64(p.n))
		case telemetry.AggAvg:
			put(agg, p.sum.Float64()/float64(p.n))
		case telemetry.AggMin:
			put(agg, p.lo)
		case telemetry.AggMax:
			put(agg, p.hi)
		case telemetry.AggFirst:
			put(agg, p.fv)
		case telemetry.AggLast:
			put(agg, p.lv)
		}
	}
}
