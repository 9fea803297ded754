package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/chunk"
	"github.com/glovebox/glovebox/telemetry/series"
)

// querier is a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// snapshot runs f on one connection of db inside a read transaction, so that every query f makes sees the
// same state of the database: a Seal or an indexing commit between two of them could otherwise move
// values from rows into chunks, or rewrite a chunk, under the reader.
func snapshot(ctx context.Context, db *sql.DB, f func(q querier) error) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("couldn't get a connection to read: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
		return fmt.Errorf("couldn't begin a read: %w", err)
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`); rerr != nil {
			// a connection left inside the transaction must not go back to the pool
			conn.Raw(func(any) error { return driver.ErrBadConn })
			if err == nil {
				err = fmt.Errorf("couldn't end a read: %w", rerr)
			}
		}
	}()
	return f(conn)
}

// chunkRow is a chunk's summary row (chunk_sums), with its data when read; or the summary of one of its
// five-minute slots (series.Slot), which answers the same aggregations for the slot's values.
type chunkRow struct {
	start, end, cnt int64
	xsum            []byte
	lo, hi          float64
	fv, lv          any
	data            []byte
	slots           []chunkRow // the chunk's slot summaries, when they stand for its values in a walk
	exact           *chunk.Sum // a slot's exact sum (xsum is then nil)
}

// sum returns the chunk's exact sum.
func (c *chunkRow) sum(s sig) (chunk.Sum, error) {
	if c.exact != nil {
		return *c.exact, nil
	}
	x, err := chunk.ParseSum(c.xsum)
	if err != nil {
		return x, fmt.Errorf("the chunk of %s from %d: %w", s, c.start, err)
	}
	return x, nil
}

// readChunks returns the summaries of the chunks of s with values in [lo, hi), in time order, each with
// its data when withData. A chunk lies within one hour, so none starts before lo's hour.
func readChunks(ctx context.Context, q querier, s sig, lo, hi int64, withData bool) ([]chunkRow, error) {
	cols, from := ``, `chunk_sums c`
	if withData {
		cols, from = `, d.data`, `chunk_sums c LEFT JOIN chunk_data d USING (vehicle, name, start)`
	}
	rows, err := q.QueryContext(ctx, `SELECT c.start, c.end, c.cnt, c.xsum, c.lo, c.hi, c.fv, c.lv`+cols+` FROM `+from+`
WHERE c.vehicle = ? AND c.name = ? AND c.start >= ? AND c.start < ? AND c.end >= ? ORDER BY c.start`,
		s.vehicle, s.name, series.Hour(lo), hi, lo)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the chunks of %s: %w", s, err)
	}
	defer rows.Close()
	var out []chunkRow
	for rows.Next() {
		var c chunkRow
		var lo, hi sql.NullFloat64
		dest := []any{&c.start, &c.end, &c.cnt, &c.xsum, &lo, &hi, &c.fv, &c.lv}
		if withData {
			dest = append(dest, &c.data)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("couldn't read the chunks of %s: %w", s, err)
		}
		c.lo, c.hi = lo.Float64, hi.Float64
		if withData && c.data == nil {
			return nil, fmt.Errorf("the chunk of %s from %d has a summary but no data", s, c.start)
		}
		if numeric(s.kind) { // a whole number may come back as an integer
			fv, err1 := telemetry.AsFloat(c.fv)
			lv, err2 := telemetry.AsFloat(c.lv)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("the chunk of %s from %d: %w", s, c.start, err)
			}
			c.fv, c.lv = fv, lv
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read the chunks of %s: %w", s, err)
	}
	return out, nil
}

// decode appends the values of chunk c of s to dst, reading its data if it was not read.
func (c *chunkRow) decode(ctx context.Context, q querier, s sig, dst []series.Point) ([]series.Point, error) {
	if c.data == nil {
		rows, err := q.QueryContext(ctx, `SELECT data FROM chunk_data WHERE vehicle = ? AND name = ? AND start = ?`, s.vehicle, s.name, c.start)
		if err != nil {
			return dst, fmt.Errorf("couldn't read the chunk of %s from %d: %w", s, c.start, err)
		}
		for rows.Next() {
			if err := rows.Scan(&c.data); err != nil {
				rows.Close()
				return dst, fmt.Errorf("couldn't read the chunk of %s from %d: %w", s, c.start, err)
			}
		}
		if err := rows.Close(); err != nil {
			return dst, fmt.Errorf("couldn't read the chunk of %s from %d: %w", s, c.start, err)
		}
		if c.data == nil {
			return dst, fmt.Errorf("the chunk of %s from %d has a summary but no data", s, c.start)
		}
	}
	n := len(dst)
	dst, err := series.Decode(s.kind, c.data, dst)
	if err != nil {
		return dst[:n], fmt.Errorf("the chunk of %s from %d: %w", s, c.start, err)
	}
	if got := dst[n:]; int64(len(got)) != c.cnt || got[0].T != c.start || got[len(got)-1].T != c.end {
		return dst[:n], fmt.Errorf("the chunk of %s from %d: %w: %d values, its summary says %d from %d to %d",
			s, c.start, chunk.ErrCorrupt, len(got), c.cnt, c.start, c.end)
	}
	return dst, nil
}

// readChunkData reads the data of the chunks cs of s (in time order) in one query over their span.
func readChunkData(ctx context.Context, q querier, s sig, cs []*chunkRow) error {
	return eachChunkBlob(ctx, q, s, "chunk_data", "data", cs, func(c *chunkRow, b []byte) error {
		c.data = b
		return nil
	})
}

// eachChunkBlob reads the column col of table (keyed as chunk_data) for the chunks cs of s (in time
// order) in one query over their span, and calls f with each chunk that has a row.
func eachChunkBlob(ctx context.Context, q querier, s sig, table, col string, cs []*chunkRow, f func(c *chunkRow, b []byte) error) error {
	rows, err := q.QueryContext(ctx, `SELECT start, `+col+` FROM `+table+` WHERE vehicle = ? AND name = ? AND start >= ? AND start <= ? ORDER BY start`,
		s.vehicle, s.name, cs[0].start, cs[len(cs)-1].start)
	if err != nil {
		return fmt.Errorf("couldn't read the %s of the chunks of %s: %w", col, s, err)
	}
	defer rows.Close()
	k := 0
	for rows.Next() {
		var start int64
		var b []byte
		if err := rows.Scan(&start, &b); err != nil {
			return fmt.Errorf("couldn't read the %s of the chunks of %s: %w", col, s, err)
		}
		for k < len(cs) && cs[k].start < start {
			k++
		}
		if k < len(cs) && cs[k].start == start {
			if err := f(cs[k], b); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't read the %s of the chunks of %s: %w", col, s, err)
	}
	return nil
}

// rowsWithin reports whether a row (rows in time order) was measured in [t0, t1].
func rowsWithin(rows []series.Point, t0, t1 int64) bool {
	k, _ := slices.BinarySearchFunc(rows, t0, func(p series.Point, t int64) int { return cmp.Compare(p.T, t) })
	return k < len(rows) && rows[k].T <= t1
}

// slotsWhole reports whether every slot summary of c (read by readChunkSlots; none if c has none) lies
// inside [lo, hi) and is taken whole by whole.
func slotsWhole(c *chunkRow, lo, hi int64, whole func(c *chunkRow) bool) bool {
	for k := range c.slots {
		if sl := &c.slots[k]; sl.start < lo || sl.end >= hi || !whole(sl) {
			return false
		}
	}
	return len(c.slots) > 0
}

// readChunkSlots reads the slot summaries of the chunks cs of s (in time order) in one query over their
// span, and sets each chunk's slots; a chunk without them (made before slots were kept) keeps none.
func readChunkSlots(ctx context.Context, q querier, s sig, cs []*chunkRow) error {
	return eachChunkBlob(ctx, q, s, "chunk_slots", "slots", cs, func(c *chunkRow, b []byte) error {
		ss, err := series.ParseSlots(b, c.start)
		if err != nil {
			return fmt.Errorf("the slot summaries of the chunk of %s from %d: %w", s, c.start, err)
		}
		c.slots = make([]chunkRow, len(ss))
		n := int64(0)
		for i := range ss {
			sl := &ss[i]
			c.slots[i] = chunkRow{start: sl.Start, end: sl.End, cnt: int64(sl.Count), lo: sl.Min, hi: sl.Max,
				fv: sl.First, lv: sl.Last, exact: &sl.Sum}
			n += int64(sl.Count)
		}
		if n != c.cnt || len(ss) == 0 || ss[0].Start != c.start || ss[len(ss)-1].End != c.end {
			return fmt.Errorf("the slot summaries of the chunk of %s from %d: %w: %d values, its summary says %d from %d to %d",
				s, c.start, chunk.ErrCorrupt, n, c.cnt, c.start, c.end)
		}
		return nil
	})
}

// decodeChunks returns the values of the chunks of s that start in [lo, hi), and how many chunks they are.
func decodeChunks(ctx context.Context, q querier, s sig, lo, hi int64, dst []series.Point) ([]series.Point, int, error) {
	cs, err := readChunks(ctx, q, s, lo, hi, true)
	if err != nil {
		return dst, 0, err
	}
	for i := range cs {
		if dst, err = cs[i].decode(ctx, q, s, dst); err != nil {
			return dst, 0, err
		}
	}
	return dst, len(cs), nil
}

// eachRowValue calls f with each open value of s (open_values) measured in [lo, hi), in time order: of
// several stored at one millisecond, the first.
func eachRowValue(ctx context.Context, q querier, s sig, lo, hi int64, f func(series.Point) error) error {
	var pts []series.Point
	hour := int64(0)
	flush := func() error {
		for _, p := range firstPerTime(pts) {
			if err := f(p); err != nil {
				return err
			}
		}
		pts = pts[:0]
		return nil
	}
	if err := eachOpenRow(ctx, q, s.vehicle, s.name, lo, hi, func(h, _ int64, vals []openValue) error {
		if h != hour { // the hours come in order, and each one's values are sorted apart
			if err := flush(); err != nil {
				return err
			}
			hour = h
		}
		for _, v := range vals {
			if v.p.T < lo || v.p.T >= hi {
				continue
			}
			if !kindHolds(s.kind, v.p.V) {
				return fmt.Errorf("the value of %s at %d: %w: a %T", s, v.p.T, chunk.ErrCorrupt, v.p.V)
			}
			pts = append(pts, v.p)
		}
		return nil
	}); err != nil {
		return err
	}
	return flush()
}

// kindHolds reports whether v, as decodeOpenValues returns it, is a value of a signal of kind.
func kindHolds(kind telemetry.Kind, v any) bool {
	switch v.(type) {
	case float64:
		return numeric(kind)
	case string:
		return kind == telemetry.KindString || kind == telemetry.KindStrings
	case []byte:
		return kind == telemetry.KindLocation
	}
	return false
}

// pointValue is a value read from a row as a series.Point holds it. A database made before the signals
// table's val lost its type affinity may hold a number for a string that looked like one.
func pointValue(kind telemetry.Kind, v any) (any, error) {
	switch kind {
	case telemetry.KindNumber, telemetry.KindBool:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		}
	case telemetry.KindString, telemetry.KindStrings:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		}
	case telemetry.KindLocation:
		if b, ok := v.([]byte); ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("a stored value of kind %d is a %T", kind, v)
}

// walk calls onValue with every value of s measured in [lo, hi) in time order, as eachValue does, but
// hands a chunk that lies wholly inside [lo, hi) to onChunk instead of decoding it when whole(c) says so
// (never for a chunk that a row's time falls within: those are merged value by value). Chunks and values
// come in time order. With whole nil every chunk is decoded.
func walk(ctx context.Context, q querier, s sig, lo, hi int64, whole func(c *chunkRow) bool,
	onChunk func(c *chunkRow) error, onValue func(series.Point) error) error {
	var rows []series.Point
	if err := eachRowValue(ctx, q, s, lo, hi, func(p series.Point) error {
		rows = append(rows, p)
		return nil
	}); err != nil {
		return err
	}
	cs, err := readChunks(ctx, q, s, lo, hi, whole == nil)
	if err != nil {
		return err
	}
	if whole != nil {
		// A chunk that is not taken whole may be taken slot by slot (an aggregation in buckets of five
		// minutes); the data of the chunks that will be decoded is read in one query rather than one each.
		var slotted, need []*chunkRow
		for k := range cs {
			c := &cs[k]
			switch {
			case c.start >= lo && c.end < hi && whole(c):
			case numeric(s.kind) && c.cnt >= series.MinSlotValues && !rowsWithin(rows, c.start, c.end):
				slotted = append(slotted, c)
			default:
				need = append(need, c)
			}
		}
		if len(slotted) > 0 {
			if err := readChunkSlots(ctx, q, s, slotted); err != nil {
				return err
			}
			for _, c := range slotted {
				if !slotsWhole(c, lo, hi, whole) {
					c.slots = nil
					need = append(need, c)
				}
			}
		}
		if len(need) > 1 {
			slices.SortFunc(need, func(a, b *chunkRow) int { return cmp.Compare(a.start, b.start) })
			if err := readChunkData(ctx, q, s, need); err != nil {
				return err
			}
		}
	}
	i := 0 // the next row
	var buf []series.Point
	for k := range cs {
		c := &cs[k]
		for i < len(rows) && rows[i].T < c.start {
			if err := onValue(rows[i]); err != nil {
				return err
			}
			i++
		}
		if whole != nil && c.start >= lo && c.end < hi && (i == len(rows) || rows[i].T > c.end) && whole(c) {
			if err := onChunk(c); err != nil {
				return err
			}
			continue
		}
		if c.slots != nil {
			for k := range c.slots {
				if err := onChunk(&c.slots[k]); err != nil {
					return err
				}
			}
			continue
		}
		if buf, err = c.decode(ctx, q, s, buf[:0]); err != nil {
			return err
		}
		for _, p := range buf {
			if p.T < lo || p.T >= hi {
				continue
			}
			for i < len(rows) && rows[i].T < p.T {
				if err := onValue(rows[i]); err != nil {
					return err
				}
				i++
			}
			if i < len(rows) && rows[i].T == p.T {
				i++ // the chunk's value wins
			}
			if err := onValue(p); err != nil {
				return err
			}
		}
	}
	for ; i < len(rows); i++ {
		if err := onValue(rows[i]); err != nil {
			return err
		}
	}
	return nil
}

// eachValue calls f with every value of s measured in [lo, hi), in time order: the values of its chunks
// merged with its rows (a chunk's value wins at a time both have). Every read of values goes through it
// (or walk).
func eachValue(ctx context.Context, q querier, s sig, lo, hi int64, f func(series.Point) error) error {
	return walk(ctx, q, s, lo, hi, nil, nil, f)
}
