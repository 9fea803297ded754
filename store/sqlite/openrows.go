package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/chunk"
	"github.com/glovebox/glovebox/telemetry/series"
)

// The values of open hours (chunks.go) are kept one row per record and hour in open_values: the values
// one record holds for one UTC hour, in a compact blob. Indexing a record of ten signals is then one
// B-tree insert instead of ten (docs/columnar.md, "The ingest path"). Every read of open values decodes
// the rows of the vehicle and the hours it asks for and keeps the signal it wants; Seal turns each
// (vehicle, hour) into the chunks of every signal at once.
//
// The blob is a sequence of values, each
//
//	uvarint name id | uvarint time - hour (ms) | tag byte | value
//
// with tag 0 a number or boolean (8 bytes, the float64's bits little-endian), tag 1 a string or string[]
// (uvarint length, then the bytes), tag 2 a location (24 bytes, telemetry.EncodeLocation). Of several
// values of one signal at one millisecond the one stored first (the lowest seq; within a row the first)
// is the value, as the indexer's rows kept the first before.

const openSchema = `
-- The values of open hours: one row per record (seq, its sequence number in records.db) and UTC hour,
-- cnt values in vals (openrows.go). Rows migrated from the layout of a row per value have negative seqs.
CREATE TABLE IF NOT EXISTS open_values (
	vehicle INTEGER NOT NULL, hour INTEGER NOT NULL, seq INTEGER NOT NULL, cnt INTEGER NOT NULL, vals BLOB NOT NULL,
	PRIMARY KEY (vehicle, hour, seq)) WITHOUT ROWID;
-- The (vehicle, hour) groups with rows in open_values, which Seal moves into chunks once the hour is
-- closed (the indexer adds a group when it writes rows into it).
CREATE TABLE IF NOT EXISTS open_hours (
	hour INTEGER NOT NULL, vehicle INTEGER NOT NULL,
	PRIMARY KEY (hour, vehicle)) WITHOUT ROWID;
`

// Tags of the values in an open_values blob.
const (
	tagNumber   = 0
	tagString   = 1
	tagLocation = 2
)

// openValue is one value of an open_values row.
type openValue struct {
	name int64
	p    series.Point // V: float64, string, or a 24-byte location
}

// appendOpenValue appends a value of the signal with the name id measured at t (in the hour starting at
// hour) to the blob b.
func appendOpenValue(b []byte, name, hour int64, v *telemetry.Value) []byte {
	b = binary.AppendUvarint(b, uint64(name))
	b = binary.AppendUvarint(b, uint64(v.Time-hour))
	switch v.Signal.Kind {
	case telemetry.KindString, telemetry.KindStrings:
		b = append(b, tagString)
		b = binary.AppendUvarint(b, uint64(len(v.String)))
		return append(b, v.String...)
	case telemetry.KindLocation:
		b = append(b, tagLocation)
		for _, f := range [3]float64{v.Lat, v.Lon, v.HDOP} {
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(f))
		}
		return b
	}
	b = append(b, tagNumber)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Number))
}

// appendPoint appends p, a value of a signal of kind as a series.Point holds it, to the blob b.
func appendPoint(b []byte, name, hour int64, kind telemetry.Kind, p series.Point) ([]byte, error) {
	if !kindHolds(kind, p.V) {
		return b, fmt.Errorf("a value of kind %d is a %T", kind, p.V)
	}
	b = binary.AppendUvarint(b, uint64(name))
	b = binary.AppendUvarint(b, uint64(p.T-hour))
	return appendTagged(b, p.V)
}

// appendTagged appends a value as a series.Point holds it (float64, string, or a 24-byte location) to b:
// its tag and its bytes.
func appendTagged(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case float64:
		b = append(b, tagNumber)
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x)), nil
	case string:
		b = append(b, tagString)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...), nil
	case []byte:
		if len(x) != 24 {
			return b, fmt.Errorf("a location is 24 bytes, not %d", len(x))
		}
		b = append(b, tagLocation)
		return append(b, x...), nil
	}
	return b, fmt.Errorf("no stored form for a %T", v)
}

