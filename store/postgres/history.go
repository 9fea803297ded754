package postgres

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"

	"github.com/glovebox/glovebox/telemetry"
)

var _ telemetry.Reader = (*Telemetry)(nil)

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

// Aggregate implements telemetry.History (and so telemetry.Reader) from the signals table: it reads the
// signal's values in time order and folds them in Go with telemetry.FoldHistory, the reference the SQLite
// store's roll-ups are tested against. There are no roll-ups here yet, so a query costs a scan of its
// range.
func (t *Telemetry) Aggregate(ctx context.Context, a telemetry.Aggregation, put func(b int64, agg string, v any)) error {
	scan := func(yield func(t int64, v any) error) error {
		rows, err := t.pool.Query(ctx, `SELECT s.time, s.num, s.str, s.loc FROM signals s JOIN names n ON n.id = s.name
WHERE s.vehicle = $1 AND n.name = $2 AND s.time >= $3 AND s.time < $4 ORDER BY s.time`, int64(a.Vehicle), a.Signal, a.Lo, a.Hi)
		if err != nil {
			return fmt.Errorf("couldn't read %s of vehicle %d: %w", a.Signal, a.Vehicle, err)
		}
		defer rows.Close()
		for rows.Next() {
			var ms int64
			var v value
			if err := rows.Scan(&ms, &v.num, &v.str, &v.loc); err != nil {
				return fmt.Errorf("couldn't read %s of vehicle %d: %w", a.Signal, a.Vehicle, err)
			}
			x := v.of(a.Kind)
			if x == nil {
				continue
			}
			if err := yield(ms, x); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	return telemetry.FoldHistory(a, scan, put)
}

// value is one row's value columns; of picks the one a kind is kept in.
type value struct {
	num *float64
	str *string
	loc []byte
}

func (v value) of(k telemetry.Kind) any {
	switch valueColumn(k) {
	case "str":
		if v.str != nil {
			return *v.str
		}
	case "loc":
		if v.loc != nil {
			return v.loc
		}
	default:
		if v.num != nil {
			return *v.num
		}
	}
	return nil
}

// any is the one value column that is set (nil if none).
func (v value) any() any {
	switch {
	case v.num != nil:
		return *v.num
	case v.str != nil:
		return *v.str
	case v.loc != nil:
		return v.loc
	}
	return nil
}

// Latest implements telemetry.Reader from the latest table.
func (t *Telemetry) Latest(ctx context.Context, vehicle uint64, since int64) ([]telemetry.LatestRow, error) {
	rows, err := t.pool.Query(ctx, `SELECT n.name, l.time, l.num, l.str, l.loc FROM latest l JOIN names n ON n.id = l.name
WHERE l.vehicle = $1 AND l.time >= $2`, int64(vehicle), since)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
	}
	defer rows.Close()
	var out []telemetry.LatestRow
	for rows.Next() {
		var r telemetry.LatestRow
		var v value
		if err := rows.Scan(&r.Name, &r.Time, &v.num, &v.str, &v.loc); err != nil {
			return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
		}
		r.Val = v.any()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
	}
	return out, nil
}

// LatestFrom implements telemetry.Reader from the latest_source table.
func (t *Telemetry) LatestFrom(ctx context.Context, vehicle uint64, source common.Address, since int64) ([]telemetry.LatestRow, error) {
	rows, err := t.pool.Query(ctx, `SELECT n.name, l.time, l.num, l.str, l.loc FROM latest_source l JOIN names n ON n.id = l.name
WHERE l.vehicle = $1 AND l.source = $2 AND l.time >= $3`, int64(vehicle), source.Bytes(), since)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d from %s: %w", vehicle, source, err)
	}
	defer rows.Close()
	var out []telemetry.LatestRow
	for rows.Next() {
		var r telemetry.LatestRow
		var v value
		if err := rows.Scan(&r.Name, &r.Time, &v.num, &v.str, &v.loc); err != nil {
			return nil, fmt.Errorf("couldn't read the latest values of vehicle %d from %s: %w", vehicle, source, err)
		}
		r.Val = v.any()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d from %s: %w", vehicle, source, err)
	}
	return out, nil
}

