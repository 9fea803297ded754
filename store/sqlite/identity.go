// Package sqlite keeps Glovebox's read models in SQLite files through the pure-Go modernc.org/sqlite
// driver, in WAL mode.
//
// A store implements the contracts of the packages below it (ledger, telemetry, accesslog, webhook/outbox,
// credential, attestation) and must not import anything that uses them (api, node, webhook's engine).
//
// Telemetry keeps the signed records in one file and what is derived from them in another (SignalsFile):
// the latest values, the events, and the signal values — those of each closed UTC hour as compressed
// chunks per vehicle and signal (telemetry/series, telemetry/chunk) with a summary row each, those of the
// open hours as a row per value until Seal moves them (chunks.go; docs/columnar.md). Every read of values
// merges both (values.go); aggregations take a chunk whole from its summary where they can (history.go).
package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/glovebox/glovebox/ledger"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Identity is the identity read model: vehicles, devices with their pairing intervals, apps, grants and
// the used nonces whose deadline has not passed, as replayed from the log, with the tree size they reflect. It implements ledger.Store.
// Saves are atomic (one SQLite transaction) but not fsynced at commit (synchronous=NORMAL): after a power
// loss the store may lag the log, and the node replays the difference at start.
type Identity struct {
	db    *sql.DB
	stmts stmtCache
}

// stmtCache keeps the prepared multi-row statements: a statement of 500 rows takes longer to parse than
// to run.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex // guards m
	m  map[string]*sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st), nil
}

// stmt returns q prepared on the database (not in a transaction), preparing it once.
func (c *stmtCache) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.m[q]
	if st == nil {
		var err error
		if st, err = c.db.PrepareContext(ctx, q); err != nil {
			return nil, err
		}
		if c.m == nil {
			c.m = map[string]*sql.Stmt{}
		}
		c.m[q] = st
	}
	return st, nil
}

var _ ledger.Store = (*Identity)(nil)

// identitySchemaVersion changes whenever identitySchema does. The read model is a cache of the log: a
// store of another version is dropped and rebuilt by replay, so there are no migrations to write.
// Version 4: nonces carry their deadline and are deleted once the log's time passes it. Version 5: a row
// per entity holding its JSON form, a row of nonces per save.
const identitySchemaVersion = 5

// identityTables are the tables of the read model, and of its earlier versions, dropped when the version
// changes.
const identityTables = "meta vehicles devices pairings apps grants nonces"

// The read model is only ever loaded whole, when the node starts (Load), so each entity is one row keyed
// as the state keys it, holding the entity in its JSON form (ledger.Vehicle with its grants, ledger.Device
// with its pairings, ledger.App): a row of two columns costs the sequencer's saves far less than the
// columns, the grants and pairings tables and the secondary indexes of version 4 did, which nothing read.
const identitySchema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vehicles (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS devices (address TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS apps (address TEXT PRIMARY KEY, data BLOB NOT NULL);
-- Used nonces are only ever loaded whole (the sequencer checks them in memory), so each save appends the
-- nonces it brings as one row: nonceSize bytes each (signer, nonce, deadline), with the latest of their
-- deadlines, by which the row is deleted once the log's time passes it (the index on deadline, nearly in
-- log order, is appended to).
CREATE TABLE IF NOT EXISTS nonces (deadline INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS nonces_deadline ON nonces (deadline);
`

// Open opens (creating if needed) an SQLite database file with the pragmas every Glovebox store uses.
func Open(path string) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)" + cachePragma(IdentityCacheKiB)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	return db, nil
}

// OpenIdentity opens the identity read model in the SQLite file at path.
func OpenIdentity(path string) (*Identity, error) {
	db, err := Open(path)
	if err != nil {
		return nil, err
	}
	var version int64
	err = db.QueryRow(`SELECT value FROM meta WHERE key = 'schema_version'`).Scan(&version)
	if err != nil || version != identitySchemaVersion {
		// Missing, older or newer: drop it; the node replays the log into the new one.
		for _, t := range strings.Fields(identityTables) {
			if _, err := db.Exec(`DROP TABLE IF EXISTS ` + t); err != nil {
				db.Close()
				return nil, fmt.Errorf("couldn't drop the old identity table %s: %w", t, err)
			}
		}
	}
	if _, err := db.Exec(identitySchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create the identity schema: %w", err)
	}
	if _, err := db.Exec(`INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, identitySchemaVersion); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't record the identity schema version: %w", err)
	}
	return &Identity{db: db, stmts: stmtCache{db: db}}, nil
}

// Close closes the database.
func (s *Identity) Close() error {
	s.stmts.mu.Lock()
	for _, st := range s.stmts.m {
		st.Close()
	}
	s.stmts.mu.Unlock()
	return s.db.Close()
}