// skipTagged returns b after the value appendTagged wrote at its start, without reading the value.
func skipTagged(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return b, fmt.Errorf("%w: a value has no tag", chunk.ErrCorrupt)
	}
	switch b[0] {
	case tagNumber:
		if len(b) < 9 {
			return b, fmt.Errorf("%w: a number is cut short", chunk.ErrCorrupt)
		}
		return b[9:], nil
	case tagString:
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || n > uint64(len(b)-1-k) {
			return b, fmt.Errorf("%w: a string is cut short", chunk.ErrCorrupt)
		}
		return b[1+k+int(n):], nil
	case tagLocation:
		if len(b) < 25 {
			return b, fmt.Errorf("%w: a location is cut short", chunk.ErrCorrupt)
		}
		return b[25:], nil
	}
	return b, fmt.Errorf("%w: a value has the unknown tag %d", chunk.ErrCorrupt, b[0])
}

// readTagged reads a value appendTagged wrote at the start of b and returns it and the rest of b.
func readTagged(b []byte) (any, []byte, error) {
	if len(b) == 0 {
		return nil, b, fmt.Errorf("%w: a value has no tag", chunk.ErrCorrupt)
	}
	tag := b[0]
	b = b[1:]
	switch tag {
	case tagNumber:
		if len(b) < 8 {
			return nil, b, fmt.Errorf("%w: a number is cut short", chunk.ErrCorrupt)
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), b[8:], nil
	case tagString:
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, b, fmt.Errorf("%w: a string is cut short", chunk.ErrCorrupt)
		}
		return string(b[k : k+int(n)]), b[k+int(n):], nil
	case tagLocation:
		if len(b) < 24 {
			return nil, b, fmt.Errorf("%w: a location is cut short", chunk.ErrCorrupt)
		}
		return b[:24:24], b[24:], nil
	}
	return nil, b, fmt.Errorf("%w: a value has the unknown tag %d", chunk.ErrCorrupt, tag)
}

// decodeOpenValues appends the values of the blob b of a row of the hour starting at hour to dst, those
// of the signal with the name id only when name is not 0. It accepts only what appendOpenValue writes.
func decodeOpenValues(dst []openValue, b []byte, hour, name int64) ([]openValue, error) {
	for len(b) > 0 {
		id, k := binary.Uvarint(b)
		if k <= 0 {
			return dst, fmt.Errorf("%w: a value's signal is cut short", chunk.ErrCorrupt)
		}
		b = b[k:]
		off, k := binary.Uvarint(b)
		if k <= 0 || off >= uint64(series.HourMs) {
			return dst, fmt.Errorf("%w: a value's time is cut short or outside its hour", chunk.ErrCorrupt)
		}
		if name != 0 && int64(id) != name {
			rest, err := skipTagged(b[k:])
			if err != nil {
				return dst, err
			}
			b = rest
			continue
		}
		v, rest, err := readTagged(b[k:])
		if err != nil {
			return dst, err
		}
		b = rest
		if loc, ok := v.([]byte); ok {
			v = slices.Clone(loc) // b is the driver's buffer
		}
		dst = append(dst, openValue{name: int64(id), p: series.Point{T: hour + int64(off), V: v}})
	}
	return dst, nil
}

// eachOpenRow calls f with the values of each open_values row of vehicle in the hours that hold [lo, hi),
// in (hour, seq) order: only those of the signal with the name id when name is not 0.
func eachOpenRow(ctx context.Context, q querier, vehicle uint64, name, lo, hi int64, f func(hour int64, seq int64, vals []openValue) error) error {
	rows, err := q.QueryContext(ctx, `SELECT hour, seq, vals FROM open_values WHERE vehicle = ? AND hour >= ? AND hour < ? ORDER BY hour, seq`,
		vehicle, series.Hour(lo), hi)
	if err != nil {
		return fmt.Errorf("couldn't read the open values of vehicle %d: %w", vehicle, err)
	}
	defer rows.Close()
	var buf []openValue
	var b sql.RawBytes // decodeOpenValues copies what it keeps
	for rows.Next() {
		var hour, seq int64
		if err := rows.Scan(&hour, &seq, &b); err != nil {
			return fmt.Errorf("couldn't read the open values of vehicle %d: %w", vehicle, err)
		}
		if buf, err = decodeOpenValues(buf[:0], b, hour, name); err != nil {
			return fmt.Errorf("the open values of vehicle %d in the hour from %d (record %d): %w", vehicle, hour, seq, err)
		}
		if err := f(hour, seq, buf); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't read the open values of vehicle %d: %w", vehicle, err)
	}
	return nil
}

