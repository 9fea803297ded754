package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

var _ telemetry.Deleter = (*Telemetry)(nil)

// DeleteBatch implements telemetry.Deleter: one transaction deletes up to limit/100 records (a record
// holds tens to hundreds of values), up to limit signal values in rows and chunks (deleteChunks: whole
// chunks inside the range; one cut, decoded and re-encoded, where the budget or the range ends inside
// it), events of the range, the latest values in it, and counts them in deletions.
// The record keys (source, id, digest, time) stay, so that a device sending a deleted record again is
// answered as for a duplicate and the record is not stored again.
func (t *Telemetry) DeleteBatch(ctx context.Context, job telemetry.DeleteJob, limit int) (telemetry.Deleted, bool, error) {
	var d telemetry.Deleted
	var done bool
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		d = telemetry.Deleted{}
		// The sealer's lock: no sealing transaction holds values taken from rows this batch deletes.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockSeal); err != nil {
			return fmt.Errorf("couldn't take the sealing lock: %w", err)
		}
		if err := t.dropMonths(ctx, tx, job, &d); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM records WHERE (time, seq) IN
			(SELECT time, seq FROM records WHERE vehicle = $1 AND time >= $2 AND time < $3 LIMIT $4)`, int64(job.Vehicle), job.From, job.To, max(1, limit/100))
		if err != nil {
			return fmt.Errorf("couldn't delete records: %w", err)
		}
		d.Records += tag.RowsAffected()
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
			n, err := deleteChunks(ctx, tx, job, budget)
			if err != nil {
				return err
			}
			d.Values += n
			budget -= n
		}
		if budget > 0 {
			tag, err := tx.Exec(ctx, `DELETE FROM events WHERE (vehicle, time, name, source) IN
				(SELECT vehicle, time, name, source FROM events WHERE vehicle = $1 AND time >= $2 AND time < $3 LIMIT $4)`,
				int64(job.Vehicle), job.From, job.To, budget)
			if err != nil {
				return fmt.Errorf("couldn't delete events: %w", err)
			}
			d.Events += tag.RowsAffected()
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
			if err := restoreLatest(ctx, tx, job.Vehicle); err != nil {
				return err
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

// deleteChunks deletes up to budget values of job's range from job's vehicle's chunks and returns how
// many it deleted: first chunks wholly inside the range, whole while the budget allows and else the first
// values of one; once none is left, the values inside the range of the chunks that straddle one of its
// ends. A chunk that loses some of its values is decoded, cut and re-encoded in the same transaction
// (deleted if nothing is left).
func deleteChunks(ctx context.Context, tx pgx.Tx, job telemetry.DeleteJob, budget int64) (int64, error) {
	veh := int64(job.Vehicle)
	rows, err := tx.Query(ctx, `SELECT name, start, cnt FROM chunk_sums
		WHERE vehicle = $1 AND start >= $2 AND start < $3 AND "end" < $3 ORDER BY name, start LIMIT 1000`, veh, job.From, job.To)
	if err != nil {
		return 0, fmt.Errorf("couldn't find chunks to delete: %w", err)
	}
	type key struct {
		name  int32
		start int64
	}
	var whole []key
	var partial []key
	var n int64
	for rows.Next() {
		var k key
		var cnt int64
		if err := rows.Scan(&k.name, &k.start, &cnt); err != nil {
			rows.Close()
			return 0, fmt.Errorf("couldn't find chunks to delete: %w", err)
		}
		if n+cnt > budget {
			if len(whole) == 0 {
				partial = append(partial, k)
			}
			break
		}
		whole, n = append(whole, k), n+cnt
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("couldn't find chunks to delete: %w", err)
	}
	if len(whole) > 0 {
		names, starts := make([]int32, len(whole)), make([]int64, len(whole))
		for i, k := range whole {
			names[i], starts[i] = k.name, k.start
		}
		if err := deleteChunkKeys(ctx, tx, veh, names, starts); err != nil {
			return 0, fmt.Errorf("couldn't delete chunks: %w", err)
		}
		return n, nil // more chunks, and the range's ends, in the next batch
	}
	var names []int32
	var starts []int64
	if len(partial) > 0 {
		names, starts = []int32{partial[0].name}, []int64{partial[0].start}
	} else {
		// The chunks straddling From or To: every chunk lies within the hour of its start.
		rows, err = tx.Query(ctx, `SELECT name, start FROM chunk_sums
			WHERE vehicle = $1 AND ((start >= $3 AND start < $2 AND "end" >= $2) OR (start >= $4 AND start < $5 AND "end" >= $5))`,
			veh, job.From, series.Hour(job.From), series.Hour(job.To), job.To)
		if err != nil {
			return 0, fmt.Errorf("couldn't find the chunks at the ends of the range: %w", err)
		}
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.name, &k.start); err != nil {
				rows.Close()
				return 0, fmt.Errorf("couldn't find the chunks at the ends of the range: %w", err)
			}
			names, starts = append(names, k.name), append(starts, k.start)
		}
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("couldn't find the chunks at the ends of the range: %w", err)
		}
	}
	if len(names) == 0 {
		return 0, nil
	}
	// Conditions on the key's columns, as the reads do; pairs not asked for are skipped below.
	want := map[[2]int64]bool{}
	for i := range names {
		want[[2]int64{int64(names[i]), starts[i]}] = true
	}
	rows, err = tx.Query(ctx, `SELECT c.name, c.start, c.kind, d.data FROM chunk_sums c
		JOIN chunk_data d ON d.vehicle = c.vehicle AND d.name = c.name AND d.start = c.start
		WHERE c.vehicle = $1 AND c.name = ANY($2) AND c.start = ANY($3) ORDER BY c.name, c.start`, veh, names, starts)
	if err != nil {
		return 0, fmt.Errorf("couldn't read the chunks to cut: %w", err)
	}
	var out chunkRows
	var cutNames []int32
	var cutStarts []int64
	for rows.Next() {
		var name int32
		var start int64
		var class int16
		var data []byte
		if err := rows.Scan(&name, &start, &class, &data); err != nil {
			rows.Close()
			return 0, fmt.Errorf("couldn't read the chunks to cut: %w", err)
		}
		if !want[[2]int64{int64(name), start}] {
			continue
		}
		pts, err := series.Decode(kindOf(class), data, nil)
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("chunk of signal %d of vehicle %d from %d: %w", name, job.Vehicle, start, err)
		}
		keep := pts[:0:0]
		for _, p := range pts {
			if p.T >= job.From && p.T < job.To && n < budget {
				n++
				continue
			}
			keep = append(keep, p)
		}
		if len(keep) == len(pts) {
			continue
		}
		cutNames, cutStarts = append(cutNames, name), append(cutStarts, start)
		if len(keep) == 0 {
			continue
		}
		cs, err := series.Encode(kindOf(class), keep)
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("couldn't encode the rest of the chunk of signal %d of vehicle %d from %d: %w", name, job.Vehicle, start, err)
		}
		for _, e := range cs {
			if err := out.add(veh, name, class, e); err != nil {
				rows.Close()
				return 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("couldn't read the chunks to cut: %w", err)
	}
	if err := deleteChunkKeys(ctx, tx, veh, cutNames, cutStarts); err != nil {
		return 0, fmt.Errorf("couldn't replace the chunks cut: %w", err)
	}
	if err := out.insert(ctx, tx); err != nil {
		return 0, err
	}
	return n, nil
}

// deleteChunkKeys deletes the chunks (names[i], starts[i]) of vehicle, a statement per key and table (a
// join with the list may be planned as a scan of the tables), sent together.
func deleteChunkKeys(ctx context.Context, tx pgx.Tx, vehicle int64, names []int32, starts []int64) error {
	return eachGroup(ctx, tx, 2*len(names), func(b *pgx.Batch, i int) {
		b.Queue(`DELETE FROM `+[]string{"chunk_sums", "chunk_data"}[i%2]+` WHERE vehicle = $1 AND name = $2 AND start = $3`,
			vehicle, names[i/2], starts[i/2])
	}, nil)
}

// restoreLatest puts back, for each signal of vehicle without a latest value, its newest value in chunks
// or rows (a chunk's at a time both have).
func restoreLatest(ctx context.Context, tx pgx.Tx, vehicle uint64) error {
	veh := int64(vehicle)
	type newest struct {
		time int64
		v    value
	}
	best := map[int32]newest{}
	rows, err := tx.Query(ctx, `SELECT DISTINCT ON (name) name, "end", kind, lv FROM chunk_sums
		WHERE vehicle = $1 AND name NOT IN (SELECT name FROM latest WHERE vehicle = $1) ORDER BY name, start DESC`, veh)
	if err != nil {
		return fmt.Errorf("couldn't restore latest values: %w", err)
	}
	for rows.Next() {
		var name int32
		var n newest
		var class int16
		var lv []byte
		if err := rows.Scan(&name, &n.time, &class, &lv); err != nil {
			rows.Close()
			return fmt.Errorf("couldn't restore latest values: %w", err)
		}
		x, err := bytesValue(class, lv)
		if err != nil {
			rows.Close()
			return fmt.Errorf("the last value of signal %d of vehicle %d: %w", name, vehicle, err)
		}
		switch x := x.(type) {
		case float64:
			n.v.num = &x
		case string:
			n.v.str = &x
		case []byte:
			n.v.loc = x
		}
		best[name] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't restore latest values: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT DISTINCT ON (name) name, time, num, str, loc FROM signals
		WHERE vehicle = $1 AND name NOT IN (SELECT name FROM latest WHERE vehicle = $1) ORDER BY name, time DESC`, veh)
	if err != nil {
		return fmt.Errorf("couldn't restore latest values: %w", err)
	}
	for rows.Next() {
		var name int32
		var n newest
		if err := rows.Scan(&name, &n.time, &n.v.num, &n.v.str, &n.v.loc); err != nil {
			rows.Close()
			return fmt.Errorf("couldn't restore latest values: %w", err)
		}
		if b, ok := best[name]; !ok || n.time > b.time {
			best[name] = n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't restore latest values: %w", err)
	}
	var ls signalRows
	for _, name := range slices.Sorted(maps.Keys(best)) {
		b := best[name]
		ls.vehicle, ls.name, ls.time = append(ls.vehicle, veh), append(ls.name, name), append(ls.time, b.time)
		ls.num, ls.str, ls.loc = append(ls.num, b.v.num), append(ls.str, b.v.str), append(ls.loc, b.v.loc)
	}
	if len(ls.vehicle) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO latest (vehicle, name, time, num, str, loc)
		SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::float8[], $5::text[], $6::bytea[])
		ON CONFLICT (vehicle, name) DO NOTHING`, ls.vehicle, ls.name, ls.time, ls.num, ls.str, ls.loc); err != nil {
		return fmt.Errorf("couldn't restore latest values: %w", err)
	}
	return nil
}

// dropLockTimeout bounds how long dropping a month waits for the tables' locks: past it, the month's rows
// are deleted batch by batch instead.
const dropLockTimeout = "500ms"

// dropMonths drops the monthly partitions (records, signals, chunk_sums, chunk_data) of every month that
// lies wholly inside job's range and holds nothing of any other vehicle, adding what they held to d. A
// month is dropped under ACCESS EXCLUSIVE locks on the partitioned tables, taken with a short lock
// timeout (dropLockTimeout) inside a savepoint: when the tables are busy, nothing is dropped and the batch
// deletes rows as usual.
func (t *Telemetry) dropMonths(ctx context.Context, tx pgx.Tx, job telemetry.DeleteJob, d *telemetry.Deleted) error {
	rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'records' ORDER BY c.relname`)
	if err != nil {
		return fmt.Errorf("couldn't list the months: %w", err)
	}
	parts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("couldn't list the months: %w", err)
	}
	for _, part := range parts {
		suffix, ok := strings.CutPrefix(part, "records_p")
		if !ok {
			continue
		}
		start, err := time.Parse("200601", suffix)
		if err != nil {
			continue
		}
		if start.UnixMilli() < job.From || start.AddDate(0, 1, 0).UnixMilli() > job.To {
			continue
		}
		dropped, err := t.dropMonth(ctx, tx, job.Vehicle, suffix, d)
		if err != nil {
			return err
		}
		if dropped {
			t.mu.Lock()
			delete(t.parts, start.UnixMilli())
			t.mu.Unlock()
		}
	}
	return nil
}

