package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/glovebox/glovebox/telemetry"
)

var _ telemetry.Deleter = (*Telemetry)(nil)

// DeleteBatch implements telemetry.Deleter: one transaction deletes up to limit/100 records (a record
// holds tens to hundreds of values), up to limit signal values and events of the job's range, the latest values in it, and counts them in deletions.
// The record keys (source, id, digest, time) stay, so that a device sending a deleted record again is
// answered as for a duplicate and the record is not stored again.
func (t *Telemetry) DeleteBatch(ctx context.Context, job telemetry.DeleteJob, limit int) (telemetry.Deleted, bool, error) {
	var d telemetry.Deleted
	var done bool
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		d = telemetry.Deleted{}
		tag, err := tx.Exec(ctx, `DELETE FROM records WHERE (time, seq) IN
			(SELECT time, seq FROM records WHERE vehicle = $1 AND time >= $2 AND time < $3 LIMIT $4)`, int64(job.Vehicle), job.From, job.To, max(1, limit/100))
		if err != nil {
			return fmt.Errorf("couldn't delete records: %w", err)
		}
		d.Records = tag.RowsAffected()
		// Per signal name, so that each statement is one range of the primary key.
		rows, err := tx.Query(ctx, `SELECT id FROM names ORDER BY id`)
		if err != nil {
			return fmt.Errorf("couldn't list signal names: %w", err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("couldn't list signal names: %w", err)
		}
		budget := int64(limit)
		for _, name := range names {
			if budget <= 0 {
				break
			}
			tag, err := tx.Exec(ctx, `DELETE FROM signals WHERE vehicle = $1 AND name = $2 AND time IN
				(SELECT time FROM signals WHERE vehicle = $1 AND name = $2 AND time >= $3 AND time < $4 LIMIT $5)`,
				int64(job.Vehicle), name, job.From, job.To, budget)
			if err != nil {
				return fmt.Errorf("couldn't delete signal values: %w", err)
			}
			d.Values += tag.RowsAffected()
			budget -= tag.RowsAffected()
		}
		if budget > 0 {
			tag, err := tx.Exec(ctx, `DELETE FROM events WHERE (vehicle, time, name, source) IN
				(SELECT vehicle, time, name, source FROM events WHERE vehicle = $1 AND time >= $2 AND time < $3 LIMIT $4)`,
				int64(job.Vehicle), job.From, job.To, budget)
			if err != nil {
				return fmt.Errorf("couldn't delete events: %w", err)
			}
			d.Events = tag.RowsAffected()
		}
		tag, err = tx.Exec(ctx, `DELETE FROM latest WHERE vehicle = $1 AND time >= $2 AND time < $3`, int64(job.Vehicle), job.From, job.To)
		if err != nil {
			return fmt.Errorf("couldn't delete latest values: %w", err)
		}
		derived := d.Values + d.Events + tag.RowsAffected()
		// A source's newest values in the range go too, and are not restored from older ones (the signals
		// table does not keep sources): LatestFrom then lacks the signal until the source sends it again.
		tag, err = tx.Exec(ctx, `DELETE FROM latest_source WHERE vehicle = $1 AND time >= $2 AND time < $3`, int64(job.Vehicle), job.From, job.To)
		if err != nil {
			return fmt.Errorf("couldn't delete latest values by source: %w", err)
		}
		derived += tag.RowsAffected()
		if _, err := tx.Exec(ctx, `INSERT INTO deletions (vehicle, job, records, vals, events, dirty) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (vehicle, job) DO UPDATE SET records = deletions.records + excluded.records, vals = deletions.vals + excluded.vals,
				events = deletions.events + excluded.events, dirty = deletions.dirty OR excluded.dirty`,
			int64(job.Vehicle), job.Key, d.Records, d.Values, d.Events, derived > 0); err != nil {
			return fmt.Errorf("couldn't count deleted rows: %w", err)
		}
		done = d.Records+derived == 0
		return nil
	})
	return d, done, err
}

// Finish implements telemetry.Deleter.
func (t *Telemetry) Finish(ctx context.Context, job telemetry.DeleteJob, now int64) error {
	return pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		var dirty bool
		err := tx.QueryRow(ctx, `SELECT dirty FROM deletions WHERE vehicle = $1 AND job = $2`, int64(job.Vehicle), job.Key).Scan(&dirty)
		if err != nil && err != pgx.ErrNoRows {
			return fmt.Errorf("couldn't read the deletion of %s: %w", job.Key, err)
		}
		if dirty {
			if _, err := tx.Exec(ctx, `INSERT INTO latest (vehicle, name, time, num, str, loc)
				SELECT DISTINCT ON (name) vehicle, name, time, num, str, loc FROM signals
				WHERE vehicle = $1 AND name NOT IN (SELECT name FROM latest WHERE vehicle = $1)
				ORDER BY name, time DESC
				ON CONFLICT (vehicle, name) DO NOTHING`, int64(job.Vehicle)); err != nil {
				return fmt.Errorf("couldn't restore latest values: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO deletions (vehicle, job, completed_at, swept_at) VALUES ($1, $2, $3, $3)
			ON CONFLICT (vehicle, job) DO UPDATE SET dirty = false, swept_at = GREATEST(deletions.swept_at, excluded.swept_at),
				completed_at = CASE WHEN deletions.completed_at = 0 THEN excluded.completed_at ELSE deletions.completed_at END`,
			int64(job.Vehicle), job.Key, now); err != nil {
			return fmt.Errorf("couldn't record the deletion of %s done: %w", job.Key, err)
		}
		return nil
	})
}

// Tallies implements telemetry.Deleter.
func (t *Telemetry) Tallies(ctx context.Context, vehicle uint64) ([]telemetry.Tally, error) {
	rows, err := t.pool.Query(ctx, `SELECT job, records, vals, events, completed_at, swept_at FROM deletions WHERE vehicle = $1`, int64(vehicle))
	if err != nil {
		return nil, fmt.Errorf("couldn't read the deletions of vehicle %d: %w", vehicle, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (telemetry.Tally, error) {
		tl := telemetry.Tally{Vehicle: vehicle}
		err := r.Scan(&tl.Key, &tl.Records, &tl.Values, &tl.Events, &tl.CompletedAt, &tl.SweptAt)
		return tl, err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the deletions of vehicle %d: %w", vehicle, err)
	}
	return out, nil
}
