package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/chunk"
	"github.com/glovebox/glovebox/telemetry/series"
)

// Signal values are kept in two forms (docs/columnar.md):
//
//   - chunks: the values of one signal of one vehicle within one closed UTC hour, encoded by
//     telemetry/series, a row in chunk_data each, with a summary row in chunk_sums (count, exact sum,
//     minimum, maximum, first and last value, values per minute) that answers most aggregations without
//     decoding;
//   - open values (open_values, openrows.go), a row per record and hour holding its values, for the
//     hours that are not closed yet.
//
// An hour h is closed when h + series.HourMs + SealGrace <= now. The indexer writes the values of closed
// hours (a backfill, a reindex, a late record) straight into chunks, merging them with the hour's chunks
// and rows already stored, and the values of open hours as rows; Seal, which the indexer's loop runs
// every SealInterval, moves the rows of hours that have closed since into chunks. For one vehicle, signal
// and hour the values are thus either all in chunks or all in rows, except inside one transaction. A
// reader merges both anyway (a value in a chunk wins over a row at the same millisecond), so that an
// answer never depends on when the last seal ran.

// SealGrace is how long after the end of an hour its values stay rows, waiting for late records, before
// Seal moves them into chunks (and the indexer writes that hour's values straight into chunks).
const SealGrace = 2 * time.Minute

// SealInterval is how often the indexer's loop seals the hours that have closed.
const SealInterval = 30 * time.Second

// sealBatch and sealTxTime bound a transaction of Seal: at most sealBatch (vehicle, signal, hour) groups,
// and no more once it has taken sealTxTime, so that the indexer, which waits for it, is not held up.
const (
	sealBatch  = 512
	sealTxTime = 100 * time.Millisecond
)

const chunksSchema = `
-- One row per chunk (telemetry/series): cnt values of one signal of one vehicle, all within the UTC hour
-- of start, from start to end (the times of the first and last, unix ms); fv and lv the first and last
-- value (no type affinity: a string stays a string). For numbers and booleans: xsum the exact sum
-- (chunk.Sum.AppendBinary), lo and hi the minimum and maximum, minutes the number of values in each
-- minute from the one of start to the one of end (uvarints, for Active); NULL for other kinds.
CREATE TABLE IF NOT EXISTS chunk_sums (
	vehicle INTEGER NOT NULL, name INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
	cnt INTEGER NOT NULL, xsum BLOB, lo REAL, hi REAL, fv, lv, minutes BLOB,
	PRIMARY KEY (vehicle, name, start)) WITHOUT ROWID;
-- The encoded chunk (series.Encode), apart from the summaries so that a scan of summaries reads short rows.
CREATE TABLE IF NOT EXISTS chunk_data (
	vehicle INTEGER NOT NULL, name INTEGER NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL,
	PRIMARY KEY (vehicle, name, start));
-- The five-minute slot summaries of a chunk of numbers or booleans of at least series.MinSlotValues
-- values (series.AppendSlots), which answer aggregations in buckets of five minutes or a multiple of
-- them without decoding the chunk.
CREATE TABLE IF NOT EXISTS chunk_slots (
	vehicle INTEGER NOT NULL, name INTEGER NOT NULL, start INTEGER NOT NULL, slots BLOB NOT NULL,
	PRIMARY KEY (vehicle, name, start)) WITHOUT ROWID;
`

// chunkVersion is the layout of signals.db's values: 2 chunks, open_values rows (a row per record and
// hour) for open hours, and the latest values a row per vehicle (latest_values, latest_sources); 1
// chunks, the signals table (a row per value) for open hours and the latest values a row per signal
// (latest, latest_source); before: a row per value, with the roll-up, stale and activity tables.
const chunkVersion = 2

// dbtx is a transaction, or a transaction whose statements are prepared once (stmtTx).
type dbtx interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// stmtTx runs a transaction's statements prepared once on the database (stmtCache): the indexer and Seal
// run the same few statements for every hour they write.
type stmtTx struct {
	tx *sql.Tx
	c  *stmtCache
}

