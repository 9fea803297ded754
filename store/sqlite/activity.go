package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/glovebox/glovebox/telemetry"
)

// Activity: per vehicle and minute, how many numeric (and boolean) values of how many signals it has,
// and per hour a summary of its minutes, so that frequency analysis over a month reads about 750 hour
// rows and the minutes of the hours that are not uniformly active, instead of a minute row per signal.
// Roll keeps it with the roll-ups (from the minute roll-ups of the stale spans' vehicles); a query reads
// the stale span of a vehicle from the signals table, as the roll-ups do.

const activitySchema = `
-- level 0: one row per vehicle and minute (unit = ms / 60,000) with numeric values: cnt values of sigs
-- signals (mins 1, lowcnt = cnt, lowsigs = sigs). level 1: one row per vehicle and hour (unit = ms /
-- 3,600,000) with such minutes: their total cnt and largest sigs, how many minutes (mins), and the
-- smallest cnt and sigs of a minute (lowcnt, lowsigs).
CREATE TABLE IF NOT EXISTS activity (
	vehicle INTEGER NOT NULL, level INTEGER NOT NULL, unit INTEGER NOT NULL,
	cnt INTEGER NOT NULL, sigs INTEGER NOT NULL, mins INTEGER NOT NULL, lowcnt INTEGER NOT NULL, lowsigs INTEGER NOT NULL,
	PRIMARY KEY (vehicle, level, unit)) WITHOUT ROWID;
`

const hourMs = 60 * telemetry.MinuteMs

// staleVehicles is the span of measurement times indexed since the last roll, per vehicle.
const staleVehicles = `(SELECT vehicle, MIN(since) AS since, MAX(until) AS until FROM stale GROUP BY vehicle)`

// rollActivity recomputes the minutes and hours of the stale vehicles' spans (after the roll-ups' minutes,
// before stale is emptied). Its one argument is the numeric names (numericNames).
var rollActivity = []string{
	`INSERT OR REPLACE INTO activity (vehicle, level, unit, cnt, sigs, mins, lowcnt, lowsigs)
SELECT r.vehicle, 0, r.unit, SUM(r.cnt), COUNT(*), 1, SUM(r.cnt), COUNT(*)
FROM ` + staleVehicles + ` d CROSS JOIN json_each(?) n CROSS JOIN rollup r
WHERE r.vehicle = d.vehicle AND r.name = n.value AND r.level = 0 AND r.unit >= d.since / 60000 AND r.unit <= d.until / 60000
GROUP BY r.vehicle, r.unit`,
	`INSERT OR REPLACE INTO activity (vehicle, level, unit, cnt, sigs, mins, lowcnt, lowsigs)
SELECT a.vehicle, 1, a.unit / 60, SUM(a.cnt), MAX(a.sigs), COUNT(*), MIN(a.cnt), MIN(a.sigs)
FROM ` + staleVehicles + ` d CROSS JOIN activity a
WHERE a.vehicle = d.vehicle AND a.level = 0 AND a.unit >= d.since / 3600000 * 60 AND a.unit < (d.until / 3600000 + 1) * 60
GROUP BY a.vehicle, a.unit / 60`,
}

// numericNames returns the ids of the stored signals that are numbers or booleans in the catalog, as a
// JSON array.
func (t *Telemetry) numericNames() string { return jsonText(t.numericIDs()) }