// Summary implements telemetry.Reader from the signals table.
func (t *Telemetry) Summary(ctx context.Context, vehicle uint64, since int64) ([]telemetry.SignalSummary, error) {
	rows, err := t.pool.Query(ctx, `SELECT n.name, COUNT(*), MIN(s.time), MAX(s.time)
		FROM signals s JOIN names n ON n.id = s.name WHERE s.vehicle = $1 AND s.time >= $2 GROUP BY s.name, n.name`, int64(vehicle), since)
	if err != nil {
		return nil, fmt.Errorf("couldn't summarize the data of vehicle %d: %w", vehicle, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (telemetry.SignalSummary, error) {
		var s telemetry.SignalSummary
		err := row.Scan(&s.Name, &s.Count, &s.First, &s.Last)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't summarize the data of vehicle %d: %w", vehicle, err)
	}
	return out, nil
}

// Records implements telemetry.Reader from the records table (events are stored as received).
func (t *Telemetry) Records(ctx context.Context, q telemetry.RecordsQuery) ([]telemetry.StoredRecord, error) {
	if q.Limit <= 0 || q.Lo >= q.Hi {
		return nil, nil
	}
	rows, err := t.pool.Query(ctx, `SELECT seq, source, id, time, received, pairing, event, signature FROM records
WHERE vehicle = $1 AND time >= $2 AND time < $3 AND (time, seq) > ($4, $5) ORDER BY time, seq LIMIT $6`,
		int64(q.Vehicle), q.Lo, q.Hi, q.AfterTime, q.AfterSeq, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the records of vehicle %d: %w", q.Vehicle, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (telemetry.StoredRecord, error) {
		r := telemetry.StoredRecord{Vehicle: q.Vehicle}
		var source []byte
		err := row.Scan(&r.Seq, &source, &r.ID, &r.Time, &r.Received, &r.Pairing, &r.Event, &r.Signature)
		r.Source = common.BytesToAddress(source)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the records of vehicle %d: %w", q.Vehicle, err)
	}
	return out, nil
}

// Runs implements telemetry.Reader in SQL: each value's class, a break where the class changes or the gap
// to the value before exceeds MaxGap, the runs numbered by a running count of breaks. There are no
// roll-ups here yet, so it scans the range.
func (t *Telemetry) Runs(ctx context.Context, q telemetry.RunsQuery) ([]telemetry.Run, error) {
	if q.Lo >= q.Hi {
		return nil, nil
	}
	cuts := q.Cuts
	if cuts == nil {
		cuts = []float64{}
	}
	rows, err := t.pool.Query(ctx, `WITH v AS (
	SELECT s.time, s.num, CASE WHEN $5 THEN (SELECT COUNT(*) FROM unnest($6::float8[]) c WHERE s.num > c)::float8 ELSE s.num END AS cls
	FROM signals s JOIN names n ON n.id = s.name
	WHERE s.vehicle = $1 AND n.name = $2 AND s.time >= $3 AND s.time < $4 AND s.num IS NOT NULL),
w AS (SELECT time, num, CASE WHEN LAG(cls) OVER o IS DISTINCT FROM cls OR ($7 > 0 AND time - LAG(time) OVER o > $7) THEN 1 ELSE 0 END AS brk
	FROM v WINDOW o AS (ORDER BY time)),
r AS (SELECT time, num, SUM(brk) OVER (ORDER BY time) AS run FROM w)
SELECT MIN(time), MAX(time), (array_agg(num ORDER BY time))[1], (array_agg(num ORDER BY time DESC))[1], COUNT(*)
FROM r GROUP BY run ORDER BY run`, int64(q.Vehicle), q.Signal, q.Lo, q.Hi, q.Cuts != nil, cuts, q.MaxGap)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the runs of %s of vehicle %d: %w", q.Signal, q.Vehicle, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (telemetry.Run, error) {
		var r telemetry.Run
		err := row.Scan(&r.Start, &r.End, &r.First, &r.Last, &r.Count)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the runs of %s of vehicle %d: %w", q.Signal, q.Vehicle, err)
	}
	return out, nil
}

// Active implements telemetry.Reader in SQL, counting the numeric values (num) per minute.
func (t *Telemetry) Active(ctx context.Context, q telemetry.ActiveQuery) ([]telemetry.Span, error) {
	const m = telemetry.MinuteMs
	lo, hi := q.Lo/m*m, (q.Hi+m-1)/m*m
	if lo >= hi {
		return nil, nil
	}
	rows, err := t.pool.Query(ctx, `SELECT s.time / 60000 AS minute FROM signals s
WHERE s.vehicle = $1 AND s.time >= $2 AND s.time < $3 AND s.num IS NOT NULL
GROUP BY minute HAVING COUNT(*) >= $4 AND COUNT(DISTINCT s.name) >= $5`, int64(q.Vehicle), lo, hi, q.MinCount, q.MinSignals)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the activity of vehicle %d: %w", q.Vehicle, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (telemetry.Span, error) {
		var unit int64
		err := row.Scan(&unit)
		return telemetry.Span{Start: unit * m, End: unit*m + m}, err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the activity of vehicle %d: %w", q.Vehicle, err)
	}
	return telemetry.MergeSpans(out), nil
}
