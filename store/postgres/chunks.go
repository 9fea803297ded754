package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

// Signal values in chunks (migration 0012, docs/scale.md).
//
// Write stores every value as a row of signals, whatever its time. The sealer (SealAll, run in every
// cluster process by RunSealer) moves the values of each closed hour of a signal of a vehicle into
// chunks (telemetry/series), in one transaction per batch of (vehicle, signal, hour) groups: it deletes
// the group's rows (DELETE … RETURNING, so that it moves exactly the rows it deletes), decodes the hour's
// chunks if a late value had made some, merges (series.Merge: a time already in a chunk keeps the chunk's
// value, as the first one stored) and replaces the hour's chunks. An hour h is closed once
// h + 1 h + SealGrace has passed on the sealing process's clock.
//
// Values of hours that were already closed when written (a backfill, late records) are rows until the
// next sealing pass too, rather than going straight into chunks from Write: that keeps a single write
// path whose transaction locks nothing beyond the rows it inserts (a chunk merge in Write would need a
// lock per vehicle, signal and hour, in a lock table PostgreSQL sizes by max_locks_per_transaction), and
// costs a backfill at most one sealing interval before its hours are chunks. Reads merge chunks and rows
// in every case, so nothing depends on when an hour is sealed.
//
// A chunk of numbers or booleans of at least series.MinSlotValues values also keeps, in chunk_data.slots
// (migration 0013), the summaries of its values by five-minute slot (series.Chunk.Slots), so that
// buckets of five minutes or a multiple of them need not decode it (chunkread.go). Every writer of chunks
// writes them through chunkRows; FillSlots (slotfill.go) gives them to the chunks sealed before.
//
// Sealing is safe with many processes: each transaction first takes the transaction-level advisory lock
// lockSeal with pg_try_advisory_xact_lock and, if another process holds it, ends its pass and leaves the
// work to that one until its next interval (so two never merge one hour at once). Retention and erasure (DeleteBatch) take the same lock, waiting
// for it, so that a batch never deletes rows a concurrent sealer is about to write back as chunks.

// SealGrace is how long after its end an hour stays open for late values before the sealer moves it into
// chunks. Two minutes cover a device's normal upload delay; later values are merged into the sealed hour
// by the next pass.
const SealGrace = 2 * time.Minute

// SealInterval is how often RunSealer looks for closed hours.
const SealInterval = time.Minute

// sealGroups is the most (vehicle, signal, hour) groups one sealing transaction moves (an hour of a
// signal at 1 Hz is 3,600 values).
const sealGroups = 64

// lockSeal is the advisory lock of sealing and of deleting values.
const lockSeal int64 = 0x676c6f7665626f04 // "glovebo" 04

// Chunk formats, the kind column of chunk_sums: the signals column the values come from.
const (
	classNum int16 = 0 // num: numbers and booleans (chunk.Floats)
	classStr int16 = 1 // str: strings and string[] as JSON (chunk.Strings)
	classLoc int16 = 2 // loc: locations (chunk.Locations)
)

// classOf is the chunk format of values of kind k.
func classOf(k telemetry.Kind) int16 {
	switch valueColumn(k) {
	case "str":
		return classStr
	case "loc":
		return classLoc
	}
	return classNum
}

// kindOf is the telemetry kind series encodes a chunk format with.
func kindOf(class int16) telemetry.Kind {
	switch class {
	case classStr:
		return telemetry.KindString
	case classLoc:
		return telemetry.KindLocation
	}
	return telemetry.KindNumber
}

// point is a row's value as series keeps it, and its format.
func (v value) point() (any, int16, bool) {
	switch {
	case v.num != nil:
		return *v.num, classNum, true
	case v.str != nil:
		return *v.str, classStr, true
	case v.loc != nil:
		return v.loc, classLoc, true
	}
	return nil, 0, false
}

// valueBytes is the fv/lv encoding of a value of a chunk of class.
func valueBytes(class int16, v any) []byte {
	switch class {
	case classNum:
		f, _ := v.(float64)
		return binary.BigEndian.AppendUint64(nil, math.Float64bits(f))
	case classStr:
		s, _ := v.(string)
		return []byte(s)
	}
	b, _ := v.([]byte)
	return b
}

