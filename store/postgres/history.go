package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/glovebox/glovebox/telemetry"
)

// History answers history queries (telemetry.History) from the signals table through database/sql (pgx's
// stdlib driver): it reads the signal's values in time order and folds them in Go with
// telemetry.FoldHistory, the reference the SQLite store's roll-ups are tested against. There are no
// roll-ups here yet, so a query costs a scan of its range.
type History struct{ db *sql.DB }

// NewHistory returns a History over db.
func NewHistory(db *sql.DB) *History { return &History{db: db} }

// valueColumn is the column of the signals and latest tables holding values of kind k.
func valueColumn(k telemetry.Kind) string {
	switch k {
	case telemetry.KindString, telemetry.KindStrings:
		return "str"
	case telemetry.KindLocation:
		return "loc"
	}
	return "num"
}

// Aggregate implements telemetry.History.
func (h *History) Aggregate(ctx context.Context, a telemetry.Aggregation, put func(b int64, agg string, v any)) error {
	scan := func(yield func(t int64, v any) error) error {
		rows, err := h.db.QueryContext(ctx, `SELECT s.time, s.`+valueColumn(a.Kind)+` FROM signals s JOIN names n ON n.id = s.name
WHERE s.vehicle = $1 AND n.name = $2 AND s.time >= $3 AND s.time < $4 ORDER BY s.time`, int64(a.Vehicle), a.Signal, a.Lo, a.Hi)
		if err != nil {
			return fmt.Errorf("couldn't read %s of vehicle %d: %w", a.Signal, a.Vehicle, err)
		}
		defer rows.Close()
		for rows.Next() {
			var t int64
			var v any
			if err := rows.Scan(&t, &v); err != nil {
				return fmt.Errorf("couldn't read %s of vehicle %d: %w", a.Signal, a.Vehicle, err)
			}
			if v == nil {
				continue
			}
			if err := yield(t, v); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	return telemetry.FoldHistory(a, scan, put)
}

// QueryLatest reads the newest value of every signal of vehicle.
func QueryLatest(ctx context.Context, db *sql.DB, vehicle uint64) ([]telemetry.LatestRow, error) {
	rows, err := db.QueryContext(ctx, `SELECT n.name, l.time, l.num, l.str, l.loc FROM latest l JOIN names n ON n.id = l.name WHERE l.vehicle = $1`, int64(vehicle))
	if err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
	}
	defer rows.Close()
	var out []telemetry.LatestRow
	for rows.Next() {
		var r telemetry.LatestRow
		var vals [3]any
		if err := rows.Scan(&r.Name, &r.Time, &vals[0], &vals[1], &vals[2]); err != nil {
			return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
		}
		for _, v := range vals {
			if v != nil {
				r.Val = v
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
	}
	return out, nil
}