// QueryContext runs a query in the transaction.
func (s stmtTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.c.get(ctx, s.tx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// ExecContext runs a statement in the transaction.
func (s stmtTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.c.get(ctx, s.tx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// sig names one signal of one vehicle: what a chunk or row belongs to.
type sig struct {
	vehicle uint64
	name    int64
	signal  string
	kind    telemetry.Kind
}

func (s sig) String() string { return fmt.Sprintf("%s of vehicle %d", s.signal, s.vehicle) }

// closedBefore returns the time before which every hour is closed at now.
func closedBefore(now time.Time) int64 {
	return series.Hour(now.UnixMilli() - SealGrace.Milliseconds())
}

// now returns the store's clock.
func (t *Telemetry) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// mergeIntoChunks rewrites the chunks of s in the hour starting at hour with add merged into them (in
// the order stored; a time already in a chunk keeps its value).
func (t *Telemetry) mergeIntoChunks(ctx context.Context, tx dbtx, s sig, hour int64, add []series.Point) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("couldn't write the hour from %d of %s as chunks: %w", hour, s, err)
		}
	}()
	old, chunks, err := decodeChunks(ctx, tx, s, hour, hour+series.HourMs, nil)
	if err != nil {
		return err
	}
	pts := series.Merge(old, add)
	if chunks > 0 {
		if err := deleteChunks(ctx, tx, s, hour, hour+series.HourMs); err != nil {
			return err
		}
	}
	return insertChunks(ctx, tx, s, pts)
}

// hourWrite is the rewrite of one signal's chunks in one closed hour by an indexing pass: the chunks
// stored (read, with their data, on the pass's transaction) and the values added, merged and encoded
// into chunk rows by an hourEncoder on other cores while the pass goes on with its statements.
type hourWrite struct {
	s    sig
	hour int64
	old  []chunkRow
	add  []series.Point
	rows chunkRows
	err  error
}

// chunkRows are the rows of chunk_sums, chunk_data and chunk_slots of some chunks.
type chunkRows struct {
	sums, data, slots [][]any
}

// hourEncoder merges and encodes hourWrites into their chunk rows on up to GOMAXPROCS goroutines, from
// the first one added.
type hourEncoder struct {
	work   chan *hourWrite
	wg     sync.WaitGroup
	n      int  // goroutines started
	closed bool // work is closed: wait was called
}

// newHourEncoder returns an hourEncoder; its goroutines start with the writes added.
func newHourEncoder() *hourEncoder {
	return &hourEncoder{work: make(chan *hourWrite, 64)}
}

// add hands w to a goroutine that sets its rows (or its error).
func (e *hourEncoder) add(w *hourWrite) {
	if e.n < runtime.GOMAXPROCS(0) {
		e.n++
		e.wg.Add(1)
		work := e.work
		go func() {
			defer e.wg.Done()
			for w := range work {
				w.rows, w.err = w.encode()
			}
		}()
	}
	e.work <- w
}

// wait waits until every write added is encoded. No write may be added after it; it may be called again.
func (e *hourEncoder) wait() {
	if !e.closed {
		close(e.work)
		e.closed = true
	}
	e.wg.Wait()
}

// encode returns the chunk rows of w's stored values merged with its added ones (a time stored before
// keeps its value).
func (w *hourWrite) encode() (chunkRows, error) {
	var old []series.Point
	for i := range w.old {
		var err error
		if old, err = w.old[i].decode(context.Background(), nil, w.s, old); err != nil {
			return chunkRows{}, fmt.Errorf("couldn't write the hour from %d of %s as chunks: %w", w.hour, w.s, err)
		}
	}
	var rows chunkRows
	if err := rows.add(w.s, series.Merge(old, w.add)); err != nil {
		return chunkRows{}, fmt.Errorf("couldn't write the hour from %d of %s as chunks: %w", w.hour, w.s, err)
	}
	return rows, nil
}

// add encodes pts (in time order, within one hour) and appends their chunk rows.
func (r *chunkRows) add(s sig, pts []series.Point) error {
	cs, err := series.Encode(s.kind, pts)
	if err != nil {
		return err
	}
	for _, c := range cs {
		var xsum, minutes []byte
		var lo, hi any
		if numeric(s.kind) {
			if xsum, err = c.Sum.AppendBinary(nil); err != nil {
				return err
			}
			lo, hi, minutes = c.Min, c.Max, minuteCounts(pts[:c.Count])
		}
		pts = pts[c.Count:]
		r.sums = append(r.sums, []any{s.vehicle, s.name, c.Start, c.End, c.Count, xsum, lo, hi, c.First, c.Last, minutes})
		r.data = append(r.data, []any{s.vehicle, s.name, c.Start, c.Data})
		if c.Slots != nil {
			r.slots = append(r.slots, []any{s.vehicle, s.name, c.Start, c.Slots})
		}
	}
	return nil
}

// insert inserts the rows, a prepared statement a row: a statement of many rows would need a statement
// journal (a page written for each page it changes), which cost more than it saved.
func (r *chunkRows) insert(ctx context.Context, tx dbtx) error {
	for _, t := range []struct {
		q    string
		rows [][]any
	}{
		{`INSERT INTO chunk_sums (vehicle, name, start, end, cnt, xsum, lo, hi, fv, lv, minutes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.sums},
		{`INSERT INTO chunk_data (vehicle, name, start, data) VALUES (?, ?, ?, ?)`, r.data},
		{`INSERT INTO chunk_slots (vehicle, name, start, slots) VALUES (?, ?, ?, ?)`, r.slots},
	} {
		for _, row := range t.rows {
			if _, err := tx.ExecContext(ctx, t.q, row...); err != nil {
				return fmt.Errorf("couldn't insert a chunk: %w", err)
			}
		}
	}
	return nil
}

// insertChunks encodes pts (in time order, within one hour) and inserts their chunk rows.
func insertChunks(ctx context.Context, tx dbtx, s sig, pts []series.Point) error {
	var rows chunkRows
	if err := rows.add(s, pts); err != nil {
		return err
	}
	return rows.insert(ctx, tx)
}

// deleteChunks deletes the chunks of s that start in [lo, hi).
func deleteChunks(ctx context.Context, tx dbtx, s sig, lo, hi int64) error {
	for _, table := range []string{"chunk_sums", "chunk_data", "chunk_slots"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE vehicle = ? AND name = ? AND start >= ? AND start < ?`,
			s.vehicle, s.name, lo, hi); err != nil {
			return fmt.Errorf("couldn't delete chunks from %s: %w", table, err)
		}
	}
	return nil
}

// minuteCounts encodes how many of pts (in time order, within one hour) fall in each minute from the
// first one's to the last one's, as uvarints.
func minuteCounts(pts []series.Point) []byte {
	if len(pts) == 0 {
		return nil
	}
	first := floorTo(pts[0].T, telemetry.MinuteMs)
	var out []byte
	m, n := first, uint64(0)
	for _, p := range pts {
		for pm := floorTo(p.T, telemetry.MinuteMs); m < pm; m += telemetry.MinuteMs {
			out = binary.AppendUvarint(out, n)
			n = 0
		}
		n++
	}
	return binary.AppendUvarint(out, n)
}

// eachMinute calls f with the start of each minute of a chunk starting at start and its count of values
// (minuteCounts), skipping empty minutes.
func eachMinute(start int64, b []byte, f func(minute int64, n uint64)) error {
	m := floorTo(start, telemetry.MinuteMs)
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return fmt.Errorf("%w: a chunk's minute counts end in the middle of a number", chunk.ErrCorrupt)
		}
		if n > 0 {
			f(m, n)
		}
		b, m = b[k:], m+telemetry.MinuteMs
	}
	return nil
}