// bytesValue decodes valueBytes.
func bytesValue(class int16, b []byte) (any, error) {
	switch class {
	case classNum:
		if len(b) != 8 {
			return nil, fmt.Errorf("a number of %d bytes", len(b))
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	case classStr:
		return string(b), nil
	case classLoc:
		if _, _, _, err := telemetry.DecodeLocation(b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, fmt.Errorf("no chunk format %d", class)
}

// RunSealer seals closed hours at once and then every SealInterval until ctx is done, logging failures;
// now is the clock (nil: time.Now). Every process of a cluster may run one (see SealAll).
func (t *Telemetry) RunSealer(ctx context.Context, now func() time.Time, logger *slog.Logger) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	tick := time.NewTicker(SealInterval)
	defer tick.Stop()
	for {
		if _, err := t.SealAll(ctx, now()); err != nil && ctx.Err() == nil {
			logger.Error("couldn't move signal values into chunks", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// SealAll seals closed hours batch by batch (see the comment at the top of chunks.go), going once through
// the signals of every vehicle in key order, then fills in the slot summaries of chunks sealed before
// migration 0013 (FillSlots), and returns how many values it moved. It stops early, having moved nothing
// more, when another process holds the sealing lock.
func (t *Telemetry) SealAll(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	var after seriesKey // the first batch starts before every series
	after.vehicle = math.MinInt64
	for {
		n, next, more, err := t.seal(ctx, now, after)
		total += int64(n)
		if err != nil {
			return total, err
		}
		if !more {
			_, err := t.FillSlots(ctx)
			return total, err
		}
		after = next
	}
}

// seriesKey is one signal of one vehicle: a prefix of the signals table's primary key.
type seriesKey struct {
	vehicle int64
	name    int32
}

// seal moves the rows of up to sealGroups closed (vehicle, signal, hour) groups of the series after after
// (in key order) into chunks in one transaction, and returns how many values it moved, the series to
// start the next batch after, and more when series after that may have closed rows. It moves nothing,
// and returns more false, while another process holds the sealing lock.
//
// The series with closed rows are found by a loose scan of the primary key (a step per series, skipping
// series whose oldest row is in an open hour) and each one's closed hours by a probe per hour, so a
// batch costs the rows it moves and a few index probes per series, never a scan of the table.
func (t *Telemetry) seal(ctx context.Context, now time.Time, after seriesKey) (moved int, next seriesKey, more bool, err error) {
	cutoff := series.Hour(now.Add(-SealGrace).UnixMilli()) // rows before it are in closed hours
	// The groups are chosen before the transaction, so that the months' chunk partitions can be created
	// first: creating a partition locks its parent, which the sealing transaction then reads.
	rows, err := t.pool.Query(ctx, `WITH RECURSIVE s(vehicle, name, time) AS (
		(SELECT vehicle, name, time FROM signals WHERE (vehicle, name) > ($1::bigint, $2::int) ORDER BY vehicle, name, time LIMIT 1)
		UNION ALL
		SELECT x.vehicle, x.name, x.time FROM s CROSS JOIN LATERAL (SELECT g.vehicle, g.name, g.time FROM signals g
			WHERE (g.vehicle, g.name) > (s.vehicle, s.name) ORDER BY g.vehicle, g.name, g.time LIMIT 1) x)
		SELECT vehicle, name, time FROM s WHERE time < $3 LIMIT $4`, after.vehicle, after.name, cutoff, sealGroups)
	if err != nil {
		return 0, after, false, fmt.Errorf("couldn't find closed hours: %w", err)
	}
	type first struct {
		seriesKey
		time int64
	}
	firsts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (first, error) {
		var f first
		err := r.Scan(&f.vehicle, &f.name, &f.time)
		return f, err
	})
	if err != nil {
		return 0, after, false, fmt.Errorf("couldn't find closed hours: %w", err)
	}
	if len(firsts) == 0 {
		return 0, after, false, nil
	}
	type group struct {
		vehicle int64
		name    int32
		hour    int64
	}
	var gs []group
	months := map[int64]bool{}
	next, more = after, len(firsts) == sealGroups
	for _, f := range firsts {
		h := series.Hour(f.time)
		for len(gs) < sealGroups {
			gs = append(gs, group{f.vehicle, f.name, h})
			months[monthStart(h)] = true
			var ms int64
			err := t.pool.QueryRow(ctx, `SELECT time FROM signals WHERE vehicle = $1 AND name = $2 AND time >= $3 AND time < $4
				ORDER BY time LIMIT 1`, f.vehicle, f.name, h+series.HourMs, cutoff).Scan(&ms)
			if err == pgx.ErrNoRows {
				h = cutoff
				break
			}
			if err != nil {
				return 0, after, false, fmt.Errorf("couldn't find closed hours: %w", err)
			}
			h = series.Hour(ms)
		}
		if h < cutoff {
			more = true // this series has closed hours left: the next batch starts with it
			break
		}
		next = f.seriesKey
	}
	if err := t.ensurePartitions(ctx, months); err != nil {
		return 0, after, false, err
	}
	err = pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		moved = 0
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, lockSeal).Scan(&ok); err != nil {
			return fmt.Errorf("couldn't take the sealing lock: %w", err)
		}
		if !ok {
			more = false
			return nil
		}
		// One statement per group, each a range of a primary key (a join with the list of groups may be
		// planned as a scan of the whole table), sent together.
		add := map[group][]series.Point{}
		class := map[group]int16{}
		err := eachGroup(ctx, tx, len(gs), func(b *pgx.Batch, i int) {
			g := gs[i]
			b.Queue(`DELETE FROM signals WHERE vehicle = $1 AND name = $2 AND time >= $3 AND time < $4 RETURNING time, num, str, loc`,
				g.vehicle, g.name, g.hour, g.hour+series.HourMs)
		}, func(i int, rows pgx.Rows) error {
			g := gs[i]
			for rows.Next() {
				var ms int64
				var v value
				if err := rows.Scan(&ms, &v.num, &v.str, &v.loc); err != nil {
					return err
				}
				x, c, ok := v.point()
				if !ok {
					continue // a row without a value holds nothing to keep
				}
				if have, ok := class[g]; ok && have != c {
					return fmt.Errorf("signal %d of vehicle %d has values of two kinds in the hour from %d", g.name, g.vehicle, g.hour)
				}
				class[g] = c
				add[g] = append(add[g], series.Point{T: ms, V: x})
				moved++
			}
			return rows.Err()
		})
		if err != nil {
			return fmt.Errorf("couldn't take the values of closed hours: %w", err)
		}
		// Only the groups that still had rows (another process may have sealed them since they were chosen).
		var full []group
		for _, g := range gs {
			if len(add[g]) > 0 {
				full = append(full, g)
			}
		}
		if len(full) == 0 {
			return nil
		}
		// The hours' chunks so far (made by an earlier pass when a value came late).
		old := map[group][]series.Point{}
		err = eachGroup(ctx, tx, len(full), func(b *pgx.Batch, i int) {
			g := full[i]
			b.Queue(`SELECT c.start, c.kind, d.data FROM chunk_sums c
				JOIN chunk_data d ON d.vehicle = c.vehicle AND d.name = c.name AND d.start = c.start
				WHERE c.vehicle = $1 AND c.name = $2 AND c.start >= $3 AND c.start < $4 ORDER BY c.start`,
				g.vehicle, g.name, g.hour, g.hour+series.HourMs)
		}, func(i int, rows pgx.Rows) error {
			g := full[i]
			for rows.Next() {
				var start int64
				var c int16
				var data []byte
				if err := rows.Scan(&start, &c, &data); err != nil {
					return err
				}
				if c != class[g] {
					return fmt.Errorf("signal %d of vehicle %d has values of two kinds in the hour from %d", g.name, g.vehicle, g.hour)
				}
				var err error
				if old[g], err = series.Decode(kindOf(c), data, old[g]); err != nil {
					return fmt.Errorf("chunk of signal %d of vehicle %d from %d: %w", g.name, g.vehicle, start, err)
				}
			}
			return rows.Err()
		})
		if err != nil {
			return fmt.Errorf("couldn't read the chunks of closed hours: %w", err)
		}
		var out chunkRows
		for _, g := range full {
			pts := series.Merge(old[g], add[g])
			cs, err := series.Encode(kindOf(class[g]), pts)
			if err != nil {
				return fmt.Errorf("couldn't encode signal %d of vehicle %d in the hour from %d: %w", g.name, g.vehicle, g.hour, err)
			}
			for _, c := range cs {
				if err := out.add(g.vehicle, g.name, class[g], c); err != nil {
					return err
				}
			}
		}
		err = eachGroup(ctx, tx, 2*len(full), func(b *pgx.Batch, i int) {
			g := full[i/2]
			b.Queue(`DELETE FROM `+[]string{"chunk_sums", "chunk_data"}[i%2]+` WHERE vehicle = $1 AND name = $2 AND start >= $3 AND start < $4`,
				g.vehicle, g.name, g.hour, g.hour+series.HourMs)
		}, nil)
		if err != nil {
			return fmt.Errorf("couldn't replace chunks: %w", err)
		}
		return out.insert(ctx, tx)
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == noPartition {
			t.forgetPartitions() // retention dropped the month: the next pass creates it again
		}
		return 0, after, false, err
	}
	return moved, next, more, nil
}

// eachGroup sends n statements (queue(b, i) queues the i-th) in one batch and hands each one's rows to
// read in order (nil: the statements return no rows).
func eachGroup(ctx context.Context, tx pgx.Tx, n int, queue func(b *pgx.Batch, i int), read func(i int, rows pgx.Rows) error) error {
	b := &pgx.Batch{}
	for i := range n {
		queue(b, i)
	}
	br := tx.SendBatch(ctx, b)
	for i := range n {
		if read == nil {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return err
			}
			continue
		}
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return err
		}
		err = read(i, rows)
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

// chunkRows are rows of chunk_sums and chunk_data, as columns.
type chunkRows struct {
	vehicle, start, end []int64
	name                []int32
	cnt                 []int32
	kind                []int16
	xsum, fv, lv, data  [][]byte
	slots               [][]byte // series.Chunk.Slots; nil (NULL) for a chunk without
	lo, hi              []*float64
}

func (r *chunkRows) add(vehicle int64, name int32, class int16, c series.Chunk) error {
	r.vehicle, r.name, r.start, r.end = append(r.vehicle, vehicle), append(r.name, name), append(r.start, c.Start), append(r.end, c.End)
	r.cnt, r.kind = append(r.cnt, int32(c.Count)), append(r.kind, class)
	r.fv, r.lv, r.data = append(r.fv, valueBytes(class, c.First)), append(r.lv, valueBytes(class, c.Last)), append(r.data, c.Data)
	r.slots = append(r.slots, c.Slots)
	if class != classNum {
		r.xsum, r.lo, r.hi = append(r.xsum, nil), append(r.lo, nil), append(r.hi, nil)
		return nil
	}
	xs, err := c.Sum.AppendBinary(nil)
	if err != nil {
		return fmt.Errorf("couldn't encode the sum of a chunk of signal %d of vehicle %d from %d: %w", name, vehicle, c.Start, err)
	}
	lo, hi := c.Min, c.Max
	r.xsum, r.lo, r.hi = append(r.xsum, xs), append(r.lo, &lo), append(r.hi, &hi)
	return nil
}

func (r *chunkRows) insert(ctx context.Context, tx pgx.Tx) error {
	if len(r.vehicle) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO chunk_sums (vehicle, name, start, "end", cnt, kind, xsum, lo, hi, fv, lv)
		SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[], $5::int[], $6::smallint[], $7::bytea[],
			$8::float8[], $9::float8[], $10::bytea[], $11::bytea[])`,
		r.vehicle, r.name, r.start, r.end, r.cnt, r.kind, r.xsum, r.lo, r.hi, r.fv, r.lv); err != nil {
		return fmt.Errorf("couldn't insert chunk summaries: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO chunk_data (vehicle, name, start, data, slots)
		SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bytea[], $5::bytea[])`, r.vehicle, r.name, r.start, r.data, r.slots); err != nil {
		return fmt.Errorf("couldn't insert chunks: %w", err)
	}
	return nil
}
