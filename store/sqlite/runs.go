package sqlite

import (
	"context"
	"fmt"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

// Runs implements telemetry.Reader: a chunk whose values are all of one class (its minimum and maximum
// are, and it has no NaN) and no further apart than MaxGap (its first and last are not) continues or starts a run whole,
// from its summary; the others are decoded and folded value by value, as telemetry.FoldRuns does.
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
	s, err := t.sigOf(q.Vehicle, name)
	if err != nil {
		return nil, err
	}
	if !numeric(s.kind) {
		return nil, fmt.Errorf("%s is not a number: it has no runs", q.Signal)
	}
	class := func(v float64) float64 {
		if q.Cuts == nil {
			return v
		}
		return float64(q.Class(v))
	}
	var out []telemetry.Run
	var cls float64
	// piece adds values from t0 to t1 (v0 to v1), n of them, all of class c and no further apart than MaxGap
	piece := func(t0, t1 int64, v0, v1 float64, n int64, c float64) {
		if k := len(out); k > 0 && c == cls && (q.MaxGap == 0 || t0-out[k-1].End <= q.MaxGap) {
			out[k-1].End, out[k-1].Last, out[k-1].Count = t1, v1, out[k-1].Count+n
			return
		}
		out = append(out, telemetry.Run{Start: t0, End: t1, First: v0, Last: v1, Count: n})
		cls = c
	}
	whole := func(c *chunkRow) bool {
		return c.lo == c.lo && class(c.lo) == class(c.hi) && (q.MaxGap == 0 || c.end-c.start <= q.MaxGap)
	}
	err = snapshot(ctx, t.idx, func(db querier) error {
		return walk(ctx, db, s, q.Lo, q.Hi, whole, func(c *chunkRow) error {
			piece(c.start, c.end, c.fv.(float64), c.lv.(float64), c.cnt, class(c.lo))
			return nil
		}, func(p series.Point) error {
			f := p.V.(float64)
			piece(p.T, p.T, f, f, 1, class(f))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the runs of %s: %w", s, err)
	}
	return out, nil
}
