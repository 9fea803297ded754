package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/glovebox/glovebox/telemetry/chunk"
)

// The newest value of each signal of a vehicle is kept in one row per vehicle (latest_values), and per
// vehicle and source in one row each (latest_sources): a blob of the signals' (name id, time, value),
// in the order of the name ids. Indexing a pass of records then reads and rewrites one row per vehicle
// (and source) in it instead of upserting one row per signal, which had become most of the cost of
// indexing live records (docs/columnar.md, "The ingest path").
//
// The blob is a sequence of
//
//	uvarint name id | varint time (unix ms) | the value as in open_values (tag, bytes)
//
// and a value is a float64 (numbers and booleans), a string (strings, string[] as JSON) or a 24-byte
// location (telemetry.EncodeLocation), as series.Point holds them.

const latestSchema = `
-- The newest value of each signal of a vehicle, a row per vehicle (latestvals.go).
CREATE TABLE IF NOT EXISTS latest_values (vehicle INTEGER NOT NULL PRIMARY KEY, vals BLOB NOT NULL);
-- The same per source (the device that signed the record), for signalsLatest's source filter
-- (Reader.LatestFrom).
CREATE TABLE IF NOT EXISTS latest_sources (
	vehicle INTEGER NOT NULL, source BLOB NOT NULL, vals BLOB NOT NULL,
	PRIMARY KEY (vehicle, source)) WITHOUT ROWID;
`

// newest is the newest value of one signal.
type newest struct {
	name, t int64
	v       any
}

// encodeNewest returns the blob of ns (in name order).
func encodeNewest(ns []newest) ([]byte, error) {
	var b []byte
	for _, n := range ns {
		b = binary.AppendUvarint(b, uint64(n.name))
		b = binary.AppendVarint(b, n.t)
		var err error
		if b, err = appendTagged(b, n.v); err != nil {
			return nil, fmt.Errorf("the newest value of signal %d: %w", n.name, err)
		}
	}
	return b, nil
}

// decodeNewest appends the values of the blob b to dst. It accepts only what encodeNewest writes.
func decodeNewest(dst []newest, b []byte) ([]newest, error) {
	for len(b) > 0 {
		name, k := binary.Uvarint(b)
		if k <= 0 {
			return dst, fmt.Errorf("%w: a newest value's signal is cut short", chunk.ErrCorrupt)
		}
		b = b[k:]
		t, k := binary.Varint(b)
		if k <= 0 {
			return dst, fmt.Errorf("%w: a newest value's time is cut short", chunk.ErrCorrupt)
		}
		v, rest, err := readTagged(b[k:])
		if err != nil {
			return dst, err
		}
		if n := len(dst); n > 0 && dst[n-1].name >= int64(name) {
			return dst, fmt.Errorf("%w: newest values out of order", chunk.ErrCorrupt)
		}
		dst, b = append(dst, newest{int64(name), t, v}), rest
	}
	return dst, nil
}

// mergeNewest returns old (in name order) with the values of add that are as new as old's or newer (a
// value indexed later wins at the same time), in name order.
func mergeNewest(old []newest, add []newest) []newest {
	out := slices.Clone(old)
	for _, a := range add {
		i, found := slices.BinarySearchFunc(out, a.name, func(n newest, name int64) int { return cmp.Compare(n.name, name) })
		switch {
		case !found:
			out = slices.Insert(out, i, a)
		case a.t >= out[i].t:
			out[i] = a
		}
	}
	return out
}

// putNewest returns ns with n as its signal's newest value if it is as new as the one ns holds or newer
// (a value indexed later wins at the same time), or added if ns holds none; ns is in no order. The
// search starts at *hint, where the value of the signal before was found, plus one (a vehicle's records
// list their signals in much the same order), and leaves there where this one was found.
func putNewest(ns []newest, n newest, hint *int) []newest {
	for k := range ns {
		i := (*hint + 1 + k) % len(ns)
		if ns[i].name == n.name {
			if n.t >= ns[i].t {
				ns[i] = n
			}
			*hint = i
			return ns
		}
	}
	*hint = len(ns)
	return append(ns, n)
}