// Reset deletes every row.
func (s *Identity) Reset(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM meta WHERE key <> 'schema_version'; DELETE FROM vehicles; DELETE FROM devices;
		DELETE FROM apps; DELETE FROM nonces;`)
	if err != nil {
		return fmt.Errorf("couldn't reset the identity store: %w", err)
	}
	return nil
}

// Save upserts the changes in one transaction. Entities listed more than once (merged changes) are
// written once, with their last version; rows go in multi-row statements, since with this driver the cost
// of a statement dwarfs the cost of a row.
func (s *Identity) Save(ctx context.Context, c ledger.Changes) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't begin: %w", err)
	}
	if err := s.save(ctx, tx, c); err != nil {
		tx.Rollback()
		return fmt.Errorf("couldn't save identity changes: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("couldn't commit identity changes: %w", err)
	}
	return nil
}

func (s *Identity) save(ctx context.Context, tx *sql.Tx, c ledger.Changes) error {
	vehicles := lastByKey(c.Vehicles, func(v ledger.Vehicle) uint64 { return v.ID })
	devices := lastByKey(c.Devices, func(d ledger.Device) string { return d.Address })
	apps := lastByKey(c.Apps, func(a ledger.App) string { return a.Address })

	// A vehicle's paired devices are derived from the devices' pairings when loaded (ledger.Restore).
	if err := upsertJSON(ctx, s, tx, "vehicles", "id", vehicles, func(v *ledger.Vehicle) any { v.Devices = nil; return int64(v.ID) }); err != nil {
		return err
	}
	if err := upsertJSON(ctx, s, tx, "devices", "address", devices, func(d *ledger.Device) any { return d.Address }); err != nil {
		return err
	}
	if err := upsertJSON(ctx, s, tx, "apps", "address", apps, func(a *ledger.App) any { return a.Address }); err != nil {
		return err
	}
	if len(c.Nonces) > 0 {
		data := make([]byte, 0, len(c.Nonces)*nonceSize)
		latest := int64(math.MinInt64)
		for _, n := range c.Nonces {
			data = append(data, n.Signer[:]...)
			nonce := n.Nonce.Bytes32()
			data = append(data, nonce[:]...)
			data = binary.BigEndian.AppendUint64(data, uint64(n.Deadline))
			latest = max(latest, n.Deadline)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO nonces (deadline, data) VALUES (?, ?)`, latest, data); err != nil {
			return fmt.Errorf("couldn't insert the used nonces: %w", err)
		}
	}
	// The state forgets a nonce once the log's time passes its deadline; its copy forgets a row of them
	// once the log's time passes the latest (ledger.Restore skips the others).
	if _, err := tx.ExecContext(ctx, `DELETE FROM nonces WHERE deadline < ?`, c.NonceHorizon()); err != nil {
		return fmt.Errorf("couldn't delete the nonces past their deadline: %w", err)
	}
	return s.stmts.insertRows(ctx, tx, `INSERT INTO meta (key, value) VALUES`, `ON CONFLICT (key) DO UPDATE SET value=excluded.value`,
		[][]any{{"size", c.Size}, {"last_time", c.LastTime}, {"next_vehicle", c.NextVehicle}})
}

// lastByKey keeps the last element of each key, in order of last appearance.
func lastByKey[T any, K comparable](list []T, key func(T) K) []T {
	last := make(map[K]int, len(list))
	for i, x := range list {
		last[key(x)] = i
	}
	if len(last) == len(list) {
		return list
	}
	out := make([]T, 0, len(last))
	for i, x := range list {
		if last[key(x)] == i {
			out = append(out, x)
		}
	}
	return out
}

// maxParams keeps a statement under SQLite's limit of 32,766 bound parameters.
const maxParams = 30000

// insertRows runs "head (?,…),(?,…) tail" for the rows, as few statements as the parameter limit allows;
// statements of a full chunk are prepared once and reused. head is "INSERT INTO table (columns) VALUES",
// and the rows go in with the ROLLBACK conflict resolution (rollbackOnViolation): a constraint the
// statement does not resolve itself in tail (its upsert clause) fails the whole transaction.
func (c *stmtCache) insertRows(ctx context.Context, tx *sql.Tx, head, tail string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	cols := len(rows[0])
	args := make([]any, 0, len(rows)*cols)
	for _, r := range rows {
		args = append(args, r...)
	}
	return c.insertFlat(ctx, tx, head, tail, cols, args)
}

// insertFlat is insertRows with the rows' values in one list, cols to a row.
func (c *stmtCache) insertFlat(ctx context.Context, tx *sql.Tx, head, tail string, cols int, args []any) error {
	if len(args) == 0 {
		return nil
	}
	head, err := rollbackOnViolation(head)
	if err != nil {
		return err
	}
	per := max(1, min(500, maxParams/cols))
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	for start := 0; start < len(args); start += per * cols {
		chunk := args[start:min(start+per*cols, len(args))]
		n := len(chunk) / cols
		var q strings.Builder
		q.Grow(len(head) + n*(len(tuple)+1) + 1 + len(tail))
		q.WriteString(head)
		for i := range n {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString(tuple)
		}
		q.WriteByte(' ')
		q.WriteString(tail)
		if n == per {
			var st *sql.Stmt
			if st, err = c.get(ctx, tx, q.String()); err == nil {
				_, err = st.ExecContext(ctx, chunk...)
			}
		} else {
			_, err = tx.ExecContext(ctx, q.String(), chunk...)
		}
		if err != nil {
			return fmt.Errorf("%s…: %w", head, err)
		}
	}
	return nil
}

