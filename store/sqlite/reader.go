package sqlite

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

var _ telemetry.Reader = (*Telemetry)(nil)

// Aggregate implements telemetry.History (and so telemetry.Reader) over the derived signals database,
// from the chunks' summaries where it can (History).
func (t *Telemetry) Aggregate(ctx context.Context, a telemetry.Aggregation, put func(b int64, agg string, v any)) error {
	return t.history.Aggregate(ctx, a, put)
}

// AggregateSpans implements telemetry.SpanAggregator.
func (t *Telemetry) AggregateSpans(ctx context.Context, a telemetry.Aggregation, spans []telemetry.Span, put func(i int, agg string, v any)) error {
	return t.history.AggregateSpans(ctx, a, spans, put)
}

// Summary implements telemetry.Reader from the chunks' summaries and the open values; only a chunk that holds
// since and values before it is decoded.
func (t *Telemetry) Summary(ctx context.Context, vehicle uint64, since int64) ([]telemetry.SignalSummary, error) {
	byName := map[int64]*telemetry.SignalSummary{}
	add := func(name, n, first, last int64) {
		s := byName[name]
		if s == nil {
			byName[name] = &telemetry.SignalSummary{Count: n, First: first, Last: last}
			return
		}
		s.Count, s.First, s.Last = s.Count+n, min(s.First, first), max(s.Last, last)
	}
	scan := func(scan func(...any) error) error {
		var name, n, first, last int64
		if err := scan(&name, &n, &first, &last); err != nil {
			return err
		}
		add(name, n, first, last)
		return nil
	}
	err := snapshot(ctx, t.idx, func(q querier) error {
		err := eachQueryRow(ctx, q, `SELECT name, SUM(cnt), MIN(start), MAX(end) FROM chunk_sums WHERE vehicle = ? AND start >= ? GROUP BY name`,
			[]any{vehicle, since}, scan)
		if err == nil {
			var open map[int64][]series.Point
			if open, err = openValuesByName(ctx, q, vehicle, since, math.MaxInt64); err == nil {
				for name, pts := range open {
					add(name, int64(len(pts)), pts[0].T, pts[len(pts)-1].T)
				}
			}
		}
		var straddling []int64 // names with a chunk from before since to after it
		if err == nil {
			err = eachQueryRow(ctx, q, `SELECT DISTINCT name FROM chunk_sums WHERE vehicle = ? AND start >= ? AND start < ? AND end >= ?`,
				[]any{vehicle, series.Hour(since), since, since}, func(scan func(...any) error) error {
					var name int64
					if err := scan(&name); err != nil {
						return err
					}
					straddling = append(straddling, name)
					return nil
				})
		}
		if err != nil {
			return fmt.Errorf("couldn't summarize the data of vehicle %d: %w", vehicle, err)
		}
		for _, name := range straddling {
			s, err := t.sigOf(vehicle, name)
			if err != nil {
				return err
			}
			cs, err := readChunks(ctx, q, s, since, series.Hour(since)+series.HourMs, true)
			if err != nil {
				return err
			}
			var buf []series.Point
			for i := range cs {
				c := &cs[i]
				if c.start >= since {
					continue // counted whole
				}
				if buf, err = c.decode(ctx, q, s, buf[:0]); err != nil {
					return err
				}
				j := slices.IndexFunc(buf, func(p series.Point) bool { return p.T >= since })
				add(name, int64(len(buf)-j), buf[j].T, c.end)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	out := make([]telemetry.SignalSummary, 0, len(byName))
	for n, id := range t.names {
		if s := byName[id]; s != nil {
			s.Name = n
			out = append(out, *s)
		}
	}
	t.mu.Unlock()
	return out, nil
}

// recordsSQL reads one page of a vehicle's records in (time, seq) order after a (time, seq) position; the
// (vehicle, time) index serves it (seq is the rowid, which the index carries).
const recordsSQL = `SELECT seq, source, id, time, received, pairing, event, signature FROM records
WHERE vehicle = ? AND time >= ? AND time < ? AND (time, seq) > (?, ?) ORDER BY time, seq LIMIT ?`

// Records implements telemetry.Reader from the records table, decompressing stored events.
func (t *Telemetry) Records(ctx context.Context, q telemetry.RecordsQuery) ([]telemetry.StoredRecord, error) {
	if q.Limit <= 0 || q.Lo >= q.Hi {
		return nil, nil
	}
	st, err := t.stmts.stmt(ctx, recordsSQL) // prepared once: parsing the SQL cost more than a short page
	if err != nil {
		return nil, fmt.Errorf("couldn't read the records of vehicle %d: %w", q.Vehicle, err)
	}
	rows, err := st.QueryContext(ctx, q.Vehicle, q.Lo, q.Hi, q.AfterTime, q.AfterSeq, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the records of vehicle %d: %w", q.Vehicle, err)
	}
	defer rows.Close()
	var out []telemetry.StoredRecord
	for rows.Next() {
		r := telemetry.StoredRecord{Vehicle: q.Vehicle}
		var source, event []byte
		if err := rows.Scan(&r.Seq, &source, &r.ID, &r.Time, &r.Received, &r.Pairing, &event, &r.Signature); err != nil {
			return nil, fmt.Errorf("couldn't read the records of vehicle %d: %w", q.Vehicle, err)
		}
		r.Source = common.BytesToAddress(source)
		if r.Event, err = DecodeEvent(event); err != nil {
			return nil, fmt.Errorf("record %d of vehicle %d: %w", r.Seq, q.Vehicle, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read the records of vehicle %d: %w", q.Vehicle, err)
	}
	return out, nil
}
