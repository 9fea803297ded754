package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

// Telemetry stores device-signed records in SQLite files. The records table holds each record exactly
// as received (event bytes, signature, receive time, the ledger index of the pairing in force), written
// durably before a record is acknowledged (synchronous=FULL: the WAL is fsynced at every commit, and
// commits are grouped by the ingest writer). The signal values (chunks of closed hours and rows of open
// ones, chunks.go) and the latest values (the newest value per vehicle and signal, latestvals.go) are indexes derived
// from the records by the indexer, which follows the records table by sequence number; Reindex rebuilds
// them from scratch.
type Telemetry struct {
	// Now is the clock that decides which hours are closed (SealGrace); nil means time.Now. Set it, if at
	// all, before the indexer runs.
	Now func() time.Time

	db    *sql.DB // records: synchronous=FULL, every commit fsynced
	idx   *sql.DB // the same file for the indexer: synchronous=NORMAL, derived rows need no fsync
	cat   *telemetry.Catalog
	stmts stmtCache
	istmt stmtCache

	mu    sync.Mutex // guards names
	names map[string]int64

	indexMu sync.Mutex // serializes indexing

	latest  latestCache
	history *History // over idx

	derive telemetry.SpeedDeriver // the indexer's open runs of derived events (under indexMu)
	held   heldHours              // closed hours read and not written yet (under indexMu)
	newest latestRows             // the latest-value rows as the indexer last wrote them (under indexMu)

	// written wakes the indexer (RunIndexer) when Write stored new records.
	written chan struct{}

	handed handoff // records parsed at ingest, for the indexer
}

// handoff keeps the values of records that Write stored already parsed (by the ingester), until the
// indexer takes them instead of decoding and parsing the stored event again — which cost as much as a
// third of indexing. It is bounded; a record not in it (a full handoff, a restart, a record written
// unparsed) is parsed from storage, with the same result.
type handoff struct {
	mu      sync.Mutex
	m       map[int64]handedRecord // by seq
	through int64                  // the indexer has read every record up to this seq: older ones are not kept
}

// handedRecord is what the indexer needs of a parsed record: its values and events, not its event's
// bytes (which it would keep alive).
type handedRecord struct {
	key    recordKey
	values []telemetry.Value
	events []telemetry.Event
}

// handoffMax bounds the records in a handoff (each well under a kilobyte of parsed values), so that an
// indexer that falls behind costs little memory: what does not fit is parsed from storage.
const handoffMax = 2 * IndexChunk

// put keeps r, stored as seq.
func (h *handoff) put(seq int64, r *telemetry.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if seq <= h.through || len(h.m) >= handoffMax {
		return
	}
	if h.m == nil {
		h.m = map[int64]handedRecord{}
	}
	h.m[seq] = handedRecord{recordKey{r.Source, r.ID}, r.Values, r.Events}
}

// take returns the parsed record stored as seq under key, if kept, and forgets it.
func (h *handoff) take(seq int64, key recordKey) *telemetry.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[seq]
	if !ok {
		return nil
	}
	delete(h.m, seq)
	if e.key != key { // a seq reused after its record was deleted
		return nil
	}
	return &telemetry.Record{Source: key.source, ID: key.id, Values: e.values, Events: e.events}
}

// empty reports whether no parsed record is kept.
func (h *handoff) empty() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m) == 0
}

// read notes that the indexer has read every record up to seq: what is kept for them (records deleted
// before they were indexed) is forgotten, and nothing is kept for them from now on.
func (h *handoff) read(seq int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.through = max(h.through, seq)
	if len(h.m) > handoffMax/2 {
		for k := range h.m {
			if k <= h.through {
				delete(h.m, k)
			}
		}
	}
}

// IndexSpacing is the least time between the starts of two indexing passes that new records wake: the
// records of many writes share a pass, and a record is in signalsLatest well within 200 ms of its
// acknowledgement (issue 16; `glovebox bench visible`).
const IndexSpacing = 25 * time.Millisecond

var _ telemetry.Store = (*Telemetry)(nil)

const recordsSchema = `
CREATE TABLE IF NOT EXISTS records (
	seq INTEGER PRIMARY KEY, source BLOB NOT NULL, id TEXT NOT NULL, vehicle INTEGER NOT NULL,
	time INTEGER NOT NULL, received INTEGER NOT NULL, pairing INTEGER NOT NULL,
	event BLOB NOT NULL, signature BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS records_source_id ON records (source, id);
CREATE INDEX IF NOT EXISTS records_vehicle_time ON records (vehicle, time);
` + deletionsSchema

// signalsSchema is the derived database, a file of its own so that the indexer's long transactions never
// hold the lock the records writer needs.
const signalsSchema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
-- Driving events: those of glovebox.events records and those derived from speed (telemetry.Events).
CREATE TABLE IF NOT EXISTS events (
	vehicle INTEGER NOT NULL, time INTEGER NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL,
	duration_ns INTEGER NOT NULL, metadata TEXT NOT NULL,
	PRIMARY KEY (vehicle, time, name, source)) WITHOUT ROWID;
