package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Roll-ups: the count, sum, minimum, maximum, first and last value of each signal of each vehicle per
// minute, five minutes, hour and UTC day (RollupWidths), so that a history query over weeks reads
// thousands of summary rows instead of millions of values. They are derived from the signals table, as
// the signals table is from the records:
//
//   - The indexer marks what it wrote: per vehicle and signal, the span [since, until] of measurement
//     times it indexed since the last roll, in the stale table (one upsert per vehicle and signal per
//     indexing chunk, like the latest table).
//   - Roll recomputes every unit of every level that overlaps a stale span, from the signals table for
//     the minutes and from the level below for the others, in one transaction that also empties stale.
//   - A query reads a unit from the roll-ups only when the unit is whole inside its range and not
//     stale; everything else (the range's unaligned ends, the stale span) comes from the signals table.
//     So an answer never depends on when the last roll ran.

// RollupWidths are the unit widths of the roll-up levels in milliseconds, level 0 first. Each divides
// the next.
var RollupWidths = []int64{int64(time.Minute / time.Millisecond), int64(5 * time.Minute / time.Millisecond),
	int64(time.Hour / time.Millisecond), int64(24 * time.Hour / time.Millisecond)}

// RollInterval is how often the indexer's loop rolls up what it indexed.
const RollInterval = 30 * time.Second

const rollupSchema = `
-- One row per vehicle, signal, level and unit (unit = measurement time in ms / the level's width) that has
-- values: cnt values; total, lo and hi their sum, minimum and maximum (numbers and booleans; unused for
-- other kinds); ft/fv and lt/lv the time and value of the first and last of them.
CREATE TABLE IF NOT EXISTS rollup (
	vehicle INTEGER NOT NULL, name INTEGER NOT NULL, level INTEGER NOT NULL, unit INTEGER NOT NULL,
	cnt INTEGER NOT NULL, total REAL, lo ANY, hi ANY, ft INTEGER NOT NULL, fv ANY, lt INTEGER NOT NULL, lv ANY,
	PRIMARY KEY (vehicle, name, level, unit)) WITHOUT ROWID;
-- The span of measurement times indexed since the last roll, per vehicle and signal.
CREATE TABLE IF NOT EXISTS stale (
	vehicle INTEGER NOT NULL, name INTEGER NOT NULL, since INTEGER NOT NULL, until INTEGER NOT NULL,
	PRIMARY KEY (vehicle, name)) WITHOUT ROWID;
`

// staleUpsert merges an indexing chunk's spans into the stale table.
const staleUpsert = `ON CONFLICT (vehicle, name) DO UPDATE SET since = MIN(since, excluded.since), until = MAX(until, excluded.until)`

