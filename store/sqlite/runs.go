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
	f := telemetry.RunFolder{Query: q}
	whole := func(c *chunkRow) bool { return f.Whole(c.start, c.end, c.lo, c.hi) }
	err = snapshot(ctx, t.idx, func(db querier) error {
		return walk(ctx, db, s, q.Lo, q.Hi, whole, func(c *chunkRow) error {
			f.AddPiece(c.start, c.end, c.fv.(float64), c.lv.(float64), c.cnt)
			return nil
		}, func(p series.Point) error {
			f.Add(p.T, p.V.(float64))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the runs of %s: %w", s, err)
	}
	return f.Runs(), nil
}
