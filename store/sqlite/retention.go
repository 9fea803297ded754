package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/glovebox/glovebox/telemetry"
)

// Deletion (telemetry.Deleter). Each of the two files keeps the tally of what was deleted from it in a
// deletions table, updated in the transaction that deletes: records.db the records, signals.db the
// values and events and the completion times. The indexer's lock is held for a whole batch, so a chunk
// of records read for indexing before the batch deleted them is indexed (and its values deleted by the
// batch) rather than after. Deleted rows' bytes are overwritten in the database files (secure_delete).

const deletionsSchema = `
CREATE TABLE IF NOT EXISTS deletions (
	vehicle INTEGER NOT NULL, job TEXT NOT NULL, records INTEGER NOT NULL DEFAULT 0, vals INTEGER NOT NULL DEFAULT 0,
	events INTEGER NOT NULL DEFAULT 0, completed_at INTEGER NOT NULL DEFAULT 0, swept_at INTEGER NOT NULL DEFAULT 0,
	dirty INTEGER NOT NULL DEFAULT 0, -- derived rows were deleted since Finish last ran (signals.db only)
	PRIMARY KEY (vehicle, job));
`

var _ telemetry.Deleter = (*Telemetry)(nil)

// DeleteBatch implements telemetry.Deleter.
func (t *Telemetry) DeleteBatch(ctx context.Context, job telemetry.DeleteJob, limit int) (telemetry.Deleted, bool, error) {
	t.indexMu.Lock()
	defer t.indexMu.Unlock()
	var d telemetry.Deleted
	// The records, in their own short transaction: the ingest writer waits for it.
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return d, false, fmt.Errorf("couldn't begin deleting records: %w", err)
	}
	defer tx.Rollback()
	// A record holds tens to hundreds of values and its bytes are overwritten (secure_delete): a hundredth
	// of the batch keeps this transaction, which ingest waits for, short. The derived rows are in another
	// file, which ingest does not wait for.
	res, err := tx.ExecContext(ctx, `DELETE FROM records WHERE seq IN (SELECT seq FROM records WHERE vehicle = ? AND time >= ? AND time < ? LIMIT ?)`,
		job.Vehicle, job.From, job.To, max(1, limit/100))
	if err != nil {
		return d, false, fmt.Errorf("couldn't delete records: %w", err)
	}
	d.Records, _ = res.RowsAffected()
	if d.Records > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO deletions (vehicle, job, records) VALUES (?, ?, ?)
			ON CONFLICT (vehicle, job) DO UPDATE SET records = records + excluded.records`, job.Vehicle, job.Key, d.Records); err != nil {
			return d, false, fmt.Errorf("couldn't count deleted records: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return d, false, fmt.Errorf("couldn't commit deleting records: %w", err)
	}

	// The derived rows.
	itx, err := t.idx.BeginTx(ctx, nil)
	if err != nil {
		return d, false, fmt.Errorf("couldn't begin deleting values: %w", err)
	}
	defer itx.Rollback()
	names := t.nameIDs()
	budget := int64(limit)
	var rolled int64
	// Activity units that overlap the range go first, as the roll-ups' below.
	for k, w := range []int64{telemetry.MinuteMs, hourMs} {
		if budget <= 0 {
			break
		}
		res, err := itx.ExecContext(ctx, `DELETE FROM activity WHERE vehicle = ? AND level = ? AND unit IN
			(SELECT unit FROM activity WHERE vehicle = ? AND level = ? AND unit >= ? AND unit <= ? LIMIT ?)`,
			job.Vehicle, k, job.Vehicle, k, floorDiv(job.From, w), floorDiv(job.To-1, w), budget)
		if err != nil {
			return d, false, fmt.Errorf("couldn't delete activity: %w", err)
		}
		n, _ := res.RowsAffected()
		rolled += n
		budget -= n
	}
	for _, name := range names {
		if budget <= 0 {
			break
		}
		// Roll-up units that overlap the range go first: a missing unit reads as no values, and the
		// units at the range's ends are recomputed from what remains when the job is done.
		for k, w := range RollupWidths {
			if budget <= 0 {
				break
			}
			res, err := itx.ExecContext(ctx, `DELETE FROM rollup WHERE vehicle = ? AND name = ? AND level = ? AND unit IN
				(SELECT unit FROM rollup WHERE vehicle = ? AND name = ? AND level = ? AND unit >= ? AND unit <= ? LIMIT ?)`,
				job.Vehicle, name, k, job.Vehicle, name, k, floorDiv(job.From, w), floorDiv(job.To-1, w), budget)
			if err != nil {
				return d, false, fmt.Errorf("couldn't delete roll-ups: %w", err)
			}
			n, _ := res.RowsAffected()
			rolled += n
			budget -= n
		}
		if budget <= 0 {
			break
		}
		// A range of the primary key, found by the time of the first value past the budget: one walk of
		// the B-tree (a subquery's list of times cost a lookup per deleted row).
		until := job.To
		err := itx.QueryRowContext(ctx, `SELECT time FROM signals WHERE vehicle = ? AND name = ? AND time >= ? AND time < ?
			ORDER BY time LIMIT 1 OFFSET ?`, job.Vehicle, name, job.From, job.To, budget).Scan(&until)
		if err != nil && err != sql.ErrNoRows {
			return d, false, fmt.Errorf("couldn't find a batch of signal values: %w", err)
		}
		res, err := itx.ExecContext(ctx, `DELETE FROM signals WHERE vehicle = ? AND name = ? AND time >= ? AND time < ?`,
			job.Vehicle, name, job.From, until)
		if err != nil {
			return d, false, fmt.Errorf("couldn't delete signal values: %w", err)
		}
		n, _ := res.RowsAffected()
		d.Values += n
		budget -= n
	}
	if budget > 0 {
		res, err := itx.ExecContext(ctx, `DELETE FROM events WHERE (vehicle, time, name, source) IN
			(SELECT vehicle, time, name, source FROM events WHERE vehicle = ? AND time >= ? AND time < ? LIMIT ?)`,
			job.Vehicle, job.From, job.To, budget)
		if err != nil {
			return d, false, fmt.Errorf("couldn't delete events: %w", err)
		}
		d.Events, _ = res.RowsAffected()
	}
	res, err = itx.ExecContext(ctx, `DELETE FROM latest WHERE vehicle = ? AND time >= ? AND time < ?`, job.Vehicle, job.From, job.To)
	if err != nil {
		return d, false, fmt.Errorf("couldn't delete latest values: %w", err)
	}
	stale, _ := res.RowsAffected()
	// A source's newest values in the range go too, and are not restored from older ones (the signals
	// table does not keep sources): LatestFrom then lacks the signal until the source sends it again.
	res, err = itx.ExecContext(ctx, `DELETE FROM latest_source WHERE vehicle = ? AND time >= ? AND time < ?`, job.Vehicle, job.From, job.To)
	if err != nil {
		return d, false, fmt.Errorf("couldn't delete latest values by source: %w", err)
	}
	bySource, _ := res.RowsAffected()
	stale += bySource
	derived := d.Values + d.Events + rolled + stale
	if _, err := itx.ExecContext(ctx, `INSERT INTO deletions (vehicle, job, vals, events, dirty) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (vehicle, job) DO UPDATE SET vals = vals + excluded.vals, events = events + excluded.events,
			dirty = MAX(dirty, excluded.dirty)`,
		job.Vehicle, job.Key, d.Values, d.Events, min(derived, 1)); err != nil {
		return d, false, fmt.Errorf("couldn't count deleted values: %w", err)
	}
	if err := itx.Commit(); err != nil {
		return d, false, fmt.Errorf("couldn't commit deleting values: %w", err)
	}
	t.latest.gen.Add(1)
	return d, d.Records+derived == 0, nil
}

// Finish implements telemetry.Deleter: after a job deleted derived rows, the latest value of each signal
// is the newest that remains, and the roll-up units at the range's ends are recomputed from what remains
// in them (the units inside the range were deleted).
func (t *Telemetry) Finish(ctx context.Context, job telemetry.DeleteJob, now int64) error {
	t.indexMu.Lock()
	defer t.indexMu.Unlock()
	tx, err := t.idx.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't begin finishing a deletion: %w", err)
	}
	defer tx.Rollback()
	var dirty int64
	if err := tx.QueryRowContext(ctx, `SELECT dirty FROM deletions WHERE vehicle = ? AND job = ?`, job.Vehicle, job.Key).Scan(&dirty); err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("couldn't read the deletion of %s: %w", job.Key, err)
	}
	if dirty != 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO latest (vehicle, name, time, val)
			SELECT s.vehicle, s.name, s.time, s.val FROM names n JOIN signals s ON s.vehicle = ? AND s.name = n.id
				AND s.time = (SELECT MAX(time) FROM signals WHERE vehicle = ? AND name = n.id)
			WHERE NOT EXISTS (SELECT 1 FROM latest l WHERE l.vehicle = ? AND l.name = n.id)`, job.Vehicle, job.Vehicle, job.Vehicle); err != nil {
			return fmt.Errorf("couldn't restore latest values: %w", err)
		}
		for _, name := range t.nameIDs() {
			for _, at := range []int64{job.From, job.To - 1} {
				if at < 0 {
					continue
				}
				for k := range RollupWidths {
					q := strings.Replace(rollSQL(k), "FROM stale d", "FROM (SELECT ? AS vehicle, ? AS name, ? AS since, ? AS until) d", 1)
					if _, err := tx.ExecContext(ctx, q, job.Vehicle, name, at, at); err != nil {
						return fmt.Errorf("couldn't recompute roll-ups at the end of a deleted range: %w", err)
					}
				}
			}
		}
		for _, at := range []int64{job.From, job.To - 1} {
			if at < 0 {
				continue
			}
			for _, q := range rollActivity {
				q = strings.Replace(q, staleVehicles, "(SELECT ? AS vehicle, ? AS since, ? AS until)", 1)
				var err error
				if strings.Contains(q, "json_each") {
					_, err = tx.ExecContext(ctx, q, job.Vehicle, at, at, t.numericNames())
				} else {
					_, err = tx.ExecContext(ctx, q, job.Vehicle, at, at)
				}
				if err != nil {
					return fmt.Errorf("couldn't recompute activity at the end of a deleted range: %w", err)
				}
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO deletions (vehicle, job, completed_at, swept_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (vehicle, job) DO UPDATE SET dirty = 0, swept_at = MAX(swept_at, excluded.swept_at),
			completed_at = CASE WHEN completed_at = 0 THEN excluded.completed_at ELSE completed_at END`,
		job.Vehicle, job.Key, now, now); err != nil {
		return fmt.Errorf("couldn't record the deletion of %s done: %w", job.Key, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("couldn't commit finishing a deletion: %w", err)
	}
	t.latest.gen.Add(1)
	return nil
}

// nameIDs returns the ids of every signal name, in order.
func (t *Telemetry) nameIDs() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]int64, 0, len(t.names))
	for _, id := range t.names {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Tallies implements telemetry.Deleter.
func (t *Telemetry) Tallies(ctx context.Context, vehicle uint64) ([]telemetry.Tally, error) {
	byKey := map[string]*telemetry.Tally{}
	get := func(k string) *telemetry.Tally {
		if byKey[k] == nil {
			byKey[k] = &telemetry.Tally{Key: k, Vehicle: vehicle}
		}
		return byKey[k]
	}
	if err := eachRow(ctx, t.db, `SELECT job, records FROM deletions WHERE vehicle = ?`, vehicle, func(r *sql.Rows) error {
		var k string
		var n int64
		if err := r.Scan(&k, &n); err != nil {
			return err
		}
		get(k).Records = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("couldn't read the deletions of vehicle %d: %w", vehicle, err)
	}
	if err := eachRow(ctx, t.idx, `SELECT job, vals, events, completed_at, swept_at FROM deletions WHERE vehicle = ?`, vehicle, func(r *sql.Rows) error {
		var k string
		var vals, events, completed, swept int64
		if err := r.Scan(&k, &vals, &events, &completed, &swept); err != nil {
			return err
		}
		tl := get(k)
		tl.Values, tl.Events, tl.CompletedAt, tl.SweptAt = vals, events, completed, swept
		return nil
	}); err != nil {
		return nil, fmt.Errorf("couldn't read the deletions of vehicle %d: %w", vehicle, err)
	}
	out := make([]telemetry.Tally, 0, len(byKey))
	for _, tl := range byKey {
		out = append(out, *tl)
	}
	return out, nil
}

func eachRow(ctx context.Context, db *sql.DB, q string, arg any, f func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, q, arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