// latestKey names a row of latest_values (source nil) or latest_sources.
type latestKey struct {
	vehicle uint64
	source  string // the address's bytes
}

// MaxLatestRows bounds the rows of latest_values, and of latest_sources, whose blobs the indexer keeps
// (latestRows): at most this many each. A fleet of 10,000 vehicles sending ten signals keeps about 9 MB
// (a heap profile taken mid-ingest: the blobs and the maps, about 450 bytes a row), both tables full
// about 30 MB; a node with more vehicles reads the others' rows back.
const MaxLatestRows = 1 << 15

// latestRows keeps the blobs of latest_values and latest_sources rows as the indexer last wrote them, so
// that a pass merges a vehicle's new values into the blob it has instead of reading the row back: the
// read was about a sixth of indexing's CPU (BenchmarkIngestLive, 35.1–40.9 → 29.7–34.5 µs a record).
// Only committed blobs are kept: a pass stages what it writes, and its blobs are kept once its
// transaction has committed. It lives under indexMu, as every writer of those tables does; the others
// (erasure, retention, reindex) empty it.
type latestRows struct {
	rows, staged [2]map[latestKey][]byte // [0] latest_values, [1] latest_sources
}

// latestTable returns 0 for latest_values, 1 for latest_sources.
func latestTable(bySource bool) int {
	if bySource {
		return 1
	}
	return 0
}

// getIf returns the kept blob of k's row, if c is not nil and holds it.
func (c *latestRows) getIf(bySource bool, k latestKey) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	b, ok := c.rows[latestTable(bySource)][k]
	return b, ok
}

// stage remembers the blob a pass writes for k's row.
func (c *latestRows) stage(bySource bool, k latestKey, b []byte) {
	i := latestTable(bySource)
	if c.staged[i] == nil {
		c.staged[i] = map[latestKey][]byte{}
	}
	c.staged[i][k] = b
}

// commit keeps the staged blobs (their pass committed), at most MaxLatestRows rows a table.
func (c *latestRows) commit() {
	for i, staged := range c.staged {
		if c.rows[i] == nil {
			c.rows[i] = map[latestKey][]byte{}
		}
		for k, b := range staged {
			if _, ok := c.rows[i][k]; ok || len(c.rows[i]) < MaxLatestRows {
				c.rows[i][k] = b
			}
		}
		c.staged[i] = nil
	}
}

// drop forgets the staged blobs (their pass failed).
func (c *latestRows) drop() { c.staged = [2]map[latestKey][]byte{} }

// clear forgets everything: the tables were written by something else.
func (c *latestRows) clear() { *c = latestRows{} }