// dropMonth drops the partitions of the month suffix (YYYYMM) if they hold nothing of another vehicle
// than vehicle and their locks come within dropLockTimeout, and adds what they held to d.
func (t *Telemetry) dropMonth(ctx context.Context, tx pgx.Tx, vehicle uint64, suffix string, d *telemetry.Deleted) (bool, error) {
	var tables []string
	for _, table := range partitioned {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table+"_p"+suffix).Scan(&exists); err != nil {
			return false, fmt.Errorf("couldn't drop month %s: %w", suffix, err)
		}
		if exists {
			tables = append(tables, table+"_p"+suffix)
		}
	}
	veh := int64(vehicle)
	others := func(q interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) (bool, error) {
		for _, table := range tables {
			if strings.HasPrefix(table, "chunk_data") {
				continue // chunk_sums holds the same keys
			}
			var others bool
			if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE vehicle < $1) OR EXISTS (SELECT 1 FROM `+table+` WHERE vehicle > $1)`,
				veh).Scan(&others); err != nil {
				return false, fmt.Errorf("couldn't drop month %s: %w", suffix, err)
			}
			if others {
				return true, nil
			}
		}
		return false, nil
	}
	// Without locks first: in a fleet most months hold other vehicles' data, and the locks stop ingest.
	if busy, err := others(tx); err != nil || busy {
		return false, err
	}
	sp, err := tx.Begin(ctx) // a savepoint: a lock timeout rolls back to it
	if err != nil {
		return false, fmt.Errorf("couldn't drop month %s: %w", suffix, err)
	}
	defer sp.Rollback(context.Background())
	// The parents first, as every writer and reader takes them, then nothing can reach the month.
	if _, err := sp.Exec(ctx, `SET LOCAL lock_timeout = '`+dropLockTimeout+`'`); err != nil {
		return false, fmt.Errorf("couldn't drop month %s: %w", suffix, err)
	}
	if _, err := sp.Exec(ctx, `LOCK TABLE ONLY `+strings.Join(partitioned, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available: busy, delete rows instead
			return false, nil
		}
		return false, fmt.Errorf("couldn't drop month %s: %w", suffix, err)
	}
	// Again under the locks: a writer may have stored another vehicle's record in the month meanwhile.
	if busy, err := others(sp); err != nil || busy {
		return false, err
	}
	var records, values int64
	for _, table := range tables {
		if strings.HasPrefix(table, "chunk_data") {
			continue
		}
		count := `SELECT COUNT(*) FROM ` + table
		if strings.HasPrefix(table, "chunk_sums") {
			count = `SELECT COALESCE(SUM(cnt), 0) FROM ` + table
		}
		var n int64
		if err := sp.QueryRow(ctx, count).Scan(&n); err != nil {
			return false, fmt.Errorf("couldn't drop month %s: %w", suffix, err)
		}
		if strings.HasPrefix(table, "records") {
			records += n
		} else {
			values += n
		}
	}
	if _, err := sp.Exec(ctx, `DROP TABLE `+strings.Join(tables, ", ")); err != nil {
		return false, fmt.Errorf("couldn't drop month %s: %w", suffix, err)
	}
	if _, err := sp.Exec(ctx, `SET LOCAL lock_timeout = 0`); err != nil {
		return false, fmt.Errorf("couldn't drop month %s: %w", suffix, err)
	}
	if err := sp.Commit(ctx); err != nil {
		return false, fmt.Errorf("couldn't drop month %s: %w", suffix, err)
	}
	d.Records, d.Values = d.Records+records, d.Values+values
	return true, nil
}
