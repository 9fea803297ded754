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
	"encoding/json"
	"fmt"
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
// Version 4: nonces carry their deadline and are deleted once the log's time passes it.
const identitySchemaVersion = 4

const identityTables = "meta vehicles devices pairings apps grants nonces"

const identitySchema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vehicles (
	id INTEGER PRIMARY KEY, owner TEXT NOT NULL, make TEXT NOT NULL, model TEXT NOT NULL,
	year INTEGER NOT NULL, burned INTEGER NOT NULL, registered_at INTEGER NOT NULL, owned_since INTEGER NOT NULL,
	retention_days INTEGER NOT NULL, retention_set_at INTEGER NOT NULL,
	former_owners TEXT NOT NULL, erasures TEXT NOT NULL); -- JSON arrays of ledger.Ownership and ledger.Erasure
CREATE INDEX IF NOT EXISTS vehicles_owner ON vehicles (owner);
CREATE TABLE IF NOT EXISTS devices (
	address TEXT PRIMARY KEY, kind TEXT NOT NULL, maker TEXT NOT NULL,
	registered_at INTEGER NOT NULL, vehicle_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pairings (
	device TEXT NOT NULL, seq INTEGER NOT NULL, vehicle_id INTEGER NOT NULL, kind TEXT NOT NULL,
	from_index INTEGER NOT NULL, from_time INTEGER NOT NULL, to_index INTEGER NOT NULL, to_time INTEGER NOT NULL,
	PRIMARY KEY (device, seq));
CREATE INDEX IF NOT EXISTS pairings_vehicle ON pairings (vehicle_id, from_time);
CREATE TABLE IF NOT EXISTS apps (
	address TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, redirect_uris TEXT NOT NULL,
	registered_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS apps_owner ON apps (owner);
CREATE TABLE IF NOT EXISTS grants (
	vehicle_id INTEGER NOT NULL, app TEXT NOT NULL, permissions TEXT NOT NULL, expires_at INTEGER NOT NULL,
	purpose TEXT NOT NULL, terms_uri TEXT NOT NULL, idx INTEGER NOT NULL, granted_at INTEGER NOT NULL,
	PRIMARY KEY (vehicle_id, app));
CREATE INDEX IF NOT EXISTS grants_app ON grants (app);
-- Used nonces are only ever loaded whole (the sequencer checks them in memory), so they are appended in
-- log order without a key index: random 32-byte keys in a B-tree would cost a page write each. The index
-- on deadline (nearly in log order, so appended too) finds those the log's time passed, to delete.
CREATE TABLE IF NOT EXISTS nonces (signer BLOB NOT NULL, nonce BLOB NOT NULL, deadline INTEGER NOT NULL);
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
	_, err := s.db.ExecContext(ctx, `DELETE FROM meta WHERE key <> 'schema_version'; DELETE FROM vehicles; DELETE FROM devices; DELETE FROM pairings;
		DELETE FROM apps; DELETE FROM grants; DELETE FROM nonces;`)
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
	insertRows := func(ctx context.Context, tx *sql.Tx, head, tail string, rows [][]any) error {
		return s.stmts.insertRows(ctx, tx, head, tail, rows)
	}
	vehicles := lastByKey(c.Vehicles, func(v ledger.Vehicle) uint64 { return v.ID })
	devices := lastByKey(c.Devices, func(d ledger.Device) string { return d.Address })
	apps := lastByKey(c.Apps, func(a ledger.App) string { return a.Address })

	// Vehicle rows go as one flat argument list: a slice per row and a second boxing of each uint64
	// (database/sql converts it to int64) would be two more allocations per row on the hot path.
	args := make([]any, 0, len(vehicles)*vehicleCols)
	var grants [][]any
	ids := make([]any, 0, len(vehicles))
	for _, v := range vehicles {
		formers, err := jsonList(v.FormerOwners)
		if err != nil {
			return fmt.Errorf("couldn't encode vehicle %d's former owners: %w", v.ID, err)
		}
		erasures, err := jsonList(v.Erasures)
		if err != nil {
			return fmt.Errorf("couldn't encode vehicle %d's erasures: %w", v.ID, err)
		}
		args = append(args, int64(v.ID), v.Owner, v.Make, v.Model, int64(v.Year), v.Burned, v.RegisteredAt, v.OwnedSince,
			int64(v.RetentionDays), v.RetentionSetAt, formers, erasures)
		ids = append(ids, int64(v.ID))
		for _, g := range v.Grants {
			perms, _ := json.Marshal(g.Permissions)
			grants = append(grants, []any{g.VehicleID, g.App, string(perms), g.ExpiresAt, g.Purpose, g.TermsURI, g.Index, g.GrantedAt})
		}
	}
	if err := s.stmts.insertFlat(ctx, tx, `INSERT INTO vehicles (id, owner, make, model, year, burned, registered_at, owned_since, `+
		`retention_days, retention_set_at, former_owners, erasures) VALUES`,
		`ON CONFLICT (id) DO UPDATE SET owner=excluded.owner, burned=excluded.burned, owned_since=excluded.owned_since, `+
			`retention_days=excluded.retention_days, retention_set_at=excluded.retention_set_at, `+
			`former_owners=excluded.former_owners, erasures=excluded.erasures`, vehicleCols, args); err != nil {
		return err
	}
	// A touched vehicle's grants are replaced as a whole (a transfer or burn clears them).
	if err := inList(ctx, tx, `DELETE FROM grants WHERE vehicle_id IN`, ids); err != nil {
		return err
	}
	if err := insertRows(ctx, tx, `INSERT INTO grants (vehicle_id, app, permissions, expires_at, purpose, terms_uri, idx, granted_at) VALUES`, ``, grants); err != nil {
		return err
	}
	var rows [][]any
	var pairings [][]any
	for _, d := range devices {
		rows = append(rows, []any{d.Address, d.Kind, d.Maker, d.RegisteredAt, d.VehicleID})
		for i, p := range d.Pairings {
			pairings = append(pairings, []any{d.Address, i, p.VehicleID, p.Kind, p.FromIndex, p.FromTime, p.ToIndex, p.ToTime})
		}
	}
	if err := insertRows(ctx, tx, `INSERT INTO devices (address, kind, maker, registered_at, vehicle_id) VALUES`,
		`ON CONFLICT (address) DO UPDATE SET vehicle_id=excluded.vehicle_id`, rows); err != nil {
		return err
	}
	if err := insertRows(ctx, tx, `INSERT INTO pairings (device, seq, vehicle_id, kind, from_index, from_time, to_index, to_time) VALUES`,
		`ON CONFLICT (device, seq) DO UPDATE SET to_index=excluded.to_index, to_time=excluded.to_time`, pairings); err != nil {
		return err
	}
	rows = rows[:0]
	for _, a := range apps {
		uris, _ := json.Marshal(a.RedirectURIs)
		rows = append(rows, []any{a.Address, a.Owner, a.Name, string(uris), a.RegisteredAt, a.UpdatedAt})
	}
	if err := insertRows(ctx, tx, `INSERT INTO apps (address, owner, name, redirect_uris, registered_at, updated_at) VALUES`,
		`ON CONFLICT (address) DO UPDATE SET name=excluded.name, redirect_uris=excluded.redirect_uris, updated_at=excluded.updated_at`, rows); err != nil {
		return err
	}
	// A nonce row's two blobs share one allocation.
	args = args[:0]
	for _, n := range c.Nonces {
		var buf [52]byte
		copy(buf[:20], n.Signer[:])
		n.Nonce.WriteToSlice(buf[20:])
		b := buf[:]
		args = append(args, b[:20:20], b[20:], n.Deadline)
	}
	if err := s.stmts.insertFlat(ctx, tx, `INSERT INTO nonces (signer, nonce, deadline) VALUES`, ``, 3, args); err != nil {
		return err
	}
	// The state forgets a nonce once the log's time passes its deadline; so does its copy.
	if _, err := tx.ExecContext(ctx, `DELETE FROM nonces WHERE deadline < ?`, c.NonceHorizon()); err != nil {
		return fmt.Errorf("couldn't delete the nonces past their deadline: %w", err)
	}
	return insertRows(ctx, tx, `INSERT INTO meta (key, value) VALUES`, `ON CONFLICT (key) DO UPDATE SET value=excluded.value`,
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

// vehicleCols is the number of columns save writes to a vehicles row.
const vehicleCols = 12

// jsonList encodes a list column as json.Marshal does; most vehicles have none, and "null" needs no
// encoder.
func jsonList[T any](list []T) (string, error) {
	if list == nil {
		return "null", nil
	}
	b, err := json.Marshal(list)
	return string(b), err
}

// inList runs "head (?,…)" with the values as the list.
func inList(ctx context.Context, tx *sql.Tx, head string, values []any) error {
	for start := 0; start < len(values); start += 500 {
		chunk := values[start:min(start+500, len(values))]
		q := head + " (" + strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",") + ")"
		if _, err := tx.ExecContext(ctx, q, chunk...); err != nil {
			return fmt.Errorf("%s…: %w", head, err)
		}
	}
	return nil
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
	grants := map[uint64][]ledger.Grant{}
	if err := each(ctx, tx, `SELECT vehicle_id, app, permissions, expires_at, purpose, terms_uri, idx, granted_at FROM grants ORDER BY vehicle_id, app`,
		func(r *sql.Rows) error {
			var g ledger.Grant
			var perms string
			if err := r.Scan(&g.VehicleID, &g.App, &perms, &g.ExpiresAt, &g.Purpose, &g.TermsURI, &g.Index, &g.GrantedAt); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(perms), &g.Permissions); err != nil {
				return fmt.Errorf("grant permissions: %w", err)
			}
			grants[g.VehicleID] = append(grants[g.VehicleID], g)
			return nil
		}); err != nil {
		return c, err
	}
	if err := each(ctx, tx, `SELECT id, owner, make, model, year, burned, registered_at, owned_since, retention_days, retention_set_at, `+
		`former_owners, erasures FROM vehicles ORDER BY id`, func(r *sql.Rows) error {
		var v ledger.Vehicle
		var formers, erasures string
		if err := r.Scan(&v.ID, &v.Owner, &v.Make, &v.Model, &v.Year, &v.Burned, &v.RegisteredAt, &v.OwnedSince,
			&v.RetentionDays, &v.RetentionSetAt, &formers, &erasures); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(formers), &v.FormerOwners); err != nil {
			return fmt.Errorf("vehicle %d's former owners: %w", v.ID, err)
		}
		if err := json.Unmarshal([]byte(erasures), &v.Erasures); err != nil {
			return fmt.Errorf("vehicle %d's erasures: %w", v.ID, err)
		}
		v.Grants = grants[v.ID]
		c.Vehicles = append(c.Vehicles, v)
		return nil
	}); err != nil {
		return c, err
	}
	pairings := map[string][]ledger.Pairing{}
	if err := each(ctx, tx, `SELECT device, vehicle_id, kind, from_index, from_time, to_index, to_time FROM pairings ORDER BY device, seq`,
		func(r *sql.Rows) error {
			var p ledger.Pairing
			if err := r.Scan(&p.Device, &p.VehicleID, &p.Kind, &p.FromIndex, &p.FromTime, &p.ToIndex, &p.ToTime); err != nil {
				return err
			}
			pairings[p.Device] = append(pairings[p.Device], p)
			return nil
		}); err != nil {
		return c, err
	}
	if err := each(ctx, tx, `SELECT address, kind, maker, registered_at, vehicle_id FROM devices ORDER BY address`, func(r *sql.Rows) error {
		var d ledger.Device
		if err := r.Scan(&d.Address, &d.Kind, &d.Maker, &d.RegisteredAt, &d.VehicleID); err != nil {
			return err
		}
		d.Pairings = pairings[d.Address]
		c.Devices = append(c.Devices, d)
		return nil
	}); err != nil {
		return c, err
	}
	if err := each(ctx, tx, `SELECT address, owner, name, redirect_uris, registered_at, updated_at FROM apps ORDER BY address`, func(r *sql.Rows) error {
		var a ledger.App
		var uris string
		if err := r.Scan(&a.Address, &a.Owner, &a.Name, &uris, &a.RegisteredAt, &a.UpdatedAt); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(uris), &a.RedirectURIs); err != nil {
			return fmt.Errorf("app redirect URIs: %w", err)
		}
		c.Apps = append(c.Apps, a)
		return nil
	}); err != nil {
		return c, err
	}
	if err := each(ctx, tx, `SELECT signer, nonce, deadline FROM nonces`, func(r *sql.Rows) error {
		var signer, nonce []byte
		var deadline int64
		if err := r.Scan(&signer, &nonce, &deadline); err != nil {
			return err
		}
		if len(signer) != 20 || len(nonce) != 32 {
			return fmt.Errorf("bad nonce row")
		}
		var n ledger.Nonce
		copy(n.Signer[:], signer)
		n.Nonce.SetBytes32(nonce)
		n.Deadline = deadline
		c.Nonces = append(c.Nonces, n)
		return nil
	}); err != nil {
		return c, err
	}
	return c, nil
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
