package sqlite

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
)

var _ telemetry.Reader = (*Telemetry)(nil)

// Aggregate implements telemetry.History (and so telemetry.Reader) over the derived signals database,
// from the roll-ups where it can (History).
func (t *Telemetry) Aggregate(ctx context.Context, a telemetry.Aggregation, put func(b int64, agg string, v any)) error {
	return t.history.Aggregate(ctx, a, put)
}

// AggregateSpans implements telemetry.SpanAggregator.
func (t *Telemetry) AggregateSpans(ctx context.Context, a telemetry.Aggregation, spans []telemetry.Span, put func(i int, agg string, v any)) error {
	return t.history.AggregateSpans(ctx, a, spans, put)
}

// Summary implements telemetry.Reader from the signals table.
func (t *Telemetry) Summary(ctx context.Context, vehicle uint64, since int64) ([]telemetry.SignalSummary, error) {
	rows, err := t.idx.QueryContext(ctx, `SELECT n.name, COUNT(*), MIN(s.time), MAX(s.time)
		FROM signals s JOIN names n ON n.id = s.name WHERE s.vehicle = ? AND s.time >= ? GROUP BY s.name`, vehicle, since)
	if err != nil {
		return nil, fmt.Errorf("couldn't summarize the data of vehicle %d: %w", vehicle, err)
	}
	defer rows.Close()
	var out []telemetry.SignalSummary
	for rows.Next() {
		var s telemetry.SignalSummary
		if err := rows.Scan(&s.Name, &s.Count, &s.First, &s.Last); err != nil {
			return nil, fmt.Errorf("couldn't summarize the data of vehicle %d: %w", vehicle, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't summarize the data of vehicle %d: %w", vehicle, err)
	}
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