`

// WALCheckpointPages is how many pages the write-ahead log of the records and the derived databases
// holds before the commit that reaches it copies them into the database file (SQLite's automatic
// checkpoint; its default is 1,000). A page written by several commits between two checkpoints (an index
// leaf, the latest values of a vehicle) is copied once: at 10,000 pages (40 MB per file at most, reused
// rather than grown once reached) `glovebox bench ingest` acknowledged about 4 % more records per second
// than at 1,000 (four alternating pairs, 2 cores, quiet, 2026-12-07). A full disk is met the same way
// whatever the bound: a commit that cannot grow the log fails and loses nothing (node's full-disk test).
const WALCheckpointPages = 10000

var walCheckpoint = fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", WALCheckpointPages)

// SignalsFile is the name of the derived database, kept beside the records database.
const SignalsFile = "signals.db"

// OpenTelemetry opens (creating if needed) the telemetry store: the records in the SQLite file at path,
// the derived values and latest tables in SignalsFile beside it. A signals file of an older layout (a row
// per value, with roll-ups) is migrated: the rows of closed hours are moved into chunks.
func OpenTelemetry(path string, cat *telemetry.Catalog) (*Telemetry, error) {
	return OpenTelemetryWith(path, cat, Options{})
}

// Options are the settings in which a telemetry store opened by an offline tool differs from the node's.
// The zero value is the node's.
type Options struct {
	// MapRecords lets SQLite read the records file through a memory map of up to this many bytes
	// (PRAGMA mmap_size) instead of a read(2) and a copy per page. `glovebox reindex`, which reads every
	// record once, maps the whole file: 6–10 % less time for a fleet's day (docs/columnar.md). The node
	// does not: the pages it maps would count as its resident memory, which issue 16 bounds.
	MapRecords int64
}

// OpenTelemetryWith is OpenTelemetry with opts.
func OpenTelemetryWith(path string, cat *telemetry.Catalog, opts Options) (*Telemetry, error) {
	// Transactions begin IMMEDIATE: a transaction that reads before it writes and must upgrade to a write
	// lock after another commit fails at once with SQLITE_BUSY instead of waiting.
	// secure_delete(FAST) overwrites deleted rows' bytes on their pages (retention and erasure).
	pragmas := "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=secure_delete(FAST)&_txlock=immediate" + walCheckpoint
	db, err := sql.Open("sqlite", "file:"+path+pragmas+cachePragma(RecordsCacheKiB)+"&_pragma=synchronous(FULL)"+mapPragma(opts.MapRecords))
	if err != nil {
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	if _, err := db.Exec(recordsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create the records schema in %s: %w", path, err)
	}
	spath := filepath.Join(filepath.Dir(path), SignalsFile)
	// secure_delete(ON) for the values: a chunk's blob may lie on overflow pages, which FAST does not
	// overwrite when a deletion frees them.
	ipragmas := strings.Replace(pragmas, "secure_delete(FAST)", "secure_delete(ON)", 1)
	idx, err := sql.Open("sqlite", "file:"+spath+ipragmas+cachePragma(SignalsCacheKiB)+"&_pragma=synchronous(NORMAL)")
	if err == nil {
		_, err = idx.Exec(signalsSchema + chunksSchema + openSchema + latestSchema + deletionsSchema)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't open %s: %w", spath, err)
	}
	t := &Telemetry{written: make(chan struct{}, 1), db: db, idx: idx, cat: cat, stmts: stmtCache{db: db}, istmt: stmtCache{db: idx}, names: map[string]int64{},
		history: NewHistory(idx)}
	if err := t.loadNames(); err != nil {
		t.Close()
		return nil, err
	}
	if err := migrateChunks(context.Background(), t); err != nil {
		t.Close()
		return nil, err
	}
	if err := migrateSlots(context.Background(), t); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *Telemetry) loadNames() error {
	rows, err := t.idx.Query(`SELECT id, name FROM names`)
	if err != nil {
		return fmt.Errorf("couldn't read signal names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return err
		}
		t.names[name] = id
	}
	return rows.Err()
}

// SignalsDB returns the derived database (names, chunks, signals, latest), for this package's tests and
// the benchmarks' bookkeeping; readers use the telemetry.Reader methods.
func (t *Telemetry) SignalsDB() *sql.DB { return t.idx }

// DB returns the records database, for tests and the benchmarks' bookkeeping; readers use Records.
func (t *Telemetry) DB() *sql.DB { return t.db }

// Close closes the database.
func (t *Telemetry) Close() error {
	t.stmts.mu.Lock()
	for _, st := range t.stmts.m {
		st.Close()
	}
	t.stmts.mu.Unlock()
	t.istmt.mu.Lock()
	for _, st := range t.istmt.m {
		st.Close()
	}
	t.istmt.mu.Unlock()
	t.idx.Close()
	return t.db.Close()
}

type recordKey struct {
	source common.Address
	id     string
}

// Write implements telemetry.Store. A record's Values and Events, when it has any, must be what the
// catalogue parses from its Event (as the ingester's are): the indexer uses them instead of parsing the
// stored event again.
func (t *Telemetry) Write(ctx context.Context, recs []*telemetry.Record) ([]telemetry.Status, error) {
	out := make([]telemetry.Status, len(recs))
	// The first record of each key in the batch is the one that may be inserted; every other record is
	// compared with what ends up stored under its key.
	first := make(map[recordKey]int, len(recs))
	var rows [][]any
	var cand []int
	for i, r := range recs {
		k := recordKey{r.Source, r.ID}
		if _, ok := first[k]; ok {
			continue
		}
		first[k] = i
		cand = append(cand, i)
		rows = append(rows, []any{r.Source.Bytes(), r.ID, r.VehicleID, r.Time, r.Received, r.Pairing.FromIndex, encodeEvent(r.Event), r.Signature[:]})
	}
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("couldn't begin: %w", err)
	}
	defer tx.Rollback()
	inserted := make(map[recordKey]int64, len(cand)) // the seqs of the records inserted
	const cols = 8
	per := 500
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		// OR ROLLBACK: no statement journal (rollbackOnViolation); a duplicate is the upsert's to skip.
		q := `INSERT OR ROLLBACK INTO records (source, id, vehicle, time, received, pairing, event, signature) VALUES ` +
			strings.TrimSuffix(strings.Repeat(tuple+",", len(chunk)), ",") + ` ON CONFLICT (source, id) DO NOTHING RETURNING seq, source, id`
		args := make([]any, 0, len(chunk)*cols)
		for _, r := range chunk {
			args = append(args, r...)
		}
		var res *sql.Rows
		if len(chunk) == per {
			st, err := t.stmts.get(ctx, tx, q)
			if err != nil {
				return nil, fmt.Errorf("couldn't prepare the record insert: %w", err)
			}
			res, err = st.QueryContext(ctx, args...)
			if err != nil {
				return nil, fmt.Errorf("couldn't insert records: %w", err)
			}
		} else if res, err = tx.QueryContext(ctx, q, args...); err != nil {
			return nil, fmt.Errorf("couldn't insert records: %w", err)
		}
		for res.Next() {
			var seq int64
			var src []byte
			var id string
			if err := res.Scan(&seq, &src, &id); err != nil {
				res.Close()
				return nil, err
			}
			inserted[recordKey{common.BytesToAddress(src), id}] = seq
		}
		if err := res.Close(); err != nil {
			return nil, err
		}
	}
	stored := make(map[recordKey][]byte, len(cand))
	for _, i := range cand {
		r := recs[i]
		k := recordKey{r.Source, r.ID}
		if _, ok := inserted[k]; ok {
			out[i] = telemetry.StatusAccepted
			stored[k] = r.Event
			continue
		}
		var ev []byte
		if err := tx.QueryRowContext(ctx, `SELECT event FROM records WHERE source = ? AND id = ?`, r.Source.Bytes(), r.ID).Scan(&ev); err != nil {
			return nil, fmt.Errorf("couldn't read the stored record %s/%s: %w", r.Source.Hex(), r.ID, err)
		}
		if ev, err = DecodeEvent(ev); err != nil {
			return nil, fmt.Errorf("the stored record %s/%s: %w", r.Source.Hex(), r.ID, err)
		}
		stored[k] = ev
	}
	for i, r := range recs {
		if out[i] == telemetry.StatusAccepted {
			continue
		}
		if bytes.Equal(stored[recordKey{r.Source, r.ID}], r.Event) {
			out[i] = telemetry.StatusDuplicate
		} else {
			out[i] = telemetry.StatusConflict
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("couldn't commit records: %w", err)
	}
	for _, i := range cand {
		if r := recs[i]; len(r.Values) > 0 || len(r.Events) > 0 { // parsed
			if seq, ok := inserted[recordKey{r.Source, r.ID}]; ok {
				t.handed.put(seq, r)
			}
		}
	}
	if len(inserted) > 0 {
		select {
		case t.written <- struct{}{}:
		default: // the indexer is woken already
		}
	}
	return out, nil
}

// nameID returns the id of a signal name, adding it within tx when new.
func (t *Telemetry) nameID(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.names[name]; ok {
		return id, nil
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO names (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id`, name).Scan(&id); err != nil {
		return 0, fmt.Errorf("couldn't add signal name %s: %w", name, err)
	}
	t.names[name] = id
	return id, nil
}

