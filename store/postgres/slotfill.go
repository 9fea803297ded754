package postgres

import (
	"context"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

// fillBatch is the most chunks one slot-filling transaction gives slots to.
const fillBatch = 64

// FillSlots gives the chunks sealed before migration 0013 their five-minute slot summaries (chunks of
// numbers of at least series.MinSlotValues values whose slots are NULL), a batch per transaction in key
// order from the cursor in chunk_slot_fill, and returns how many it filled. It runs at the end of every
// SealAll; once the cursor has passed every chunk the database is marked done and the process asks no
// more. Like sealing it takes the sealing lock with pg_try_advisory_xact_lock and, while another process
// holds it, stops and leaves the rest to a later pass. A chunk that does not decode is skipped (it keeps
// no slots; reads report it when they decode it).
func (t *Telemetry) FillSlots(ctx context.Context) (int, error) {
	total := 0
	for !t.slotsFilled.Load() {
		n, done, busy, err := t.fillSlots(ctx)
		total += n
		if err != nil || busy {
			return total, err
		}
		if done {
			t.slotsFilled.Store(true)
		}
	}
	return total, nil
}

// fillSlots fills the slots of one batch of chunks; done when none is left, busy when another process
// holds the sealing lock.
func (t *Telemetry) fillSlots(ctx context.Context) (filled int, done, busy bool, err error) {
	err = pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		filled, done, busy = 0, false, false
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, lockSeal).Scan(&ok); err != nil {
			return fmt.Errorf("couldn't take the sealing lock: %w", err)
		}
		if !ok {
			busy = true
			return nil
		}
		var veh, start *int64
		var name *int32
		if err := tx.QueryRow(ctx, `SELECT vehicle, name, start, done FROM chunk_slot_fill`).Scan(&veh, &name, &start, &done); err != nil {
			return fmt.Errorf("couldn't read how far slots are filled: %w", err)
		}
		if done {
			return nil
		}
		after := [3]int64{math.MinInt64, math.MinInt32, math.MinInt64}
		if veh != nil && name != nil && start != nil {
			after = [3]int64{*veh, int64(*name), *start}
		}
		rows, err := tx.Query(ctx, `SELECT c.vehicle, c.name, c.start, d.data FROM chunk_sums c
			JOIN chunk_data d ON d.vehicle = c.vehicle AND d.name = c.name AND d.start = c.start
			WHERE (c.vehicle, c.name, c.start) > ($1::bigint, $2::int, $3::bigint) AND c.kind = $4 AND c.cnt >= $5 AND d.slots IS NULL
			ORDER BY c.vehicle, c.name, c.start LIMIT $6`, after[0], int32(after[1]), after[2], classNum, series.MinSlotValues, fillBatch)
		if err != nil {
			return fmt.Errorf("couldn't read chunks without slots: %w", err)
		}
		type fill struct {
			vehicle int64
			name    int32
			start   int64
			slots   []byte
		}
		var fills []fill
		seen := 0
		for rows.Next() {
			var f fill
			var data []byte
			if err := rows.Scan(&f.vehicle, &f.name, &f.start, &data); err != nil {
				rows.Close()
				return fmt.Errorf("couldn't read chunks without slots: %w", err)
			}
			seen++
			after = [3]int64{f.vehicle, int64(f.name), f.start}
			pts, err := series.Decode(telemetry.KindNumber, data, nil)
			if err != nil {
				continue
			}
			slots, err := series.Slots(pts)
			if err != nil || len(slots) == 0 {
				continue
			}
			f.slots = series.AppendSlots(nil, slots)
			fills = append(fills, f)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("couldn't read chunks without slots: %w", err)
		}
		err = eachGroup(ctx, tx, len(fills), func(b *pgx.Batch, i int) {
			f := fills[i]
			b.Queue(`UPDATE chunk_data SET slots = $4 WHERE vehicle = $1 AND name = $2 AND start = $3`, f.vehicle, f.name, f.start, f.slots)
		}, nil)
		if err != nil {
			return fmt.Errorf("couldn't write slots: %w", err)
		}
		done = seen < fillBatch
		if _, err := tx.Exec(ctx, `UPDATE chunk_slot_fill SET vehicle = $1, name = $2, start = $3, done = $4`,
			after[0], int32(after[1]), after[2], done); err != nil {
			return fmt.Errorf("couldn't record how far slots are filled: %w", err)
		}
		filled = len(fills)
		return nil
	})
	if err != nil {
		return 0, false, false, fmt.Errorf("couldn't fill in the slots of chunks: %w", err)
	}
	return filled, done, busy, nil
}