// updateLatest merges add (per vehicle or vehicle and source) into the rows of latest_values, or of
// latest_sources when bySource, in two statements per 500 rows: one reads the rows, one writes them.
// With keep (the indexer's pass) the rows whose blobs keep holds are not read, and the blobs written
// are staged in it; without (any other writer, under indexMu) what the indexer keeps is forgotten.
func (t *Telemetry) updateLatest(ctx context.Context, tx *sql.Tx, bySource bool, add map[latestKey][]newest, keep *latestRows) error {
	if len(add) == 0 {
		return nil
	}
	if keep == nil {
		t.newest.clear()
	}
	old := map[latestKey][]newest{}
	vehicles := make([]uint64, 0, len(add))
	seen := map[uint64]bool{}
	for k := range add {
		if b, ok := keep.getIf(bySource, k); ok {
			ns, err := decodeNewest(nil, b)
			if err != nil {
				return fmt.Errorf("the latest values of vehicle %d: %w", k.vehicle, err)
			}
			old[k] = ns
			continue
		}
		if !seen[k.vehicle] {
			seen[k.vehicle] = true
			vehicles = append(vehicles, k.vehicle)
		}
	}
	slices.Sort(vehicles)
	table, cols := "latest_values", "vehicle, vals"
	if bySource {
		table, cols = "latest_sources", "vehicle, source, vals"
	}
	const per = 500
	for start := 0; start < len(vehicles); start += per {
		part := vehicles[start:min(start+per, len(vehicles))]
		args := make([]any, len(part))
		for i, v := range part {
			args[i] = v
		}
		q := `SELECT ` + cols + ` FROM ` + table + ` WHERE vehicle IN (` + strings.TrimSuffix(strings.Repeat("?,", len(part)), ",") + `)`
		var rows *sql.Rows
		var err error
		if len(part) == per {
			var st *sql.Stmt
			if st, err = t.istmt.get(ctx, tx, q); err == nil {
				rows, err = st.QueryContext(ctx, args...)
			}
		} else {
			rows, err = tx.QueryContext(ctx, q, args...)
		}
		if err != nil {
			return fmt.Errorf("couldn't read the latest values: %w", err)
		}
		for rows.Next() {
			var k latestKey
			var source, b []byte
			dest := []any{&k.vehicle, &b}
			if bySource {
				dest = []any{&k.vehicle, &source, &b}
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return fmt.Errorf("couldn't read the latest values: %w", err)
			}
			k.source = string(source)
			if _, ok := add[k]; !ok {
				continue // another source of the vehicle
			}
			if _, ok := old[k]; ok {
				continue // kept (latestRows): another source of the vehicle was read
			}
			ns, err := decodeNewest(nil, b)
			if err != nil {
				rows.Close()
				return fmt.Errorf("the latest values of vehicle %d: %w", k.vehicle, err)
			}
			old[k] = ns
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("couldn't read the latest values: %w", err)
		}
	}
	out := make([][]any, 0, len(add))
	for k, ns := range add {
		slices.SortStableFunc(ns, func(a, b newest) int { return cmp.Compare(a.name, b.name) })
		b, err := encodeNewest(mergeNewest(old[k], ns))
		if err != nil {
			return fmt.Errorf("the latest values of vehicle %d: %w", k.vehicle, err)
		}
		if bySource {
			out = append(out, []any{k.vehicle, []byte(k.source), b})
		} else {
			out = append(out, []any{k.vehicle, b})
		}
		if keep != nil {
			keep.stage(bySource, k, b)
		}
	}
	conflict := `ON CONFLICT (vehicle) DO UPDATE SET vals = excluded.vals`
	if bySource {
		conflict = `ON CONFLICT (vehicle, source) DO UPDATE SET vals = excluded.vals`
	}
	return t.istmt.insertRows(ctx, tx, `INSERT INTO `+table+` (`+cols+`) VALUES`, conflict, out)
}

