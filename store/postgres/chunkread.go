package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/chunk"
	"github.com/glovebox/glovebox/telemetry/series"
)

// chunkSum is a row of chunk_sums.
type chunkSum struct {
	name       int32
	start, end int64
	cnt        int
	class      int16
	xsum       []byte
	lo, hi     *float64
	fv, lv     []byte
}

// piece is a run of one signal's values in a read's range, in time order: a whole chunk read from its
// summary (sum set), a five-minute slot of a chunk read from its slot summary (slot set), or values.
type piece struct {
	sum  *chunkSum
	slot *series.Slot
	pts  []series.Point
}

// first is the time of the piece's first value.
func (p piece) first() int64 {
	switch {
	case p.sum != nil:
		return p.sum.start
	case p.slot != nil:
		return p.slot.Start
	}
	return p.pts[0].T
}

// last is the time of the piece's last value.
func (p piece) last() int64 {
	switch {
	case p.sum != nil:
		return p.sum.end
	case p.slot != nil:
		return p.slot.End
	}
	return p.pts[len(p.pts)-1].T
}

// readQuery asks for the values of one vehicle in [lo, hi), of one signal (name, or every signal when
// name is 0) and one chunk format (class, or every format when class is -1).
type readQuery struct {
	vehicle uint64
	name    int32
	lo, hi  int64
	class   int16
	// summary tells whether a chunk wholly inside the range may be handed over as its summary; nil
	// decodes every chunk. A chunk whose hour also has rows is always decoded and merged with them.
	summary func(c *chunkSum) bool
	// slot tells whether a five-minute slot (series.Slot) wholly inside the range, of a chunk of
	// numbers not handed over whole, may be handed over as its slot summary; nil decodes such chunks.
	// A chunk with a slot that the range cuts or slot refuses is decoded whole, and so is one without slots
	// (fewer than series.MinSlotValues values, or written before migration 0013).
	slot func(s *series.Slot) bool
}

// nameHour is one signal's hour, or (decoded alone) one chunk of it.
type nameHour struct {
	name int32
	at   int64
}