// rollSQL returns the statement that recomputes the stale units of level k. (GROUP BY names the
// expression, not its alias: rollup has a column named unit, which an alias would not shadow.)
func rollSQL(k int) string {
	w := RollupWidths[k]
	if k == 0 {
		return fmt.Sprintf(`INSERT OR REPLACE INTO rollup (vehicle, name, level, unit, cnt, total, lo, hi, ft, fv, lt, lv)
SELECT g.vehicle, g.name, 0, g.unit, g.cnt, g.total, g.lo, g.hi,
	g.ft, (SELECT s.val FROM signals s WHERE s.vehicle = g.vehicle AND s.name = g.name AND s.time = g.ft),
	g.lt, (SELECT s.val FROM signals s WHERE s.vehicle = g.vehicle AND s.name = g.name AND s.time = g.lt)
FROM (SELECT s.vehicle, s.name, s.time / %[1]d AS unit, COUNT(*) AS cnt, SUM(s.val) AS total,
		MIN(s.val) AS lo, MAX(s.val) AS hi, MIN(s.time) AS ft, MAX(s.time) AS lt
	FROM stale d JOIN signals s ON s.vehicle = d.vehicle AND s.name = d.name
		AND s.time >= d.since / %[1]d * %[1]d AND s.time < (d.until / %[1]d + 1) * %[1]d
	GROUP BY s.vehicle, s.name, s.time / %[1]d) g`, w)
	}
	r := w / RollupWidths[k-1]
	return fmt.Sprintf(`INSERT OR REPLACE INTO rollup (vehicle, name, level, unit, cnt, total, lo, hi, ft, fv, lt, lv)
SELECT g.vehicle, g.name, %[3]d, g.unit, g.cnt, g.total, g.lo, g.hi,
	g.ft, (SELECT r.fv FROM rollup r WHERE r.vehicle = g.vehicle AND r.name = g.name AND r.level = %[4]d
		AND r.unit >= g.unit * %[2]d AND r.unit < (g.unit + 1) * %[2]d ORDER BY r.unit LIMIT 1),
	g.lt, (SELECT r.lv FROM rollup r WHERE r.vehicle = g.vehicle AND r.name = g.name AND r.level = %[4]d
		AND r.unit >= g.unit * %[2]d AND r.unit < (g.unit + 1) * %[2]d ORDER BY r.unit DESC LIMIT 1)
FROM (SELECT r.vehicle, r.name, r.unit / %[2]d AS unit, SUM(r.cnt) AS cnt, SUM(r.total) AS total,
		MIN(r.lo) AS lo, MAX(r.hi) AS hi, MIN(r.ft) AS ft, MAX(r.lt) AS lt
	FROM stale d JOIN rollup r ON r.vehicle = d.vehicle AND r.name = d.name AND r.level = %[4]d
		AND r.unit >= d.since / %[1]d * %[2]d AND r.unit < (d.until / %[1]d + 1) * %[2]d
	GROUP BY r.vehicle, r.name, r.unit / %[2]d) g`, w, r, k, k-1)
}

// Roll brings the roll-ups up to date with the signals table and returns how many vehicle-signal spans
// it rolled. The indexer's loop calls it every RollInterval; queries are correct without it (they read
// stale spans from the signals table), only slower.
func (t *Telemetry) Roll(ctx context.Context) (int, error) {
	t.indexMu.Lock()
	defer t.indexMu.Unlock()
	return t.roll(ctx)
}

func (t *Telemetry) roll(ctx context.Context) (int, error) {
	tx, err := t.idx.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("couldn't begin a roll-up: %w", err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM stale`).Scan(&n); err != nil {
		return 0, fmt.Errorf("couldn't read the stale spans: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	for k := range RollupWidths {
		if _, err := tx.ExecContext(ctx, rollSQL(k)); err != nil {
			return 0, fmt.Errorf("couldn't roll up level %d: %w", k, err)
		}
	}
	names := t.numericNames()
	for _, q := range rollActivity {
		if _, err := tx.ExecContext(ctx, q, names); err != nil {
			return 0, fmt.Errorf("couldn't roll up activity: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM stale`); err != nil {
		return 0, fmt.Errorf("couldn't clear the stale spans: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("couldn't commit a roll-up: %w", err)
	}
	t.latest.gen.Add(1) // the stale spans changed
	return n, nil
}

// rollupVersion is the version of the roll-ups: 1 the roll-up table, 2 the activity table.
const rollupVersion = 2

// migrateRollups marks everything stale in a signals database made before the roll-ups of rollupVersion
// existed, so that the first roll computes them.
func migrateRollups(ctx context.Context, t *Telemetry) error {
	var v int64
	err := t.idx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'rollup_version'`).Scan(&v)
	if err == nil && v == rollupVersion {
		return nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("couldn't read the roll-up version: %w", err)
	}
	_, err = t.idx.ExecContext(ctx, fmt.Sprintf(`
INSERT INTO stale (vehicle, name, since, until) SELECT vehicle, name, 0, time FROM latest WHERE true `+staleUpsert+`;
INSERT INTO meta (key, value) VALUES ('rollup_version', %d) ON CONFLICT (key) DO UPDATE SET value = excluded.value;`, rollupVersion))
	if err != nil {
		return fmt.Errorf("couldn't mark the signals for a first roll-up: %w", err)
	}
	return nil
}
