package sqlite

import (
	"context"
	"fmt"
	"slices"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

// numericIDs returns the ids of the stored signals that are numbers or booleans in the catalog, in order.
func (t *Telemetry) numericIDs() []int64 {
	t.mu.Lock()
	ids := make([]int64, 0, len(t.names))
	for name, id := range t.names {
		if s, ok := t.cat.Lookup(name); ok && numeric(s.Kind) {
			ids = append(ids, id)
		}
	}
	t.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// Active implements telemetry.Reader from the chunks' counts of values per minute (chunk_sums.minutes),
// which a month of a signal keeps in about 720 short rows, and the open values; no chunk is decoded.
func (t *Telemetry) Active(ctx context.Context, aq telemetry.ActiveQuery) ([]telemetry.Span, error) {
	const m = telemetry.MinuteMs
	lo, hi := floorTo(aq.Lo, m), floorTo(aq.Hi+m-1, m)
	if lo >= hi {
		return nil, nil
	}
	type minute struct {
		n    uint64
		sigs int
	}
	minutes := map[int64]*minute{}
	err := snapshot(ctx, t.idx, func(q querier) error {
		open, err := openValuesByName(ctx, q, aq.Vehicle, lo, hi)
		if err != nil {
			return err
		}
		for _, name := range t.numericIDs() {
			counts := map[int64]uint64{} // this signal's
			add := func(at int64, n uint64) {
				if at >= lo && at < hi {
					counts[at] += n
				}
			}
			err := eachQueryRow(ctx, q, `SELECT start, minutes FROM chunk_sums WHERE vehicle = ? AND name = ? AND start >= ? AND start < ? AND end >= ?`,
				[]any{aq.Vehicle, name, series.Hour(lo), hi, lo}, func(scan func(...any) error) error {
					var start int64
					var b []byte
					if err := scan(&start, &b); err != nil {
						return err
					}
					if err := eachMinute(start, b, add); err != nil {
						return fmt.Errorf("the chunk of signal %d of vehicle %d from %d: %w", name, aq.Vehicle, start, err)
					}
					return nil
				})
			for _, p := range open[name] {
				add(floorTo(p.T, m), 1)
			}
			if err != nil {
				return fmt.Errorf("couldn't read the activity of vehicle %d: %w", aq.Vehicle, err)
			}
			for at, n := range counts {
				mn := minutes[at]
				if mn == nil {
					mn = &minute{}
					minutes[at] = mn
				}
				mn.n += n
				mn.sigs++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var spans []telemetry.Span
	for at, mn := range minutes {
		if mn.n >= uint64(max(aq.MinCount, 0)) && mn.sigs >= aq.MinSignals {
			spans = append(spans, telemetry.Span{Start: at, End: at + m})
		}
	}
	return telemetry.MergeSpans(spans), nil
}

// eachQueryRow runs a query and calls f with a scan of each row.
func eachQueryRow(ctx context.Context, db querier, q string, args []any, f func(scan func(...any) error) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}