// openValuesByName returns the open values of vehicle measured in [lo, hi), per signal in time order,
// one per millisecond (the first stored).
func openValuesByName(ctx context.Context, q querier, vehicle uint64, lo, hi int64) (map[int64][]series.Point, error) {
	out := map[int64][]series.Point{}
	err := eachOpenRow(ctx, q, vehicle, 0, lo, hi, func(_, _ int64, vals []openValue) error {
		for _, v := range vals {
			if v.p.T >= lo && v.p.T < hi {
				out[v.name] = append(out[v.name], v.p)
			}
		}
		return nil
	})
	for name, pts := range out {
		out[name] = firstPerTime(pts)
	}
	return out, err
}

// firstPerTime sorts pts (in the order stored) by time and keeps the first of each millisecond.
func firstPerTime(pts []series.Point) []series.Point {
	slices.SortStableFunc(pts, func(a, b series.Point) int { return cmp.Compare(a.T, b.T) })
	return slices.CompactFunc(pts, func(a, b series.Point) bool { return a.T == b.T })
}

// sealOpenHour moves the open values of vehicle in the hour starting at hour into chunks, every signal's
// merged with the chunks of the hour already stored (theirs win at a millisecond both have), and deletes
// the rows. It returns how many rows it moved.
func (t *Telemetry) sealOpenHour(ctx context.Context, tx dbtx, vehicle uint64, hour int64) (int, error) {
	byName := map[int64][]series.Point{}
	rows := 0
	if err := eachOpenRow(ctx, tx, vehicle, 0, hour, hour+series.HourMs, func(h, _ int64, vals []openValue) error {
		rows++
		for _, v := range vals {
			byName[v.name] = append(byName[v.name], v.p)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	if rows == 0 {
		return 0, nil
	}
	names := make([]int64, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s, err := t.sigOf(vehicle, name)
		if err != nil {
			return 0, err
		}
		if err := t.mergeIntoChunks(ctx, tx, s, hour, byName[name]); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM open_values WHERE vehicle = ? AND hour = ?`, vehicle, hour); err != nil {
		return 0, fmt.Errorf("couldn't delete the open values of vehicle %d in the hour from %d: %w", vehicle, hour, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM open_hours WHERE hour = ? AND vehicle = ?`, hour, vehicle); err != nil {
		return 0, fmt.Errorf("couldn't mark the hour from %d of vehicle %d sealed: %w", hour, vehicle, err)
	}
	return rows, nil
}

// deleteOpenValues deletes up to budget values of vehicle measured in [from, to) from open_values,
// rewriting the rows that keep others, and returns how many values it deleted (a millisecond of a signal
// stored twice counts once).
func deleteOpenValues(ctx context.Context, tx dbtx, t *Telemetry, vehicle uint64, from, to, budget int64) (int64, error) {
	type row struct {
		hour, seq int64
		vals      []openValue
	}
	var rows []row
	if err := eachOpenRow(ctx, tx, vehicle, 0, from, to, func(hour, seq int64, vals []openValue) error {
		rows = append(rows, row{hour, seq, slices.Clone(vals)})
		return nil
	}); err != nil {
		return 0, err
	}
	type key struct{ name, t int64 }
	gone := map[key]bool{}
	var deleted int64
	for _, r := range rows {
		keep := r.vals[:0:0]
		for _, v := range r.vals {
			k := key{v.name, v.p.T}
			if v.p.T >= from && v.p.T < to && (budget > 0 || gone[k]) {
				if !gone[k] {
					gone[k] = true
					deleted, budget = deleted+1, budget-1
				}
				continue
			}
			keep = append(keep, v)
		}
		if len(keep) == len(r.vals) {
			continue
		}
		if len(keep) == 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM open_values WHERE vehicle = ? AND hour = ? AND seq = ?`, vehicle, r.hour, r.seq); err != nil {
				return deleted, fmt.Errorf("couldn't delete open values: %w", err)
			}
			continue
		}
		var b []byte
		for _, v := range keep {
			s, err := t.sigOf(vehicle, v.name)
			if err != nil {
				return deleted, err
			}
			if b, err = appendPoint(b, v.name, r.hour, s.kind, v.p); err != nil {
				return deleted, fmt.Errorf("the open values of vehicle %d in the hour from %d: %w", vehicle, r.hour, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE open_values SET cnt = ?, vals = ? WHERE vehicle = ? AND hour = ? AND seq = ?`,
			len(keep), b, vehicle, r.hour, r.seq); err != nil {
			return deleted, fmt.Errorf("couldn't rewrite open values: %w", err)
		}
	}
	return deleted, nil
}

// migrateSignalRows moves the values of a signals table (the layout of a row per value, before
// chunk_version 2) into open_values, a row per vehicle, signal and hour with a negative seq (they were
// stored before any record indexed from now on), lists their hours in open_hours and drops the table.
// Seal then moves those of closed hours into chunks.
func (t *Telemetry) migrateSignalRows(ctx context.Context) error {
	var n int
	if err := t.idx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'signals'`).Scan(&n); err != nil {
		return fmt.Errorf("couldn't look for a signals table: %w", err)
	}
	if n == 0 {
		return nil
	}
	tx, err := t.idx.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't begin moving the signals table: %w", err)
	}
	defer tx.Rollback()
	// Read in primary-key order, one group at a time held in memory.
	rows, err := tx.QueryContext(ctx, `SELECT vehicle, name, time, val FROM signals ORDER BY vehicle, name, time`)
	if err != nil {
		return fmt.Errorf("couldn't read the signals table: %w", err)
	}
	defer rows.Close()
	type group struct {
		s          sig
		hour       int64
		cnt        int
		vals       []byte
		vehicleSet bool
	}
	var g group
	seq := int64(0)
	flush := func() error {
		if g.cnt == 0 {
			return nil
		}
		seq--
		if _, err := tx.ExecContext(ctx, `INSERT INTO open_values (vehicle, hour, seq, cnt, vals) VALUES (?, ?, ?, ?, ?)`,
			g.s.vehicle, g.hour, seq, g.cnt, g.vals); err != nil {
			return fmt.Errorf("couldn't move values of %s: %w", g.s, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO open_hours (hour, vehicle) VALUES (?, ?) ON CONFLICT DO NOTHING`, g.hour, g.s.vehicle); err != nil {
			return fmt.Errorf("couldn't list the hour of values of %s: %w", g.s, err)
		}
		g.cnt, g.vals = 0, g.vals[:0]
		return nil
	}
	for rows.Next() {
		var vehicle uint64
		var name int64
		var p series.Point
		if err := rows.Scan(&vehicle, &name, &p.T, &p.V); err != nil {
			return fmt.Errorf("couldn't read the signals table: %w", err)
		}
		if !g.vehicleSet || g.s.vehicle != vehicle || g.s.name != name || g.hour != series.Hour(p.T) {
			if err := flush(); err != nil {
				return err
			}
			if g.s, err = t.sigOf(vehicle, name); err != nil {
				return err
			}
			g.hour, g.vehicleSet = series.Hour(p.T), true
		}
		if p.V, err = pointValue(g.s.kind, p.V); err != nil {
			return fmt.Errorf("the value of %s at %d: %w", g.s, p.T, err)
		}
		if g.vals, err = appendPoint(g.vals, name, g.hour, g.s.kind, p); err != nil {
			return fmt.Errorf("the value of %s at %d: %w", g.s, p.T, err)
		}
		g.cnt++
	}
	if err := errors.Join(rows.Err(), flush()); err != nil {
		return fmt.Errorf("couldn't move the signals table: %w", err)
	}
	rows.Close()
	if _, err := tx.ExecContext(ctx, `DROP TABLE signals; DROP TABLE IF EXISTS unsealed`); err != nil {
		return fmt.Errorf("couldn't drop the signals table: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("couldn't commit moving the signals table: %w", err)
	}
	return nil
}

// newestOpen returns the newest open value of each signal of vehicle (the first stored at its time).
func newestOpen(ctx context.Context, q querier, vehicle uint64) (map[int64]series.Point, error) {
	out := map[int64]series.Point{}
	err := eachOpenRow(ctx, q, vehicle, 0, math.MinInt64/2, math.MaxInt64, func(_, _ int64, vals []openValue) error {
		for _, v := range vals {
			if old, ok := out[v.name]; !ok || v.p.T > old.T {
				out[v.name] = v.p
			}
		}
		return nil
	})
	return out, err
}