// floorTo rounds x down to a multiple of w.
func floorTo(x, w int64) int64 {
	q := x / w
	if x%w != 0 && x < 0 {
		q--
	}
	return q * w
}

func numeric(k telemetry.Kind) bool { return k == telemetry.KindNumber || k == telemetry.KindBool }

// Seal moves the rows of every hour that is closed (SealGrace) into chunks and returns how many
// (vehicle, signal, hour) groups it moved. The indexer's loop calls it every SealInterval; queries are
// correct without it (they read rows and chunks alike), and so is indexing (it merges an hour's rows into
// its chunks when it writes them).
func (t *Telemetry) Seal(ctx context.Context) (int, error) {
	before := closedBefore(t.now())
	total := 0
	for {
		t.indexMu.Lock()
		n, more, err := t.sealSome(ctx, before)
		t.indexMu.Unlock()
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// sealSome seals groups with rows before the time before in one transaction, up to sealBatch of them
// and for about sealTxTime (the indexer waits for it), and reports whether more may be left.
func (t *Telemetry) sealSome(ctx context.Context, before int64) (n int, more bool, err error) {
	start := time.Now()
	tx, err := t.idx.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("couldn't begin sealing: %w", err)
	}
	defer tx.Rollback()
	type group struct {
		vehicle uint64
		hour    int64
	}
	var groups []group
	rows, err := tx.QueryContext(ctx, `SELECT vehicle, hour FROM open_hours WHERE hour < ? LIMIT ?`, before, sealBatch)
	if err != nil {
		return 0, false, fmt.Errorf("couldn't find the rows to seal: %w", err)
	}
	for rows.Next() {
		var g group
		if err := rows.Scan(&g.vehicle, &g.hour); err != nil {
			rows.Close()
			return 0, false, fmt.Errorf("couldn't find the rows to seal: %w", err)
		}
		groups = append(groups, g)
	}
	if err := rows.Close(); err != nil {
		return 0, false, fmt.Errorf("couldn't find the rows to seal: %w", err)
	}
	for _, g := range groups {
		if n > 0 && time.Since(start) > sealTxTime {
			break
		}
		n++
		if _, err := t.sealOpenHour(ctx, stmtTx{tx, &t.istmt}, g.vehicle, g.hour); err != nil {
			return 0, false, err
		}
		// an hour whose rows a deletion took has nothing to move, and is no longer open either
		if _, err := tx.ExecContext(ctx, `DELETE FROM open_hours WHERE hour = ? AND vehicle = ?`, g.hour, g.vehicle); err != nil {
			return 0, false, fmt.Errorf("couldn't mark the hour sealed: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("couldn't commit sealing: %w", err)
	}
	return n, n < len(groups) || len(groups) == sealBatch, nil
}

// sigOf returns the signal of vehicle with the name id, its kind from the catalogue.
func (t *Telemetry) sigOf(vehicle uint64, id int64) (sig, error) {
	t.mu.Lock()
	var name string
	for n, i := range t.names {
		if i == id {
			name = n
			break
		}
	}
	t.mu.Unlock()
	if name == "" { // not added through this store's indexer
		if err := t.idx.QueryRow(`SELECT name FROM names WHERE id = ?`, id).Scan(&name); err != nil {
			return sig{}, fmt.Errorf("couldn't look up signal %d: %w", id, err)
		}
		t.mu.Lock()
		t.names[name] = id
		t.mu.Unlock()
	}
	s, ok := t.cat.Lookup(name)
	if !ok {
		return sig{}, fmt.Errorf("signal %d (%q) is not in the catalogue: its values have no chunk format", id, name)
	}
	return sig{vehicle: vehicle, name: id, signal: name, kind: s.Kind}, nil
}

// migrateChunks brings a signals database of an older layout to chunkVersion: it moves the values of the
// signals table (a row per value) into open_values and the latest values into a row per vehicle, seals
// the values of closed hours and drops the roll-up tables.
func migrateChunks(ctx context.Context, t *Telemetry) error {
	var v int64
	err := t.idx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'chunk_version'`).Scan(&v)
	if err == nil && v == chunkVersion {
		return nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("couldn't read the layout version: %w", err)
	}
	if err := t.migrateSignalRows(ctx); err != nil {
		return err
	}
	if err := t.migrateLatestRows(ctx); err != nil {
		return err
	}
	if _, err := t.Seal(ctx); err != nil {
		return fmt.Errorf("couldn't move the values into chunks: %w", err)
	}
	if _, err := t.idx.ExecContext(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS rollup; DROP TABLE IF EXISTS stale; DROP TABLE IF EXISTS activity;
DELETE FROM meta WHERE key = 'rollup_version';
INSERT INTO meta (key, value) VALUES ('chunk_version', %d) ON CONFLICT (key) DO UPDATE SET value = excluded.value;`, chunkVersion)); err != nil {
		return fmt.Errorf("couldn't drop the roll-ups: %w", err)
	}
	return nil
}

// slotsVersion is 1 once every chunk that series.Encode gives slot summaries has them in chunk_slots.
const slotsVersion = 1

// migrateSlots adds the slot summaries of the chunks of a signals database made before they were kept
// (they are read correctly without them, by decoding, but more slowly), in transactions of sealBatch
// chunks.
func migrateSlots(ctx context.Context, t *Telemetry) error {
	var v int64
	err := t.idx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'slots_version'`).Scan(&v)
	if err == nil && v == slotsVersion {
		return nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("couldn't read the slot summaries' version: %w", err)
	}
	var after slotKey
	for {
		n, err := t.addSlots(ctx, &after)
		if err != nil {
			return fmt.Errorf("couldn't add the slot summaries of the stored chunks: %w", err)
		}
		if n < sealBatch {
			break
		}
	}
	if _, err := t.idx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('slots_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		slotsVersion); err != nil {
		return fmt.Errorf("couldn't record the slot summaries' version: %w", err)
	}
	return nil
}

// slotKey names a chunk: migrateSlots' position.
type slotKey struct {
	vehicle     uint64
	name, start int64
}

// addSlots adds the slot summaries of up to sealBatch chunks of numbers after *after (in key order) that
// should have them and have none, in one transaction, moves *after to the last, and returns how many
// chunks it looked at. A chunk that does not decode is logged and left without (reads report it).
func (t *Telemetry) addSlots(ctx context.Context, after *slotKey) (int, error) {
	t.indexMu.Lock()
	defer t.indexMu.Unlock()
	tx, err := t.idx.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT c.vehicle, c.name, c.start, c.end, c.cnt, d.data FROM chunk_sums c JOIN chunk_data d USING (vehicle, name, start)
WHERE (c.vehicle, c.name, c.start) > (?, ?, ?) AND c.cnt >= ? AND c.xsum IS NOT NULL
	AND NOT EXISTS (SELECT 1 FROM chunk_slots s WHERE s.vehicle = c.vehicle AND s.name = c.name AND s.start = c.start)
ORDER BY c.vehicle, c.name, c.start LIMIT ?`, after.vehicle, after.name, after.start, series.MinSlotValues, sealBatch)
	if err != nil {
		return 0, err
	}
	type todo struct {
		slotKey
		c chunkRow
	}
	var todos []todo
	for rows.Next() {
		var x todo
		if err := rows.Scan(&x.vehicle, &x.name, &x.start, &x.c.end, &x.c.cnt, &x.c.data); err != nil {
			rows.Close()
			return 0, err
		}
		x.c.start = x.start
		todos = append(todos, x)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	var pts []series.Point
	for _, x := range todos {
		*after = x.slotKey
		s, err := t.sigOf(x.vehicle, x.name)
		if err != nil {
			return 0, err
		}
		if pts, err = x.c.decode(ctx, tx, s, pts[:0]); err != nil {
			slog.Warn("a chunk does not decode; it gets no slot summaries", "err", err)
			continue
		}
		slots, err := series.Slots(pts)
		if err != nil {
			return 0, fmt.Errorf("the chunk of %s from %d: %w", s, x.start, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO chunk_slots (vehicle, name, start, slots) VALUES (?, ?, ?, ?)`,
			x.vehicle, x.name, x.start, series.AppendSlots(nil, slots)); err != nil {
			return 0, err
		}
	}
	return len(todos), tx.Commit()
}