// read returns, for each signal, its pieces in time order: the chunks overlapping the range (whole ones
// as summaries where q.summary allows, else as slot summaries where q.slot allows every slot of the
// chunk in the range, the others decoded and cut to the range) merged with the rows in the range, a
// chunk's value winning at a time both have (it was stored first).
func (t *Telemetry) read(ctx context.Context, q readQuery) (map[int32][]piece, error) {
	if q.lo >= q.hi {
		return nil, nil
	}
	veh := int64(q.vehicle)
	// The rows: the open hours, and closed ones the sealer has not reached yet.
	rowQ, rowArgs := `SELECT name, time, num, str, loc FROM signals WHERE vehicle = $1 AND time >= $2 AND time < $3 ORDER BY name, time`,
		[]any{veh, q.lo, q.hi}
	if q.name != 0 {
		rowQ, rowArgs = `SELECT name, time, num, str, loc FROM signals WHERE vehicle = $1 AND name = $4 AND time >= $2 AND time < $3 ORDER BY time`,
			append(rowArgs, q.name)
	}
	rows, err := t.pool.Query(ctx, rowQ, rowArgs...)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the values of vehicle %d: %w", q.vehicle, err)
	}
	byHour := map[nameHour][]series.Point{}
	for rows.Next() {
		var name int32
		var ms int64
		var v value
		if err := rows.Scan(&name, &ms, &v.num, &v.str, &v.loc); err != nil {
			rows.Close()
			return nil, fmt.Errorf("couldn't read the values of vehicle %d: %w", q.vehicle, err)
		}
		x, c, ok := v.point()
		if !ok || (q.class >= 0 && c != q.class) {
			continue
		}
		k := nameHour{name, series.Hour(ms)}
		byHour[k] = append(byHour[k], series.Point{T: ms, V: x})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read the values of vehicle %d: %w", q.vehicle, err)
	}

	// The chunks: every value of a chunk lies in the UTC hour of its start.
	sumQ, sumArgs := `SELECT name, start, "end", cnt, kind, xsum, lo, hi, fv, lv FROM chunk_sums
		WHERE vehicle = $1 AND start >= $2 AND start < $3 AND "end" >= $4 ORDER BY name, start`, []any{veh, series.Hour(q.lo), q.hi, q.lo}
	if q.name != 0 {
		sumQ, sumArgs = `SELECT name, start, "end", cnt, kind, xsum, lo, hi, fv, lv FROM chunk_sums
		WHERE vehicle = $1 AND name = $5 AND start >= $2 AND start < $3 AND "end" >= $4 ORDER BY start`, append(sumArgs, q.name)
	}
	rows, err = t.pool.Query(ctx, sumQ, sumArgs...)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the chunks of vehicle %d: %w", q.vehicle, err)
	}
	sums, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*chunkSum, error) {
		c := &chunkSum{}
		err := r.Scan(&c.name, &c.start, &c.end, &c.cnt, &c.class, &c.xsum, &c.lo, &c.hi, &c.fv, &c.lv)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the chunks of vehicle %d: %w", q.vehicle, err)
	}
	out := map[int32][]piece{}
	decodeAs := map[nameHour]nameHour{} // chunk → the group its values join
	var need, slotted []*chunkSum
	for _, c := range sums {
		if q.class >= 0 && c.class != q.class {
			continue
		}
		hour := nameHour{c.name, series.Hour(c.start)}
		_, rowsToo := byHour[hour]
		if !rowsToo && q.summary != nil && c.start >= q.lo && c.end < q.hi && q.summary(c) {
			out[c.name] = append(out[c.name], piece{sum: c})
			continue
		}
		if rowsToo {
			decodeAs[nameHour{c.name, c.start}] = hour
		} else {
			decodeAs[nameHour{c.name, c.start}] = nameHour{c.name, c.start}
			if q.slot != nil && c.class == classNum && c.cnt >= series.MinSlotValues {
				slotted = append(slotted, c)
				continue
			}
		}
		need = append(need, c)
	}
	if len(slotted) > 0 {
		err := t.chunkColumn(ctx, q, slotted, "slots", func(c *chunkSum, b []byte) error {
			ps, ok, err := slotPieces(q, c, b)
			if err != nil {
				return fmt.Errorf("the slots of the chunk of signal %d of vehicle %d from %d: %w", c.name, q.vehicle, c.start, err)
			}
			if !ok {
				need = append(need, c)
				return nil
			}
			out[c.name] = append(out[c.name], ps...)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	decoded := map[nameHour][]series.Point{}
	if len(need) > 0 {
		if err := t.chunkColumn(ctx, q, need, "data", func(c *chunkSum, data []byte) error {
			k := decodeAs[nameHour{c.name, c.start}]
			pts, err := series.Decode(kindOf(c.class), data, decoded[k])
			if err != nil {
				return fmt.Errorf("chunk of signal %d of vehicle %d from %d: %w", c.name, q.vehicle, c.start, err)
			}
			decoded[k] = pts
			return nil
		}); err != nil {
			return nil, err
		}
	}
	for k, rs := range byHour {
		decoded[k] = series.Merge(decoded[k], rs)
	}
	for k, pts := range decoded {
		i, _ := slices.BinarySearchFunc(pts, q.lo, func(p series.Point, t int64) int { return cmp.Compare(p.T, t) })
		j, _ := slices.BinarySearchFunc(pts, q.hi, func(p series.Point, t int64) int { return cmp.Compare(p.T, t) })
		if i < j {
			out[k.name] = append(out[k.name], piece{pts: pts[i:j]})
		}
	}
	for _, ps := range out {
		slices.SortFunc(ps, func(a, b piece) int { return cmp.Compare(a.first(), b.first()) })
	}
	return out, nil
}

// slotPieces returns the slot summaries of chunk c (b its slots column) that lie in q's range, each a
// piece, and true when q.slot allows every one of them and the range cuts none; false when the chunk
// must be decoded (it has no slots, or one that the range or q.slot cuts). Slots that do not agree with
// the chunk's summary are an error.
func slotPieces(q readQuery, c *chunkSum, b []byte) ([]piece, bool, error) {
	if len(b) == 0 {
		return nil, false, nil
	}
	slots, err := series.ParseSlots(b, c.start)
	if err != nil {
		return nil, false, err
	}
	n := 0
	for _, s := range slots {
		n += s.Count
	}
	if n != c.cnt || slots[0].Start != c.start || slots[len(slots)-1].End != c.end {
		return nil, false, fmt.Errorf("%w: slots of %d values from %d to %d for a chunk of %d from %d to %d", chunk.ErrCorrupt,
			n, slots[0].Start, slots[len(slots)-1].End, c.cnt, c.start, c.end)
	}
	var out []piece
	for i := range slots {
		s := &slots[i]
		if s.End < q.lo || s.Start >= q.hi {
			continue
		}
		if s.Start < q.lo || s.End >= q.hi || !q.slot(s) {
			return nil, false, nil
		}
		out = append(out, piece{slot: s})
	}
	return out, true, nil
}

// chunkColumn reads column (data or slots) of the chunk_data rows of need (chunks of q) and hands each
// to f.
func (t *Telemetry) chunkColumn(ctx context.Context, q readQuery, need []*chunkSum, column string, f func(c *chunkSum, b []byte) error) error {
	veh := int64(q.vehicle)
	byKey := make(map[nameHour]*chunkSum, len(need))
	for _, c := range need {
		byKey[nameHour{c.name, c.start}] = c
	}
	var rows pgx.Rows
	var err error
	if len(need) <= 64 {
		names, starts := make([]int32, len(need)), make([]int64, len(need))
		for i, c := range need {
			names[i], starts[i] = c.name, c.start
		}
		// Conditions on the key's columns (a join with the list may be planned as a scan of the table); the
		// pairs not asked for are skipped below.
		rows, err = t.pool.Query(ctx, `SELECT name, start, `+column+` FROM chunk_data WHERE vehicle = $1 AND name = ANY($2) AND start = ANY($3)
			ORDER BY name, start`, veh, names, starts)
	} else if q.name != 0 {
		rows, err = t.pool.Query(ctx, `SELECT name, start, `+column+` FROM chunk_data WHERE vehicle = $1 AND name = $2 AND start >= $3 AND start < $4
			ORDER BY start`, veh, q.name, series.Hour(q.lo), q.hi)
	} else {
		rows, err = t.pool.Query(ctx, `SELECT name, start, `+column+` FROM chunk_data WHERE vehicle = $1 AND start >= $2 AND start < $3
			ORDER BY name, start`, veh, series.Hour(q.lo), q.hi)
	}
	if err != nil {
		return fmt.Errorf("couldn't read the chunks of vehicle %d: %w", q.vehicle, err)
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var k nameHour
		var b []byte
		if err := rows.Scan(&k.name, &k.at, &b); err != nil {
			return fmt.Errorf("couldn't read the chunks of vehicle %d: %w", q.vehicle, err)
		}
		c, ok := byKey[k]
		if !ok {
			continue
		}
		found++
		if err := f(c, b); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't read the chunks of vehicle %d: %w", q.vehicle, err)
	}
	if found != len(need) {
		return fmt.Errorf("vehicle %d: %d chunk summaries without their chunk", q.vehicle, len(need)-found)
	}
	return nil
}

// bucket accumulates the aggregations a chunk summary answers (FIRST, LAST, MIN, MAX, AVG, COUNT) over
// one bucket's values in time order, as telemetry.FoldHistory computes them.
type bucket struct {
	n           int
	first, last any
	lo, hi      float64
	sum         chunk.Sum
}

func (b *bucket) addValue(v any, numeric bool) {
	if b.n == 0 {
		b.first = v
	}
	b.last = v
	if numeric {
		f := v.(float64)
		if b.n == 0 {
			b.lo, b.hi = f, f
		} else {
			b.lo, b.hi = min(b.lo, f), max(b.hi, f)
		}
		b.sum.Add(f)
	}
	b.n++
}

func (b *bucket) addChunk(vehicle uint64, c *chunkSum, numeric bool) error {
	fv, err := bytesValue(c.class, c.fv)
	if err == nil {
		var lv any
		if lv, err = bytesValue(c.class, c.lv); err == nil {
			if b.n == 0 {
				b.first = fv
			}
			b.last = lv
		}
	}
	if err == nil && numeric {
		var s chunk.Sum
		if s, err = chunk.ParseSum(c.xsum); err == nil && (c.lo == nil || c.hi == nil) {
			err = fmt.Errorf("no minimum or maximum")
		}
		if err == nil {
			if b.n == 0 {
				b.lo, b.hi = *c.lo, *c.hi
			} else {
				b.lo, b.hi = min(b.lo, *c.lo), max(b.hi, *c.hi)
			}
			b.sum.Merge(s)
		}
	}
	if err != nil {
		return fmt.Errorf("the summary of the chunk of signal %d of vehicle %d from %d: %w", c.name, vehicle, c.start, err)
	}
	b.n += c.cnt
	return nil
}

// addSlot adds the values of a chunk's slot (numbers).
func (b *bucket) addSlot(s *series.Slot) {
	if b.n == 0 {
		b.first, b.lo, b.hi = s.First, s.Min, s.Max
	} else {
		b.lo, b.hi = min(b.lo, s.Min), max(b.hi, s.Max)
	}
	b.last = s.Last
	b.sum.Merge(s.Sum)
	b.n += s.Count
}

func (b *bucket) put(i int64, aggs []string, put func(b int64, agg string, v any)) {
	if b.n == 0 {
		return
	}
	for _, agg := range aggs {
		switch agg {
		case telemetry.AggCount:
			put(i, agg, float64(b.n))
		case telemetry.AggFirst:
			put(i, agg, b.first)
		case telemetry.AggLast:
			put(i, agg, b.last)
		case telemetry.AggMin:
			put(i, agg, b.lo)
		case telemetry.AggMax:
			put(i, agg, b.hi)
		case telemetry.AggAvg:
			put(i, agg, b.sum.Float64()/float64(b.n))
		}
	}
}