// readNewest returns the newest values of vehicle (from source, unless source is nil), in name order.
func readNewest(ctx context.Context, q querier, vehicle uint64, source []byte) ([]newest, error) {
	query, args := `SELECT vals FROM latest_values WHERE vehicle = ?`, []any{vehicle}
	if source != nil {
		query, args = `SELECT vals FROM latest_sources WHERE vehicle = ? AND source = ?`, []any{vehicle, source}
	}
	var out []newest
	err := eachQueryRow(ctx, q, query, args, func(scan func(...any) error) error {
		var b []byte
		if err := scan(&b); err != nil {
			return err
		}
		var err error
		out, err = decodeNewest(out, b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
	}
	return out, nil
}

// deleteNewest deletes the newest values of vehicle measured in [from, to), from every source too, and
// returns how many it deleted. What the indexer keeps of those rows is forgotten (under indexMu).
func (t *Telemetry) deleteNewest(ctx context.Context, tx *sql.Tx, vehicle uint64, from, to int64) (int64, error) {
	t.newest.clear()
	type row struct {
		source []byte // nil for latest_values
		ns     []newest
	}
	var rows []row
	for _, bySource := range []bool{false, true} {
		q := `SELECT NULL, vals FROM latest_values WHERE vehicle = ?`
		if bySource {
			q = `SELECT source, vals FROM latest_sources WHERE vehicle = ?`
		}
		err := eachQueryRow(ctx, tx, q, []any{vehicle}, func(scan func(...any) error) error {
			var source, b []byte
			if err := scan(&source, &b); err != nil {
				return err
			}
			if bySource && source == nil {
				source = []byte{}
			}
			ns, err := decodeNewest(nil, b)
			rows = append(rows, row{source, ns})
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
		}
	}
	var deleted int64
	for _, r := range rows {
		keep := slices.DeleteFunc(slices.Clone(r.ns), func(n newest) bool { return n.t >= from && n.t < to })
		if len(keep) == len(r.ns) {
			continue
		}
		deleted += int64(len(r.ns) - len(keep))
		var err error
		switch {
		case r.source == nil && len(keep) == 0:
			_, err = tx.ExecContext(ctx, `DELETE FROM latest_values WHERE vehicle = ?`, vehicle)
		case len(keep) == 0:
			_, err = tx.ExecContext(ctx, `DELETE FROM latest_sources WHERE vehicle = ? AND source = ?`, vehicle, r.source)
		default:
			var b []byte
			if b, err = encodeNewest(keep); err != nil {
				return deleted, err
			}
			if r.source == nil {
				_, err = tx.ExecContext(ctx, `UPDATE latest_values SET vals = ? WHERE vehicle = ?`, b, vehicle)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE latest_sources SET vals = ? WHERE vehicle = ? AND source = ?`, b, vehicle, r.source)
			}
		}
		if err != nil {
			return deleted, fmt.Errorf("couldn't delete latest values of vehicle %d: %w", vehicle, err)
		}
	}
	return deleted, nil
}

// migrateLatestRows moves the rows of the latest and latest_source tables (a row per signal, before
// chunk_version 3) into latest_values and latest_sources and drops them.
func (t *Telemetry) migrateLatestRows(ctx context.Context) error {
	exists := map[string]bool{}
	if err := eachQueryRow(ctx, t.idx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('latest', 'latest_source')`, nil,
		func(scan func(...any) error) error {
			var name string
			err := scan(&name)
			exists[name] = true
			return err
		}); err != nil {
		return fmt.Errorf("couldn't look for the latest tables: %w", err)
	}
	if len(exists) == 0 {
		return nil
	}
	tx, err := t.idx.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't begin moving the latest tables: %w", err)
	}
	defer tx.Rollback()
	for _, bySource := range []bool{false, true} {
		table, q := "latest", `SELECT vehicle, NULL, name, time, val FROM latest`
		if bySource {
			table, q = "latest_source", `SELECT vehicle, source, name, time, val FROM latest_source`
		}
		if !exists[table] {
			continue
		}
		add := map[latestKey][]newest{}
		err := eachQueryRow(ctx, tx, q, nil, func(scan func(...any) error) error {
			var k latestKey
			var source []byte
			var n newest
			if err := scan(&k.vehicle, &source, &n.name, &n.t, &n.v); err != nil {
				return err
			}
			s, err := t.sigOf(k.vehicle, n.name)
			if err != nil {
				return err
			}
			if n.v, err = pointValue(s.kind, n.v); err != nil {
				return fmt.Errorf("the latest value of %s: %w", s, err)
			}
			k.source = string(source)
			add[k] = append(add[k], n)
			return nil
		})
		if err != nil {
			return fmt.Errorf("couldn't move the latest values: %w", err)
		}
		if err := t.updateLatest(ctx, tx, bySource, add, nil); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE `+table); err != nil {
			return fmt.Errorf("couldn't drop the table %s: %w", table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("couldn't commit moving the latest tables: %w", err)
	}
	return nil
}
