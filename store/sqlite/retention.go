package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
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
	// Values the indexer holds go into chunks first, where the deletion finds them.
	if err := t.writeHeld(ctx); err != nil {
		return d, false, fmt.Errorf("couldn't write the hours the indexer holds: %w", err)
	}
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
	budget := int64(limit)
	for _, name := range t.nameIDs() {
		if budget <= 0 {
			break
		}
		sg, err := t.sigOf(job.Vehicle, name)
		if err != nil {
			return d, false, err
		}
		n, err := deleteChunkValues(ctx, itx, sg, job.From, job.To, budget)
		if err != nil {
			return d, false, err
		}
		d.Values += n
		budget -= n
	}
	if budget > 0 {
		n, err := deleteOpenValues(ctx, itx, t, job.Vehicle, job.From, job.To, budget)
		if err != nil {
			return d, false, err
		}
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
	// A source's newest values in the range go too, and are not restored from older ones (the values do
	// not keep sources): LatestFrom then lacks the signal until the source sends it again.
	stale, err := t.deleteNewest(ctx, itx, job.Vehicle, job.From, job.To)
	if err != nil {
		return d, false, err
	}
	derived := d.Values + d.Events + stale
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

// deleteChunkValues deletes up to budget values of s measured in [from, to) from its chunks: a chunk
// inside the range whole (both its rows), one that straddles an end (or holds more than the budget) by
// decoding it and writing what remains in its place. It returns how many values it deleted.
func deleteChunkValues(ctx context.Context, tx dbtx, s sig, from, to, budget int64) (int64, error) {
	cs, err := readChunks(ctx, tx, s, from, to, false)
	if err != nil {
		return 0, err
	}
	var deleted int64
	for i := range cs {
		c := &cs[i]
		if budget <= 0 {
			break
		}
		if c.start >= from && c.end < to && c.cnt <= budget {
			if err := deleteChunks(ctx, tx, s, c.start, c.start+1); err != nil {
				return deleted, err
			}
			deleted, budget = deleted+c.cnt, budget-c.cnt
			continue
		}
		pts, err := c.decode(ctx, tx, s, nil)
		if err != nil {
			return deleted, err
		}
		keep := pts[:0:0]
		for _, p := range pts {
			if p.T >= from && p.T < to && budget > 0 {
				deleted, budget = deleted+1, budget-1
				continue
			}
			keep = append(keep, p)
		}
		if len(keep) == len(pts) {
			continue
		}
		if err := deleteChunks(ctx, tx, s, c.start, c.start+1); err != nil {
			return deleted, err
		}
		if err := insertChunks(ctx, tx, s, keep); err != nil {
			return deleted, fmt.Errorf("couldn't write what remains of the chunk of %s from %d: %w", s, c.start, err)
		}
	}
	return deleted, nil
}

// Finish implements telemetry.Deleter: after a job deleted derived rows, the latest value of each signal
// is the newest that remains, in a chunk or a row.
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
		if err := t.restoreLatest(ctx, tx, job.Vehicle); err != nil {
			return err
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

// restoreLatest gives each signal of vehicle without a latest value the newest that remains: its newest
// open value, or the last value of its newest chunk if that is as new or newer.
func (t *Telemetry) restoreLatest(ctx context.Context, tx *sql.Tx, vehicle uint64) error {
	have, err := readNewest(ctx, tx, vehicle, nil)
	if err != nil {
		return err
	}
	var missing []int64
	if err := eachQueryRow(ctx, tx, `SELECT id FROM names ORDER BY id`, nil, func(scan func(...any) error) error {
		var id int64
		if err := scan(&id); err != nil {
			return err
		}
		if !slices.ContainsFunc(have, func(n newest) bool { return n.name == id }) {
			missing = append(missing, id)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("couldn't find the signals of vehicle %d without a latest value: %w", vehicle, err)
	}
	if len(missing) == 0 {
		return nil
	}
	open, err := newestOpen(ctx, tx, vehicle)
	if err != nil {
		return err
	}
	var add []newest
	for _, name := range missing {
		p, ok := open[name]
		var end int64
		var lv any
		err := tx.QueryRowContext(ctx, `SELECT end, lv FROM chunk_sums WHERE vehicle = ? AND name = ? ORDER BY start DESC LIMIT 1`, vehicle, name).Scan(&end, &lv)
		switch {
		case err == nil && (!ok || p.T <= end):
			s, err := t.sigOf(vehicle, name)
			if err != nil {
				return err
			}
			if lv, err = pointValue(s.kind, lv); err != nil {
				return fmt.Errorf("the newest chunk of %s: %w", s, err)
			}
			p, ok = series.Point{T: end, V: lv}, true
		case err != nil && err != sql.ErrNoRows:
			return fmt.Errorf("couldn't read the newest chunk of signal %d of vehicle %d: %w", name, vehicle, err)
		}
		if ok {
			add = append(add, newest{name, p.T, p.V})
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := t.updateLatest(ctx, tx, false, map[latestKey][]newest{{vehicle: vehicle}: add}, nil); err != nil {
		return fmt.Errorf("couldn't restore the latest values of vehicle %d: %w", vehicle, err)
	}
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