// signalIDs finds the name ids of a pass's signals: by their place in the store's catalogue, or by
// name for a signal of another catalogue.
type signalIDs struct {
	cat *telemetry.Catalog
	ids []int64 // by Signal.Index; 0 not looked up yet
}

// signalIDs returns an empty signalIDs for one indexing pass.
func (t *Telemetry) signalIDs() signalIDs {
	return signalIDs{cat: t.cat, ids: make([]int64, len(t.cat.Signals))}
}

// of returns the name id of s, adding the name within tx when new.
func (x signalIDs) of(ctx context.Context, t *Telemetry, tx *sql.Tx, s *telemetry.Signal) (int64, error) {
	i := s.Index
	if i < 0 || i >= len(x.ids) || &x.cat.Signals[i] != s {
		return t.nameID(ctx, tx, s.Name)
	}
	if x.ids[i] == 0 {
		id, err := t.nameID(ctx, tx, s.Name)
		if err != nil {
			return 0, err
		}
		x.ids[i] = id
	}
	return x.ids[i], nil
}

// IndexChunk is how many records the indexer reads per transaction. The indexer holds two chunks parsed
// (one written, the next parsed meanwhile): at 8,192 the node's peak RSS under ingest from 10,000
// vehicles was 380 MB, at 2,048 298 MB (budget 300), for a backfill 10 % slower (1.71 → 1.55 M values/s,
// BenchmarkIndexASimulatedMonth; 2026-12-07, 2 cores, quiet). With the passes of a backfill cut at hours
// and reading on both cores (Index), 2,048 gave 257–262 MB and 1.79–1.82 M values/s (2026-12-07 05:15).
const IndexChunk = 2048