// numericIDs returns the ids of the stored signals that are numbers or booleans in the catalog, in order.
func (t *Telemetry) numericIDs() []int64 {
	t.mu.Lock()
	ids := make([]int64, 0, len(t.names))
	for name, id := range t.names {
		if s, ok := t.cat.Lookup(name); ok && (s.Kind == telemetry.KindNumber || s.Kind == telemetry.KindBool) {
			ids = append(ids, id)
		}
	}
	t.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// Active implements telemetry.Reader: whole hours outside the vehicle's stale span come from the hour rows
// (an hour of 60 minutes that all qualify is one span), the other minutes from the minute rows, the stale
// span from the signals table.
func (t *Telemetry) Active(ctx context.Context, q telemetry.ActiveQuery) ([]telemetry.Span, error) {
	const m = telemetry.MinuteMs
	lo, hi := floorTo(q.Lo, m), floorTo(q.Hi+m-1, m)
	if lo >= hi {
		return nil, nil
	}
	var since, until sql.NullInt64
	if err := t.history.queryRow(ctx, `SELECT MIN(s.since), MAX(s.until) FROM json_each(?) j CROSS JOIN stale s WHERE s.vehicle = j.value`,
		jsonText([]uint64{q.Vehicle})).Scan(&since, &until); err != nil {
		return nil, fmt.Errorf("couldn't read the roll-up state of vehicle %d: %w", q.Vehicle, err)
	}
	var spans []telemetry.Span
	var minutes [][2]int64 // ranges of minute units
	addMinutes := func(a, b int64) {
		if a < b {
			minutes = append(minutes, [2]int64{a / m, b / m})
		}
	}
	var hours [][2]int64 // ranges of hour units
	cover := func(a, b int64) {
		ha, hb := floorTo(a+hourMs-1, hourMs), floorTo(b, hourMs)
		if ha >= hb {
			addMinutes(a, b)
			return
		}
		addMinutes(a, ha)
		hours = append(hours, [2]int64{ha / hourMs, hb / hourMs})

		addMinutes(hb, b)
	}
	var rawLo, rawHi int64
	if since.Valid {
		rawLo, rawHi = max(lo, floorTo(since.Int64, m)), min(hi, floorTo(until.Int64, m)+m)
		cover(lo, min(hi, rawLo))
		cover(max(lo, rawHi), hi)
	} else {
		cover(lo, hi)
	}
	each := func(what, sqlText string, args []any, row func(rows *sql.Rows) error) error {
		rows, err := t.readQuery(ctx, sqlText, args...)
		if err != nil {
			return fmt.Errorf("couldn't read the %s of vehicle %d: %w", what, q.Vehicle, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows); err != nil {
				return fmt.Errorf("couldn't read the %s of vehicle %d: %w", what, q.Vehicle, err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("couldn't read the %s of vehicle %d: %w", what, q.Vehicle, err)
		}
		return nil
	}
	// [vehicle, level, first unit, end unit]
	keys := func(level int64, ranges [][2]int64) string {
		ks := make([][4]int64, len(ranges))
		for i, r := range ranges {
			ks[i] = [4]int64{int64(q.Vehicle), level, r[0], r[1]}
		}
		return jsonText(ks)
	}
	const where = `FROM json_each(?) j CROSS JOIN activity a
WHERE a.vehicle = j.value ->> 0 AND a.level = j.value ->> 1 AND a.unit >= j.value ->> 2 AND a.unit < j.value ->> 3`
	if len(hours) > 0 {
		err := each("hourly activity", `SELECT a.unit, a.mins, a.lowcnt, a.lowsigs, a.cnt, a.sigs `+where, []any{keys(1, hours)}, func(rows *sql.Rows) error {
			var unit, mins, lowcnt, lowsigs, cnt, sigs int64
			if err := rows.Scan(&unit, &mins, &lowcnt, &lowsigs, &cnt, &sigs); err != nil {
				return err
			}
			switch {
			case mins == 60 && lowcnt >= int64(q.MinCount) && lowsigs >= int64(q.MinSignals):
				spans = append(spans, telemetry.Span{Start: unit * hourMs, End: (unit + 1) * hourMs})
			case cnt >= int64(q.MinCount) && sigs >= int64(q.MinSignals): // some minute may qualify
				minutes = append(minutes, [2]int64{unit * 60, unit*60 + 60})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(minutes) > 0 {
		err := each("activity", `SELECT a.unit `+where+` AND a.cnt >= ? AND a.sigs >= ?`,
			[]any{keys(0, minutes), q.MinCount, q.MinSignals}, func(rows *sql.Rows) error {
				var unit int64
				if err := rows.Scan(&unit); err != nil {
					return err
				}
				spans = append(spans, telemetry.Span{Start: unit * m, End: unit*m + m})
				return nil
			})
		if err != nil {
			return nil, err
		}
	}
	if rawLo < rawHi {
		var ks [][4]int64 // [vehicle, name, from, to]
		for _, name := range t.numericIDs() {
			ks = append(ks, [4]int64{int64(q.Vehicle), name, rawLo, rawHi})
		}
		err := each("values", `SELECT s.time / 60000 AS minute FROM json_each(?) j CROSS JOIN signals s
WHERE s.vehicle = j.value ->> 0 AND s.name = j.value ->> 1 AND s.time >= j.value ->> 2 AND s.time < j.value ->> 3
GROUP BY minute HAVING COUNT(*) >= ? AND COUNT(DISTINCT s.name) >= ?`,
			[]any{jsonText(ks), q.MinCount, q.MinSignals}, func(rows *sql.Rows) error {
				var unit int64
				if err := rows.Scan(&unit); err != nil {
					return err
				}
				spans = append(spans, telemetry.Span{Start: unit * m, End: unit*m + m})
				return nil
			})
		if err != nil {
			return nil, err
		}
	}
	return telemetry.MergeSpans(spans), nil
}