// rollbackOnViolation turns "INSERT INTO …" into "INSERT OR ROLLBACK INTO …". A statement that writes
// many rows and may stop at a constraint halfway (the default resolution, ABORT, undoes that statement
// alone) makes SQLite keep a statement journal: the original image of every page it changes, spilled to
// a temporary file past 64 KiB — 6 % of the node's CPU under `glovebox bench ingest` (docs/columnar.md).
// Every caller rolls its transaction back at the first error anyway, so undoing the statement alone buys
// nothing; with ROLLBACK the transaction is undone at once and no journal is kept.
func rollbackOnViolation(insert string) (string, error) {
	rest, ok := strings.CutPrefix(insert, "INSERT INTO ")
	if !ok {
		return "", fmt.Errorf("%q is not an INSERT INTO", insert)
	}
	return "INSERT OR ROLLBACK INTO " + rest, nil
}

// Load reads the whole store as a snapshot.
func (s *Identity) Load(ctx context.Context) (ledger.Changes, error) {
	c := ledger.Changes{NextVehicle: 1}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return c, fmt.Errorf("couldn't begin: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT key, value FROM meta`)
	if err != nil {
		return c, fmt.Errorf("couldn't read meta: %w", err)
	}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			return c, err
		}
		switch k {
		case "size":
			c.Size = v
		case "last_time":
			c.LastTime = v
		case "next_vehicle":
			c.NextVehicle = uint64(v)
		}
	}
	if err := rows.Err(); err != nil {
		return c, err
	}
	if err := each(ctx, tx, `SELECT data FROM vehicles ORDER BY id`, func(r *sql.Rows) error {
		var v ledger.Vehicle
		return scanJSON(r, &v, func() { c.Vehicles = append(c.Vehicles, v) })
	}); err != nil {
		return c, err
	}
	if err := each(ctx, tx, `SELECT data FROM devices ORDER BY address`, func(r *sql.Rows) error {
		var d ledger.Device
		return scanJSON(r, &d, func() { c.Devices = append(c.Devices, d) })
	}); err != nil {
		return c, err
	}
	if err := each(ctx, tx, `SELECT data FROM apps ORDER BY address`, func(r *sql.Rows) error {
		var a ledger.App
		return scanJSON(r, &a, func() { c.Apps = append(c.Apps, a) })
	}); err != nil {
		return c, err
	}
	if err := each(ctx, tx, `SELECT data FROM nonces ORDER BY rowid`, func(r *sql.Rows) error {
		var data []byte
		if err := r.Scan(&data); err != nil {
			return err
		}
		if len(data)%nonceSize != 0 {
			return fmt.Errorf("a row of nonces holds %d bytes, not a multiple of %d", len(data), nonceSize)
		}
		for ; len(data) > 0; data = data[nonceSize:] {
			var n ledger.Nonce
			copy(n.Signer[:], data[:20])
			n.Nonce.SetBytes32(data[20:52])
			n.Deadline = int64(binary.BigEndian.Uint64(data[52:nonceSize]))
			c.Nonces = append(c.Nonces, n)
		}
		return nil
	}); err != nil {
		return c, err
	}
	return c, nil
}

// upsertJSON writes each entity of list as the row of table keyed by keyCol, its JSON form in the column
// data. row returns the key of a copy of the entity, which it may change before it is encoded.
func upsertJSON[T any](ctx context.Context, s *Identity, tx *sql.Tx, table, keyCol string, list []T, row func(*T) any) error {
	args := make([]any, 0, 2*len(list))
	for _, x := range list {
		key := row(&x)
		b, err := json.Marshal(&x)
		if err != nil {
			return fmt.Errorf("couldn't encode the %s row %v: %w", table, key, err)
		}
		args = append(args, key, b)
	}
	return s.stmts.insertFlat(ctx, tx, `INSERT INTO `+table+` (`+keyCol+`, data) VALUES`,
		`ON CONFLICT (`+keyCol+`) DO UPDATE SET data=excluded.data`, 2, args)
}

// nonceSize is the size of a used nonce in a row of the nonces table: the signer's 20 bytes, the nonce's
// 32 and the deadline's 8 (big-endian).
const nonceSize = 20 + 32 + 8

// scanJSON decodes the row's one column, an entity's JSON form, into v and calls add.
func scanJSON[T any](r *sql.Rows, v *T, add func()) error {
	var data []byte
	if err := r.Scan(&data); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("couldn't decode %T: %w", *v, err)
	}
	add()
	return nil
}

func each(ctx context.Context, tx *sql.Tx, q string, f func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("couldn't query %q: %w", q, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return fmt.Errorf("couldn't read a row of %q: %w", q, err)
		}
	}
	return rows.Err()
}
