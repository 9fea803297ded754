package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/glovebox/glovebox/telemetry"
)

var (
	_ telemetry.Events = (*Telemetry)(nil)
	_ telemetry.Events = eventReader{}
)

// eventReader reads the events table of a signals database (Telemetry.SignalsDB), which the indexer
// writes.
type eventReader struct{ DB *sql.DB }

// Events implements telemetry.Events.
func (t *Telemetry) Events(ctx context.Context, vehicle uint64, lo, hi int64, limit int) ([]telemetry.Event, error) {
	return eventReader{t.idx}.Events(ctx, vehicle, lo, hi, limit)
}

// EventSummaries implements telemetry.Events.
func (t *Telemetry) EventSummaries(ctx context.Context, vehicle uint64, since int64) ([]telemetry.EventSummary, error) {
	return eventReader{t.idx}.EventSummaries(ctx, vehicle, since)
}

// Events implements telemetry.Events.
func (t eventReader) Events(ctx context.Context, vehicle uint64, lo, hi int64, limit int) ([]telemetry.Event, error) {
	rows, err := t.DB.QueryContext(ctx, `SELECT time, name, source, duration_ns, metadata FROM events
WHERE vehicle = ? AND time >= ? AND time < ? ORDER BY time, name, source LIMIT ?`, vehicle, lo, hi, limit+1)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the events of vehicle %d: %w", vehicle, err)
	}
	defer rows.Close()
	var out []telemetry.Event
	for rows.Next() {
		e := telemetry.Event{Vehicle: vehicle}
		if err := rows.Scan(&e.Time, &e.Name, &e.Source, &e.DurationNs, &e.Metadata); err != nil {
			return nil, fmt.Errorf("couldn't read the events of vehicle %d: %w", vehicle, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// EventSummaries implements telemetry.Events.
func (t eventReader) EventSummaries(ctx context.Context, vehicle uint64, since int64) ([]telemetry.EventSummary, error) {
	rows, err := t.DB.QueryContext(ctx, `SELECT name, COUNT(*), MIN(time), MAX(time) FROM events
WHERE vehicle = ? AND time >= ? GROUP BY name ORDER BY name`, vehicle, since)
	if err != nil {
		return nil, fmt.Errorf("couldn't summarize the events of vehicle %d: %w", vehicle, err)
	}
	defer rows.Close()
	var out []telemetry.EventSummary
	for rows.Next() {
		var s telemetry.EventSummary
		if err := rows.Scan(&s.Name, &s.Count, &s.First, &s.Last); err != nil {
			return nil, fmt.Errorf("couldn't summarize the events of vehicle %d: %w", vehicle, err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