// Index derives signal and latest-value rows from records not yet indexed, one chunk per transaction,
// until it has caught up, and writes every closed hour it holds; it returns how many records it indexed.
func (t *Telemetry) Index(ctx context.Context) (int, error) {
	return t.index(ctx, true)
}

// IndexWritten is Index as the indexer's loop (RunIndexer) calls it when Write stored records: a
// vehicle's closed hour that the records leave unfinished stays held (heldHours) for the calls that
// continue it, until its vehicle's records reach a later hour, a call brings none of its values, or a
// call finds nothing new to index. A fleet's backfill arriving through ingest then writes each hour
// about once instead of once per call.
func (t *Telemetry) IndexWritten(ctx context.Context) (int, error) {
	return t.index(ctx, false)
}

func (t *Telemetry) index(ctx context.Context, flush bool) (int, error) {
	t.indexMu.Lock()
	defer t.indexMu.Unlock()
	// Only the indexer (under indexMu) moves indexed_seq, and stored records never change, so records are
	// read from the records database outside the derived database's transactions: the next chunk is
	// read and parsed while the one before is written. While hours are held the records are read on from
	// where the last pass ended, which indexed_seq lags.
	from := t.held.read
	if len(t.held.groups) == 0 {
		if err := t.idx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'indexed_seq'`).Scan(&from); err != nil && err != sql.ErrNoRows {
			return 0, fmt.Errorf("couldn't read the index position: %w", err)
		}
	}
	recs, full, err := t.parseRecords(ctx, from, IndexChunk)
	total := 0
	if err == nil && len(recs) == 0 {
		err = t.writeHeld(ctx) // nothing new: write what is held
	}
	size := IndexChunk // records read for the next pass (MaxBackfillChunk)
	for err == nil && len(recs) > 0 {
		type parsed struct {
			recs []storedRecord
			full bool // more may follow
			err  error
		}
		// A pass that ends inside a closed hour leaves that hour's records to the next pass, which would
		// otherwise decode, merge and rewrite the chunks this one wrote (backfillCut); the next pass reads
		// that many records fewer, so no more are held parsed than before.
		pass, carry := recs, []storedRecord(nil)
		if full {
			closed := closedBefore(t.now())
			cut := backfillCut(recs, closed)
			pass, carry = recs[:cut], recs[cut:]
			// No cut, every value closed: a backfill of many vehicles at once, each pass holding a little of
			// each one's hour; larger passes rewrite each hour's chunks fewer times.
			if cut == len(recs) && allBefore(recs, closed) {
				size = min(2*size, MaxBackfillChunk)
			} else {
				size = IndexChunk
			}
		}
		var next chan parsed
		if full {
			next = make(chan parsed, 1)
			go func(from int64, n int) {
				r, full, err := t.parseRecords(ctx, from, n)
				next <- parsed{r, full, err}
			}(recs[len(recs)-1].seq, max(size-len(carry), IndexChunk/4)) // a large carry still reads on
		}
		err = t.indexRecords(ctx, pass, pass[len(pass)-1].seq, flush && !full)
		if err == nil {
			total += len(pass)
		}
		recs = nil
		if next != nil {
			p := <-next
			if err == nil {
				recs, full, err = append(carry, p.recs...), p.full, p.err
			}
		}
	}
	return total, err
}

// MaxBackfillChunk is the most records a pass reads while its passes find no hour to end at and every
// value closed — a fleet's backfill, its vehicles' records interleaved: the passes double from IndexChunk
// up to it, and each closed hour's chunks are then merged and rewritten about a quarter as often.
// BenchmarkIndexAFleetDay (25 vehicles' day at 1 Hz, interleaved second by second): 0.79–0.81 M values/s
// with IndexChunk passes, 0.90–1.21 M at 4 × IndexChunk (five runs), 1.15–1.19 M at 8 × (2026-12-07,
// 2 cores, quiet). Since closed hours are held until finished (heldHours) no hour is rewritten per pass;
// larger passes still save transactions: 1.44–1.50 M values/s without growing, 1.58 with. Live ingest
// (open hours) never grows its passes, so the node's memory under ingest is as IndexChunk's comment says.
const MaxBackfillChunk = 4 * IndexChunk

// allBefore reports whether every value of recs was measured before closed.
func allBefore(recs []storedRecord, closed int64) bool {
	for _, r := range recs {
		if r.r == nil {
			continue
		}
		for _, v := range r.r.Values {
			if v.Time >= closed {
				return false
			}
		}
	}
	return true
}

// backfillCut returns where to end a pass over recs (in sequence order, more following) so that it does
// not end inside a closed hour (before closed) that the next pass continues: before the longest tail of
// records whose values all lie in their vehicle's last hour of recs, when that hour is closed. It returns
// len(recs) when there is no such tail, or when it is all of recs (an hour of many vehicles' records can
// take several passes).
func backfillCut(recs []storedRecord, closed int64) int {
	last := map[uint64]int64{} // each vehicle's hour of its last record with values
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.r == nil || len(r.r.Values) == 0 {
			continue
		}
		if _, ok := last[r.vehicle]; !ok {
			last[r.vehicle] = series.Hour(r.r.Values[0].Time)
		}
	}
	cut := len(recs)
	for ; cut > 0; cut-- {
		r := recs[cut-1]
		if r.r == nil || len(r.r.Values) == 0 {
			continue // no values: it may end either pass
		}
		h := last[r.vehicle]
		if h >= closed {
			break
		}
		for _, v := range r.r.Values {
			if series.Hour(v.Time) != h {
				return cutOrAll(cut, len(recs))
			}
		}
	}
	return cutOrAll(cut, len(recs))
}

// cutOrAll is cut, or n when cut is 0 (a pass must index something).
func cutOrAll(cut, n int) int {
	if cut == 0 {
		return n
	}
	return cut
}

// MaxHeldValues is the most values of closed hours the indexer holds (heldHours): past it, a pass writes
// every hour it holds. About 40 bytes a value: 80 MB at most.
const MaxHeldValues = 1 << 21

// openKey is a vehicle's hour.
type openKey struct {
	vehicle uint64
	hour    int64
}

// hourValues are the values of one signal in a vehicle's closed hour, as passes read them.
type hourValues struct {
	s   sig
	pts []series.Point
}

// hourGroup is a vehicle's closed hour: the values of each of its signals, written as chunks.
type hourGroup struct {
	openKey
	sigs  []*hourValues
	first int64 // the sequence number of the first record with values in it
	pass  int   // the last pass that added values
	n     int   // values in sigs
}

// heldHours are the closed hours the indexer read values of and has not written yet. A pass writes a
// vehicle's hour once the vehicle's records in it reach a later hour, once a pass brings none of the
// hour's values, when more than MaxHeldValues values are held, or when told to write them all: a
// fleet's backfill, its vehicles' records interleaved, then writes each hour's chunks about once instead
// of merging and rewriting them in every pass that brings some of it. The index position (indexed_seq)
// stays before the first record of every hour held: after a crash those records are indexed again, and
// their open rows, events, chunk merges and newest values are the same a second time (the speed deriver,
// empty after a restart, may begin a run later than it did).
type heldHours struct {
	groups map[openKey]*hourGroup
	read   int64 // the last record read into them (where the next pass reads on)
	pass   int   // passes so far
	n      int   // values held
}

// pointSlices keeps the value lists of written hours for the hours read next: a backfill's hours are
// about the same size, so their lists are then allocated once rather than grown again for each.
var pointSlices sync.Pool

// spareValues returns an empty value list, with room when one was kept.
func spareValues() []series.Point {
	if p, ok := pointSlices.Get().(*[]series.Point); ok {
		return (*p)[:0]
	}
	return nil
}

// keepValues keeps pts's array for spareValues, cleared (its values may hold strings).
func keepValues(pts []series.Point) {
	if cap(pts) == 0 {
		return
	}
	pts = pts[:cap(pts)]
	clear(pts)
	pointSlices.Put(&pts)
}

// writeHeld writes every closed hour the indexer holds (heldHours), under indexMu.
func (t *Telemetry) writeHeld(ctx context.Context) error {
	if len(t.held.groups) == 0 {
		return nil
	}
	return t.indexRecords(ctx, nil, t.held.read, true)
}

// indexRecords derives the signal values, latest values and events of a chunk of parsed records (in
// sequence order, following the last one read; end is the sequence number of the last, or where the
// passes stand when recs is empty) in one transaction. Values of closed hours join t.held; the hours
// the pass finishes (all of them when all is set) are written and leave it. indexed_seq moves to before
// the first record of the hours still held, or to end. A failed pass leaves the index as it was: what it
// held is dropped and the next call reads again from indexed_seq.
func (t *Telemetry) indexRecords(ctx context.Context, recs []storedRecord, end int64, all bool) (err error) {
	// A chunk whose transaction fails (a full disk) is indexed again by the next call: the deriver must
	// then meet its values as if for the first time. Records read before the chunk and held are read
	// again too: the deriver then starts afresh, as after a restart.
	restore := t.derive.Checkpoint()
	heldBefore := len(t.held.groups) > 0
	defer func() {
		if err != nil {
			t.newest.drop()
			if heldBefore {
				t.derive = telemetry.SpeedDeriver{}
			} else {
				restore()
			}
			t.held = heldHours{}
		}
	}()
	if t.held.groups == nil {
		t.held.groups = map[openKey]*hourGroup{}
	}
	t.held.pass++
	tx, err := t.idx.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var openRows, evRows [][]any
	addEvent := func(e telemetry.Event) {
		evRows = append(evRows, []any{e.Vehicle, e.Time, e.Name, e.Source, e.DurationNs, e.Metadata})
	}
	type sourceKey struct {
		vehicle uint64
		source  common.Address
	}
	// The newest value of each signal per vehicle, and per vehicle and source: a record's values are one
	// vehicle's from one source, so each record looks its two lists up once, and its values find their
	// signal in them by a short scan.
	latest := map[uint64][]newest{}
	bySource := map[sourceKey][]newest{}
	// the values of closed hours, written as chunks per vehicle and hour, and in it per signal
	hours := t.held.groups
	reached := map[uint64]int64{}   // each vehicle's latest hour of closed values in recs
	openHours := map[openKey]bool{} // the hours written as open_values rows
	// a record's open values, per hour (a record's values are nearly always in one hour)
	type openRow struct {
		hour int64
		cnt  int
		vals []byte
	}
	var recOpen []openRow
	closed := closedBefore(t.now())
	ids := t.signalIDs()
	for _, rec := range recs {
		r := rec.r
		if r == nil {
			continue // not indexed (parseRecords logged why)
		}
		vehicle := rec.vehicle
		recOpen = recOpen[:0]
		for _, e := range r.Events {
			addEvent(e)
		}
		for _, e := range t.derive.Add(vehicle, telemetry.SpeedSamples(r.Values)) {
			addEvent(e)
		}
		if len(r.Values) == 0 {
			continue
		}
		sk := sourceKey{vehicle, rec.source}
		lv, sv := latest[vehicle], bySource[sk]
		lh, sh := -1, -1
		var g *hourGroup                         // the group of the last closed value
		recReached, recClosed := int64(0), false // the record's latest hour of closed values, if any
		for i := range r.Values {
			v := &r.Values[i]
			id, err := ids.of(ctx, t, tx, v.Signal)
			if err != nil {
				return err
			}
			var val any
			switch v.Signal.Kind {
			case telemetry.KindNumber, telemetry.KindBool:
				val = v.Number
			case telemetry.KindString, telemetry.KindStrings:
				val = v.String
			case telemetry.KindLocation:
				val = telemetry.EncodeLocation(v.Lat, v.Lon, v.HDOP)
			}
			if hour := series.Hour(v.Time); v.Time >= closed {
				k := len(recOpen) - 1
				for k >= 0 && recOpen[k].hour != hour {
					k--
				}
				if k < 0 {
					recOpen = append(recOpen, openRow{hour: hour})
					k = len(recOpen) - 1
				}
				recOpen[k].cnt++
				recOpen[k].vals = appendOpenValue(recOpen[k].vals, id, hour, v)
			} else {
				if g == nil || g.hour != hour {
					k := openKey{vehicle, hour}
					if g = hours[k]; g == nil {
						g = &hourGroup{openKey: k, first: rec.seq}
						hours[k] = g
					}
					g.pass = t.held.pass
				}
				var h *hourValues
				for _, x := range g.sigs {
					if x.s.name == id {
						h = x
						break
					}
				}
				if h == nil {
					h = &hourValues{s: sig{vehicle: vehicle, name: id, signal: v.Signal.Name, kind: v.Signal.Kind}, pts: spareValues()}
					g.sigs = append(g.sigs, h)
				}
				h.pts = append(h.pts, series.Point{T: v.Time, V: val})
				g.n++
				t.held.n++
				recReached, recClosed = max(recReached, hour), true
			}
			lv = putNewest(lv, newest{id, v.Time, val}, &lh)
			sv = putNewest(sv, newest{id, v.Time, val}, &sh)
		}
		latest[vehicle], bySource[sk] = lv, sv
		if recClosed {
			reached[vehicle] = max(reached[vehicle], recReached) // a map write a record, not a value
		}
		for _, o := range recOpen {
			openRows = append(openRows, []any{vehicle, o.hour, rec.seq, o.cnt, o.vals})
			openHours[openKey{vehicle, o.hour}] = true
		}
	}

	all = all || t.held.n > MaxHeldValues
	groups := make([]*hourGroup, 0, len(hours))
	indexed := end
	for k, g := range hours {
		if all || reached[g.vehicle] > g.hour || g.pass != t.held.pass {
			groups = append(groups, g)
			delete(hours, k)
			t.held.n -= g.n
		} else {
			indexed = min(indexed, g.first-1)
		}
	}
	t.held.read = end
	slices.SortFunc(groups, func(a, b *hourGroup) int {
		return cmp.Or(cmp.Compare(a.vehicle, b.vehicle), cmp.Compare(a.hour, b.hour))
	})
	// Each signal's chunks of each closed hour are read and deleted here, on the transaction; merging
	// and encoding them runs on other cores (hourEncoder), from the first one read, while this goroutine
	// goes on with the statements (the open hours' rows are of other hours), and their rows are inserted
	// at the end.
	stx := stmtTx{tx, &t.istmt}
	var writes []*hourWrite
	enc := newHourEncoder()
	defer enc.wait() // an early return must not leave the workers behind
	for _, g := range groups {
		// The vehicle's open values of the hour (every signal's) go into chunks first, once for the hour.
		if _, err := t.sealOpenHour(ctx, stx, g.vehicle, g.hour); err != nil {
			return fmt.Errorf("couldn't write the hour from %d of vehicle %d as chunks: %w", g.hour, g.vehicle, err)
		}
		slices.SortFunc(g.sigs, func(a, b *hourValues) int { return cmp.Compare(a.s.name, b.s.name) })
		for _, h := range g.sigs {
			old, err := readChunks(ctx, stx, h.s, g.hour, g.hour+series.HourMs, true)
			if err != nil {
				return fmt.Errorf("couldn't write the hour from %d of %s as chunks: %w", g.hour, h.s, err)
			}
			if len(old) > 0 {
				if err := deleteChunks(ctx, stx, h.s, g.hour, g.hour+series.HourMs); err != nil {
					return fmt.Errorf("couldn't write the hour from %d of %s as chunks: %w", g.hour, h.s, err)
				}
			}
			w := &hourWrite{s: h.s, hour: g.hour, old: old, add: h.pts}
			writes = append(writes, w)
			enc.add(w)
		}
	}
	if err := t.istmt.insertRows(ctx, tx, `INSERT INTO open_values (vehicle, hour, seq, cnt, vals) VALUES`,
		`ON CONFLICT DO NOTHING`, openRows); err != nil {
		return err
	}
	hrows := make([][]any, 0, len(openHours))
	for k := range openHours {
		hrows = append(hrows, []any{k.hour, k.vehicle})
	}
	if err := t.istmt.insertRows(ctx, tx, `INSERT INTO open_hours (hour, vehicle) VALUES`, `ON CONFLICT DO NOTHING`, hrows); err != nil {
		return err
	}
	if err := t.istmt.insertRows(ctx, tx, `INSERT INTO events (vehicle, time, name, source, duration_ns, metadata) VALUES`,
		`ON CONFLICT DO NOTHING`, evRows); err != nil {
		return err
	}
	byVehicle := make(map[latestKey][]newest, len(latest))
	for vehicle, ns := range latest {
		byVehicle[latestKey{vehicle: vehicle}] = ns
	}
	if err := t.updateLatest(ctx, tx, false, byVehicle, &t.newest); err != nil {
		return err
	}
	byVehicleSource := make(map[latestKey][]newest, len(bySource))
	for k, ns := range bySource {
		byVehicleSource[latestKey{k.vehicle, string(k.source.Bytes())}] = ns
	}
	if err := t.updateLatest(ctx, tx, true, byVehicleSource, &t.newest); err != nil {
		return err
	}
	enc.wait()
	var rows chunkRows
	for _, w := range writes {
		if w.err != nil {
			return w.err
		}
		rows.sums, rows.data, rows.slots = append(rows.sums, w.rows.sums...), append(rows.data, w.rows.data...), append(rows.slots, w.rows.slots...)
		keepValues(w.add) // encoded: nothing refers to them now
	}
	if err := rows.insert(ctx, stx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('indexed_seq', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, indexed); err != nil {
		return err
	}
	err = tx.Commit()
	t.latest.gen.Add(1) // after the commit: a reader that saw the old gen may have read the old rows
	if err != nil {
		return fmt.Errorf("couldn't commit an index chunk: %w", err)
	}
	t.newest.commit()
	return nil
}

// storedRecord is a record read for indexing, parsed (r nil if it does not parse).
type storedRecord struct {
	seq     int64
	vehicle uint64
	source  common.Address
	r       *telemetry.Record
}

// parseRecords reads up to n records after the sequence number from, decodes and parses them (unless
// Write was handed them parsed), and reports whether more may follow. A record that does not parse is
// logged and left out of the index. Reading and parsing are most of what indexing a backfill costs, so
// both run on every core: each worker reads and parses its own range of sequence numbers, all below the
// largest one stored when it began (a record written meanwhile, with a larger one, cannot fall between
// two ranges read in different snapshots).
func (t *Telemetry) parseRecords(ctx context.Context, from int64, n int) ([]storedRecord, bool, error) {
	var top int64
	if err := t.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM records`).Scan(&top); err != nil {
		return nil, false, fmt.Errorf("couldn't read records to index: %w", err)
	}
	if top <= from {
		return nil, false, nil
	}
	// Sequence numbers are nearly dense (a deletion leaves a gap): worker w reads (from + w·per,
	// from + (w+1)·per], the last one what follows, up to n records in all.
	workers := min(runtime.GOMAXPROCS(0), 1+n/256)
	per := n / workers
	parts := make([][]storedRecord, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi, limit := from+int64(w*per), from+int64((w+1)*per), per
		if w == workers-1 {
			hi, limit = top, n-w*per
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[w], errs[w] = t.readAndParse(ctx, lo, min(hi, top), limit)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, false, fmt.Errorf("couldn't read records to index: %w", err)
	}
	out := slices.Concat(parts...)
	if len(out) > 0 {
		t.handed.read(out[len(out)-1].seq)
	}
	return out, len(parts[workers-1]) == n-(workers-1)*per, nil
}

// readAndParse reads up to limit records with sequence numbers in (from, to] and parses those not
// handed parsed, each as it is read (its event's bytes are not copied).
func (t *Telemetry) readAndParse(ctx context.Context, from, to int64, limit int) ([]storedRecord, error) {
	if to <= from {
		return nil, nil
	}
	return t.readRecords(ctx, from, to, limit, func(rec *storedRecord, stored []byte) {
		event, err := DecodeEvent(stored)
		if err != nil {
			slog.Warn("a stored record does not decompress; not indexed", "seq", rec.seq, "err", err)
			return
		}
		// The record was verified at ingest; here it is only decoded. The clock is not checked again.
		if rec.r, err = t.cat.ParseStored(event); err != nil {
			slog.Warn("a stored record no longer parses; not indexed", "seq", rec.seq, "err", err)
			return
		}
		rec.r.Event = nil // the driver's bytes, valid only during the call
	})
}

// readRecords reads up to n records with sequence numbers in (from, to]: each one's values as Write was
// handed them parsed, if it was, else it calls parse with the record and its stored event, whose bytes
// are valid only during the call. Events are read only for the records not handed parsed: while ingest
// hands them all, reading the event bytes was a third of a pass.
func (t *Telemetry) readRecords(ctx context.Context, from, to int64, n int, parse func(rec *storedRecord, stored []byte)) ([]storedRecord, error) {
	withEvents := t.handed.empty() // a backfill of stored records, a restart: every event is needed
	q := `SELECT seq, vehicle, source, id, NULL FROM records WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`
	if withEvents {
		q = `SELECT seq, vehicle, source, id, event FROM records WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`
	}
	rows, err := t.db.QueryContext(ctx, q, from, to, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedRecord
	var missing []int // the records neither handed parsed nor read with their events
	for rows.Next() {
		var rec storedRecord
		var vehicle int64 // database/sql scans into a uint64 through its decimal text
		var source, event sql.RawBytes
		var id string
		if err := rows.Scan(&rec.seq, &vehicle, &source, &id, &event); err != nil {
			return nil, err
		}
		rec.vehicle, rec.source = uint64(vehicle), common.BytesToAddress(source)
		if rec.r = t.handed.take(rec.seq, recordKey{rec.source, id}); rec.r == nil {
			if withEvents {
				parse(&rec, event)
			} else {
				missing = append(missing, len(out))
			}
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(missing) == 0 {
		return out, nil
	}
	// Some were not handed (the handoff was full, or they were written unparsed): their events, in one
	// query over their span.
	rows, err = t.db.QueryContext(ctx, `SELECT seq, event FROM records WHERE seq >= ? AND seq <= ? ORDER BY seq`,
		out[missing[0]].seq, out[missing[len(missing)-1]].seq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	k := 0
	for k < len(missing) && rows.Next() {
		var seq int64
		var event sql.RawBytes
		if err := rows.Scan(&seq, &event); err != nil {
			return nil, err
		}
		if i := missing[k]; out[i].seq == seq {
			parse(&out[i], event)
			k++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// RunIndexer indexes new records as Write stores them (passes at least IndexSpacing apart) and every
// interval, and seals the hours that closed every SealInterval, until ctx is done.
func (t *Telemetry) RunIndexer(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var sealed time.Time
	for {
		next := time.NewTimer(IndexSpacing)
		if _, err := t.IndexWritten(ctx); err != nil && ctx.Err() == nil {
			logger.Error("couldn't index telemetry", "err", err)
		}
		if time.Since(sealed) >= SealInterval {
			sealed = time.Now()
			if _, err := t.Seal(ctx); err != nil && ctx.Err() == nil {
				logger.Error("couldn't seal telemetry into chunks", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			next.Stop()
			return
		case <-next.C:
		}
		// Hours held for the records that continue them are written if none came within HoldFor.
		var hold <-chan time.Time
		if t.holding() {
			hold = time.After(HoldFor)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.written:
		case <-tick.C:
		case <-hold:
		}
	}
}

// HoldFor is how long the indexer's loop holds a closed hour (heldHours) without new records before it
// writes it: a backfill arriving through ingest brings the next records sooner, and a query sees a
// backfilled hour at most this much later than without holding.
const HoldFor = 200 * time.Millisecond

// holding reports whether the indexer holds closed hours.
func (t *Telemetry) holding() bool {
	t.indexMu.Lock()
	defer t.indexMu.Unlock()
	return len(t.held.groups) > 0
}

// Reindex deletes the derived tables and rebuilds them from the records: the values of closed hours
// straight into chunks, those of open hours as rows.
func (t *Telemetry) Reindex(ctx context.Context) (int, error) {
	t.indexMu.Lock()
	if _, err := t.idx.ExecContext(ctx, `DELETE FROM open_values; DELETE FROM open_hours; DELETE FROM chunk_sums; DELETE FROM chunk_data; DELETE FROM chunk_slots; DELETE FROM latest_values; DELETE FROM latest_sources;
DELETE FROM events; DELETE FROM meta WHERE key = 'indexed_seq';`); err != nil {
		t.indexMu.Unlock()
		return 0, fmt.Errorf("couldn't clear the derived tables: %w", err)
	}
	t.derive, t.held = telemetry.SpeedDeriver{}, heldHours{}
	t.newest.clear()
	t.indexMu.Unlock()
	t.latest.gen.Add(1)
	return t.Index(ctx)
}

// Lag returns how many stored records are not indexed yet.
func (t *Telemetry) Lag(ctx context.Context) (int64, error) {
	var maxSeq, indexed int64
	if err := t.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM records`).Scan(&maxSeq); err != nil {
		return 0, err
	}
	err := t.idx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'indexed_seq'`).Scan(&indexed)
	if err != nil && err != sql.ErrNoRows {
		return 0, err
	}
	return maxSeq - indexed, nil
}

// CountRecords returns how many records are stored.
func (t *Telemetry) CountRecords(ctx context.Context) (int64, error) {
	var n int64
	err := t.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM records`).Scan(&n)
	return n, err
}
