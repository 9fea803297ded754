package postgres

import (
	"context"
	"fmt"

	"github.com/glovebox/glovebox/telemetry"
)

var _ telemetry.Events = (*Telemetry)(nil)

// eventRows are events as columns, for one unnest insert.
type eventRows struct {
	vehicle, time, duration []int64
	name, source, metadata  []string
}

func (r *eventRows) add(e telemetry.Event) {
	r.vehicle, r.time, r.duration = append(r.vehicle, int64(e.Vehicle)), append(r.time, e.Time), append(r.duration, e.DurationNs)
	r.name, r.source, r.metadata = append(r.name, e.Name), append(r.source, e.Source), append(r.metadata, e.Metadata)
}

// Events implements telemetry.Events.
func (t *Telemetry) Events(ctx context.Context, vehicle uint64, lo, hi int64, limit int) ([]telemetry.Event, error) {
	rows, err := t.pool.Query(ctx, `SELECT time, name, source, duration_ns, metadata FROM events
WHERE vehicle = $1 AND time >= $2 AND time < $3 ORDER BY time, name, source LIMIT $4`, int64(vehicle), lo, hi, limit+1)
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
func (t *Telemetry) EventSummaries(ctx context.Context, vehicle uint64, since int64) ([]telemetry.EventSummary, error) {
	rows, err := t.pool.Query(ctx, `SELECT name, COUNT(*), MIN(time), MAX(time) FROM events
WHERE vehicle = $1 AND time >= $2 GROUP BY name ORDER BY name`, int64(vehicle), since)
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
