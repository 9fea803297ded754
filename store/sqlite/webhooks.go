package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/webhook/outbox"
)

// Webhooks is the webhook registry and delivery outbox of a single node, in its own SQLite file (WAL). Every
// change but an attempt's outcome is fsynced before it returns (synchronous=FULL): an enqueued delivery
// survives kill -9 and power loss. Outcomes (Finish) are committed without an fsync of their own
// (synchronous=NORMAL, through fin): they survive kill -9, and the next fsynced commit makes them
// durable; after a power loss a delivery whose outcome was lost is pending again and attempted again with
// the same id, which at-least-once delivery allows (a dropped one is checked against the grant again).
type Webhooks struct {
	db  *sql.DB
	fin *sql.DB // the same file, synchronous=NORMAL: Finish's group commits

	claimStmt    *sql.Stmt // the due pending deliveries in claiming order: seq, id, webhook
	deliveryStmt *sql.Stmt // one pending delivery by seq

	leaseMu sync.Mutex               // guards leases, nextDue and blocked
	leases  map[string]deliveryLease // delivery id → lease, of the deliveries claimed and not finished
	// nextDue (unix ms) is the earliest time at which a Claim may find something to return that the last
	// one did not: no unleased pending delivery is due before it, and no lease runs out before it; 0 when
	// unknown. A Claim before nextDue returns nothing without reading the file, unless a webhook of
	// blocked is no longer busy: blocked holds the webhooks whose due deliveries the last scan left
	// because they had as many in flight as they may. Every change that makes a delivery due, or a lease,
	// lowers nextDue after it commits.
	nextDue int64
	blocked map[string]bool

	insertStmts    chunkStmts // on db: new deliveries
	finishUpdates  chunkStmts // on fin: deliveries' new states
	finishAttempts chunkStmts // on fin: attempts' outcomes

	finishMu  sync.Mutex // guards finishing and flushing: the group commit of Finish
	finishing []*finishReq
	flushing  bool // a caller is writing groups; others wait for it
}

var (
	_ outbox.LeasingStore = (*Webhooks)(nil)
	_ telemetry.Eraser    = (*Webhooks)(nil)
)

const webhooksSchema = `
CREATE TABLE IF NOT EXISTS webhooks (
	id TEXT PRIMARY KEY, app BLOB NOT NULL, url TEXT NOT NULL, description TEXT NOT NULL,
	vehicles TEXT NOT NULL, trigger TEXT NOT NULL, secret TEXT NOT NULL, status TEXT NOT NULL,
	reason TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS webhooks_app ON webhooks (app, created);
CREATE TABLE IF NOT EXISTS deliveries (
	seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, webhook TEXT NOT NULL, app BLOB NOT NULL,
	vehicle INTEGER NOT NULL, type TEXT NOT NULL, perms TEXT NOT NULL, body BLOB NOT NULL,
	status TEXT NOT NULL, attempts INTEGER NOT NULL, created INTEGER NOT NULL, next_attempt INTEGER NOT NULL,
	lease_until INTEGER NOT NULL, last_code INTEGER NOT NULL, last_error TEXT NOT NULL, done INTEGER NOT NULL,
	measured INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_attempt) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_grant ON deliveries (app, vehicle) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_webhook ON deliveries (webhook, seq);
CREATE TABLE IF NOT EXISTS delivery_attempts (
	delivery TEXT NOT NULL, time INTEGER NOT NULL, code INTEGER NOT NULL, error TEXT NOT NULL, duration_us INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS delivery_attempts_delivery ON delivery_attempts (delivery, time);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, pos INTEGER NOT NULL);
`

// measuredColumn adds deliveries.measured to a file made before it existed, and sets it from the bodies
// of the deliveries already there: the time of the signal value, driving event, trip start or last-seen
// time the CloudEvent carries (0 for one that carries none).
const measuredColumn = `
ALTER TABLE deliveries ADD COLUMN measured INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET measured = COALESCE(CAST(unixepoch(COALESCE(
	json_extract(CAST(body AS TEXT), '$.data.signal.timestamp'), json_extract(CAST(body AS TEXT), '$.data.event.timestamp'),
	json_extract(CAST(body AS TEXT), '$.data.start'), json_extract(CAST(body AS TEXT), '$.data.lastSeen')), 'subsec') * 1000 AS INTEGER), 0)
	WHERE vehicle != 0 AND json_valid(CAST(body AS TEXT));
`

// eraseBatch is the most deliveries one transaction of Erase deletes.
const eraseBatch = 2000

// OpenWebhooks opens (creating if needed) the webhook store in the SQLite file at path. Only one process
// uses the file, so the leases of deliveries a killed process held are released here.
func OpenWebhooks(path string) (*Webhooks, error) {
	// secure_delete: the bytes of an erased delivery's event are overwritten in the file, not just unlinked.
	const pragmas = "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=secure_delete(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", "file:"+path+pragmas+"&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	if _, err := db.Exec(webhooksSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create the webhook schema in %s: %w", path, err)
	}
	var hasMeasured int
	if err := db.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('deliveries') WHERE name = 'measured'`).Scan(&hasMeasured); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't read the webhook schema in %s: %w", path, err)
	}
	if hasMeasured == 0 {
		if _, err := db.Exec(measuredColumn); err != nil {
			db.Close()
			return nil, fmt.Errorf("couldn't add the deliveries' measurement times in %s: %w", path, err)
		}
	}
	if _, err := db.Exec(`CREATE INDEX IF NOT EXISTS deliveries_measured ON deliveries (vehicle, measured) WHERE measured > 0`); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't index the deliveries' measurement times in %s: %w", path, err)
	}
	if _, err := db.Exec(`UPDATE deliveries SET lease_until = 0 WHERE status = 'pending' AND lease_until > 0`); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't release the deliveries' leases in %s: %w", path, err)
	}
	claim, err := db.Prepare(`SELECT seq, id, webhook FROM deliveries INDEXED BY deliveries_due
		WHERE status = 'pending' AND next_attempt <= ? ORDER BY next_attempt, seq`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't prepare claiming deliveries in %s: %w", path, err)
	}
	one, err := db.Prepare(`SELECT ` + deliveryColumns + ` FROM deliveries WHERE seq = ? AND status = 'pending'`)
	if err != nil {
		claim.Close()
		db.Close()
		return nil, fmt.Errorf("couldn't prepare claiming deliveries in %s: %w", path, err)
	}
	fin, err := sql.Open("sqlite", "file:"+path+pragmas+"&_pragma=synchronous(NORMAL)")
	if err != nil {
		one.Close()
		claim.Close()
		db.Close()
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	s := &Webhooks{db: db, fin: fin, claimStmt: claim, deliveryStmt: one, leases: map[string]deliveryLease{},
		insertStmts: chunkStmts{text: insertText}, finishUpdates: chunkStmts{text: finishUpdateText},
		finishAttempts: chunkStmts{text: finishAttemptText}}
	return s, nil
}

// Close closes the database.
func (s *Webhooks) Close() error {
	for _, st := range []*sql.Stmt{s.claimStmt, s.deliveryStmt} {
		if st != nil {
			st.Close()
		}
	}
	for _, c := range []*chunkStmts{&s.insertStmts, &s.finishUpdates, &s.finishAttempts} {
		c.close()
	}
	return errors.Join(s.fin.Close(), s.db.Close())
}

// allGranted is how the vehicles column stores a webhook that covers every vehicle the app holds a grant
// on (outbox.Webhook.AllGranted).
const allGranted = "all-granted"

func encodeVehicles(w *outbox.Webhook) string {
	if w.AllGranted {
		return allGranted
	}
	b, _ := json.Marshal(w.Vehicles)
	return string(b)
}

func decodeVehicles(s string, w *outbox.Webhook) error {
	if s == allGranted {
		w.AllGranted = true
		return nil
	}
	return json.Unmarshal([]byte(s), &w.Vehicles)
}

// CreateWebhook implements outbox.Store.
func (s *Webhooks) CreateWebhook(ctx context.Context, w *outbox.Webhook) error {
	trig, err := json.Marshal(w.Trigger)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO webhooks (id, app, url, description, vehicles, trigger, secret, status, reason, created, updated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, w.ID, w.App.Bytes(), w.URL, w.Description, encodeVehicles(w), string(trig),
		w.Secret, string(w.Status), w.Reason, w.Created.UnixMilli(), w.Updated.UnixMilli())
	if err != nil {
		return fmt.Errorf("couldn't insert webhook %s: %w", w.ID, err)
	}
	return nil
}

// UpdateWebhook implements outbox.Store.
func (s *Webhooks) UpdateWebhook(ctx context.Context, w *outbox.Webhook) error {
	trig, err := json.Marshal(w.Trigger)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE webhooks SET url = ?, description = ?, vehicles = ?, trigger = ?, status = ?, reason = ?, updated = ?
		WHERE id = ?`, w.URL, w.Description, encodeVehicles(w), string(trig), string(w.Status), w.Reason, w.Updated.UnixMilli(), w.ID)
	if err != nil {
		return fmt.Errorf("couldn't update webhook %s: %w", w.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return outbox.ErrNotFound
	}
	return nil
}

// DeleteWebhook implements outbox.Store.
func (s *Webhooks) DeleteWebhook(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("couldn't delete webhook %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return outbox.ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'dropped', last_error = 'the webhook was deleted', done = ?, lease_until = 0
		WHERE webhook = ? AND status = 'pending'`, time.Now().UnixMilli(), id); err != nil {
		return fmt.Errorf("couldn't drop the deliveries of webhook %s: %w", id, err)
	}
	return tx.Commit()
}

const webhookColumns = `id, app, url, description, vehicles, trigger, secret, status, reason, created, updated`

func scanWebhook(row interface{ Scan(...any) error }) (*outbox.Webhook, error) {
	var w outbox.Webhook
	var app []byte
	var vehicles, trig, status string
	var created, updated int64
	if err := row.Scan(&w.ID, &app, &w.URL, &w.Description, &vehicles, &trig, &w.Secret, &status, &w.Reason, &created, &updated); err != nil {
		return nil, err
	}
	w.App = common.BytesToAddress(app)
	w.Status = outbox.Status(status)
	w.Created, w.Updated = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	if err := decodeVehicles(vehicles, &w); err != nil {
		return nil, fmt.Errorf("webhook %s: bad vehicles: %w", w.ID, err)
	}
	if err := json.Unmarshal([]byte(trig), &w.Trigger); err != nil {
		return nil, fmt.Errorf("webhook %s: bad trigger: %w", w.ID, err)
	}
	return &w, nil
}

// Webhook implements outbox.Store.
func (s *Webhooks) Webhook(ctx context.Context, id string) (*outbox.Webhook, error) {
	w, err := scanWebhook(s.db.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, outbox.ErrNotFound
	}
	return w, err
}

// Webhooks implements outbox.Store.
func (s *Webhooks) Webhooks(ctx context.Context, app common.Address) ([]*outbox.Webhook, error) {
	q, args := `SELECT `+webhookColumns+` FROM webhooks ORDER BY created, id`, []any{}
	if app != (common.Address{}) {
		q, args = `SELECT `+webhookColumns+` FROM webhooks WHERE app = ? ORDER BY created, id`, []any{app.Bytes()}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("couldn't list webhooks: %w", err)
	}
	defer rows.Close()
	out := []*outbox.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func timeOrZero(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Enqueue implements outbox.Store.
func (s *Webhooks) Enqueue(ctx context.Context, ds []*outbox.Delivery) error {
	added, err := s.insert(ctx, ds)
	if err != nil {
		return err
	}
	s.leaseMu.Lock()
	for _, d := range added {
		s.lowerDue(d.NextAttempt.UnixMilli())
	}
	s.leaseMu.Unlock()
	return nil
}

// EnqueueLeased implements outbox.LeasingStore: the deliveries added are leased as they are committed,
// so that the engine attempts them without a Claim reading them back.
func (s *Webhooks) EnqueueLeased(ctx context.Context, ds []*outbox.Delivery, until time.Time) ([]*outbox.Delivery, error) {
	added, err := s.insert(ctx, ds)
	if err != nil {
		return nil, err
	}
	untilMs := until.UnixMilli()
	s.leaseMu.Lock()
	for _, d := range added {
		s.leases[d.ID] = deliveryLease{webhook: d.Webhook, until: untilMs}
	}
	if len(added) > 0 {
		s.lowerDue(untilMs)
	}
	s.leaseMu.Unlock()
	return added, nil
}

// Release implements outbox.LeasingStore.
func (s *Webhooks) Release(ids []string) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	for _, id := range ids {
		delete(s.leases, id)
	}
	if len(ids) > 0 {
		s.nextDue = 0
	}
}

// lowerDue notes that a Claim may find something at ms. leaseMu held.
func (s *Webhooks) lowerDue(ms int64) {
	s.nextDue = min(s.nextDue, ms)
}

// insert adds ds in one transaction, fsynced, and returns those it added (not those whose id was there).
// The rows go in a few multi-row statements (rowChunks): a statement a row cost more in the driver than
// the rows cost SQLite.
func (s *Webhooks) insert(ctx context.Context, ds []*outbox.Delivery) ([]*outbox.Delivery, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	added := ds
	args := make([]any, 0, insertArgs*min(len(ds), maxChunk))
	for start := 0; start < len(ds); {
		n := rowChunk(len(ds) - start)
		st, err := s.insertStmts.get(s.db, n)
		if err != nil {
			return nil, fmt.Errorf("couldn't prepare enqueueing deliveries: %w", err)
		}
		args = args[:0]
		for _, d := range ds[start : start+n] {
			args = append(args, d.ID, d.Webhook, d.App.Bytes(), d.Vehicle, d.Type, strings.Join(d.Permissions, ","), d.Body,
				string(d.Status), d.Attempts, d.Created.UnixMilli(), d.NextAttempt.UnixMilli(), msOrZero(d.Measured))
		}
		res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("couldn't enqueue deliveries %s…: %w", ds[start].ID, err)
		}
		inserted, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("couldn't enqueue deliveries %s…: %w", ds[start].ID, err)
		}
		if int(inserted) < n {
			// Some ids were in the outbox already. The rows added have consecutive seqs (each new row takes
			// the largest seq and one, in a transaction no one else writes), ending at the last one added.
			last, err := res.LastInsertId()
			if err != nil {
				return nil, fmt.Errorf("couldn't enqueue deliveries %s…: %w", ds[start].ID, err)
			}
			if added, err = s.keepAdded(ctx, tx, added, ds[start:start+n], last-inserted, inserted); err != nil {
				return nil, err
			}
		}
		start += n
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if len(added) == len(ds) {
		return slices.Clone(ds), nil
	}
	return added, nil
}

// keepAdded returns added without those of chunk not among the n rows after seq after (the rows this
// chunk added). added is ds so far; the first call makes it a copy.
func (s *Webhooks) keepAdded(ctx context.Context, tx *sql.Tx, added, chunk []*outbox.Delivery, after, n int64) ([]*outbox.Delivery, error) {
	fresh := map[string]bool{}
	if n > 0 {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM deliveries WHERE seq > ? AND seq <= ?`, after, after+n)
		if err != nil {
			return nil, fmt.Errorf("couldn't read the deliveries enqueued: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("couldn't read the deliveries enqueued: %w", err)
			}
			fresh[id] = true
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("couldn't read the deliveries enqueued: %w", err)
		}
	}
	skipped := map[*outbox.Delivery]bool{}
	for _, d := range chunk {
		if !fresh[d.ID] {
			skipped[d] = true
		} else {
			delete(fresh, d.ID) // an id twice in one chunk: the second was skipped
		}
	}
	return slices.DeleteFunc(slices.Clone(added), func(d *outbox.Delivery) bool { return skipped[d] }), nil
}

// The multi-row statements of insert and finishGroup take rowChunk rows: the largest power of two up to
// maxChunk that fits, so that at most log₂(maxChunk)+1 statements of each are prepared, and a group of n
// rows takes at most n/maxChunk + log₂(maxChunk) statements.
const maxChunk = 64

func rowChunk(n int) int {
	c := maxChunk
	for c > n {
		c /= 2
	}
	return c
}

// chunkStmts are the statements of one multi-row SQL text, prepared once per row count.
type chunkStmts struct {
	text func(rows int) string
	mu   sync.Mutex
	byN  map[int]*sql.Stmt
}

func (c *chunkStmts) get(db *sql.DB, rows int) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.byN[rows]; st != nil {
		return st, nil
	}
	st, err := db.Prepare(c.text(rows))
	if err != nil {
		return nil, err
	}
	if c.byN == nil {
		c.byN = map[int]*sql.Stmt{}
	}
	c.byN[rows] = st
	return st, nil
}

func (c *chunkStmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.byN {
		st.Close()
	}
	c.byN = nil
}

// valueRows returns rows groups of width placeholders: "(?, ?), (?, ?)".
func valueRows(rows, width int) string {
	row := "(?" + strings.Repeat(", ?", width-1) + ")"
	return row + strings.Repeat(", "+row, rows-1)
}

// insertArgs is the number of values a row of insertText takes.
const insertArgs = 12

func insertText(rows int) string {
	return `INSERT INTO deliveries (id, webhook, app, vehicle, type, perms, body, status, attempts, created, next_attempt, measured,
		lease_until, last_code, last_error, done) SELECT column1, column2, column3, column4, column5, column6, column7, column8, column9,
		column10, column11, column12, 0, 0, '', 0 FROM (VALUES ` + valueRows(rows, insertArgs) + `) WHERE true ON CONFLICT (id) DO NOTHING`
}

const deliveryColumns = `id, webhook, app, vehicle, type, perms, body, status, attempts, created, next_attempt, last_code, last_error, done`

func scanDelivery(row interface{ Scan(...any) error }) (*outbox.Delivery, error) {
	var d outbox.Delivery
	var app []byte
	var perms, status string
	var created, next, done int64
	if err := row.Scan(&d.ID, &d.Webhook, &app, &d.Vehicle, &d.Type, &perms, &d.Body, &status, &d.Attempts, &created, &next,
		&d.LastCode, &d.LastError, &done); err != nil {
		return nil, err
	}
	d.App = common.BytesToAddress(app)
	if perms != "" {
		d.Permissions = strings.Split(perms, ",")
	}
	d.Status = outbox.DeliveryStatus(status)
	d.Created, d.Done = time.UnixMilli(created).UTC(), timeOrZero(done)
	if d.Status == outbox.DeliveryPending {
		d.NextAttempt = timeOrZero(next)
	}
	return &d, nil
}

func scanDeliveries(rows *sql.Rows) ([]*outbox.Delivery, error) {
	defer rows.Close()
	out := []*outbox.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Claim implements outbox.Store. Only one process uses the file, so leases are kept in memory, not
// written: a claim is a read (a written lease cost a synchronous commit per claim, and the window query
// that counted leases per webhook read every pending delivery), and a process that dies leaves no lease
// behind. The scan walks the due deliveries in (next attempt, seq) order and stops at limit. A claim
// before nextDue, with no blocked webhook free again, reads nothing: the engine claims whenever an
// attempt ends, and with the fresh deliveries handed to it leased (EnqueueLeased) most of those claims
// would read only the deliveries in flight.
func (s *Webhooks) Claim(ctx context.Context, now time.Time, limit, perWebhook int, busy []string, lease time.Duration) ([]*outbox.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	nowMs := now.UnixMilli()
	if nowMs < s.nextDue && s.stillBlocked(busy) {
		return nil, nil
	}
	held := map[string]int{} // webhook → deliveries whose lease has not run out
	for id, l := range s.leases {
		if l.until <= nowMs {
			delete(s.leases, id)
			continue
		}
		held[l.webhook]++
	}
	for _, b := range busy {
		held[b] = perWebhook
	}
	// The scan reads three columns of each due delivery (those in flight among them); the chosen ones
	// are read whole.
	rows, err := s.claimStmt.QueryContext(ctx, nowMs)
	if err != nil {
		return nil, fmt.Errorf("couldn't claim deliveries: %w", err)
	}
	var seqs []int64
	blocked := map[string]bool{}
	for len(seqs) < limit && rows.Next() {
		var seq int64
		var id, hook string
		if err := rows.Scan(&seq, &id, &hook); err != nil {
			rows.Close()
			return nil, fmt.Errorf("couldn't claim deliveries: %w", err)
		}
		if _, leased := s.leases[id]; leased {
			continue
		}
		if held[hook] >= perWebhook {
			blocked[hook] = true
			continue
		}
		held[hook]++
		seqs = append(seqs, seq)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("couldn't claim deliveries: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't claim deliveries: %w", err)
	}
	ds := make([]*outbox.Delivery, 0, len(seqs))
	for _, seq := range seqs {
		d, err := scanDelivery(s.deliveryStmt.QueryRowContext(ctx, seq))
		if errors.Is(err, sql.ErrNoRows) {
			continue // erased since the scan
		}
		if err != nil {
			return nil, fmt.Errorf("couldn't claim deliveries: %w", err)
		}
		ds = append(ds, d)
	}
	until := now.Add(lease).UnixMilli()
	for _, d := range ds {
		s.leases[d.ID] = deliveryLease{webhook: d.Webhook, until: until}
	}
	// What the next claim may find: nothing before the next due delivery or the first lease to run out,
	// unless this one stopped at limit (there may be more due now).
	s.nextDue, s.blocked = 0, blocked
	if len(seqs) < limit {
		var next sql.NullInt64
		if err := s.db.QueryRowContext(ctx, `SELECT MIN(next_attempt) FROM deliveries INDEXED BY deliveries_due
			WHERE status = 'pending' AND next_attempt > ?`, nowMs).Scan(&next); err != nil {
			return ds, nil // nextDue stays unknown: the next claim scans
		}
		s.nextDue = math.MaxInt64
		if next.Valid {
			s.nextDue = next.Int64
		}
		for _, l := range s.leases {
			s.lowerDue(l.until)
		}
	}
	return ds, nil
}

// stillBlocked reports whether every webhook the last scan left blocked is still in busy. leaseMu held.
func (s *Webhooks) stillBlocked(busy []string) bool {
	for hook := range s.blocked {
		if !slices.Contains(busy, hook) {
			return false
		}
	}
	return true
}

// deliveryLease is a claimed delivery's webhook and the end of its lease (unix ms).
type deliveryLease struct {
	webhook string
	until   int64
}

// Finish implements outbox.Store. Concurrent calls are committed together (one commit for all that
// arrived while the previous group was being written); each returns once its group is committed. While
// more deliveries are leased than wait to be finished, the writer first waits finishGather for more of
// them to end: a commit costs about as much as the rows it writes, and the deliveries were answered
// already (it delays only the release of their slots).
func (s *Webhooks) Finish(ctx context.Context, d *outbox.Delivery, a outbox.Attempt) error {
	req := &finishReq{d: d, a: a, done: make(chan error, 1)}
	s.finishMu.Lock()
	s.finishing = append(s.finishing, req)
	leader := !s.flushing
	s.flushing = true
	s.finishMu.Unlock()
	if leader {
		for {
			s.finishMu.Lock()
			queued := len(s.finishing)
			s.finishMu.Unlock()
			s.leaseMu.Lock()
			leased := len(s.leases)
			s.leaseMu.Unlock()
			if queued > 0 && leased > queued {
				time.Sleep(finishGather)
			}
			s.finishMu.Lock()
			group := s.finishing
			s.finishing = nil
			if len(group) == 0 {
				s.flushing = false
				s.finishMu.Unlock()
				break
			}
			s.finishMu.Unlock()
			err := s.finishGroup(context.Background(), group)
			if err == nil { // else the leases run out, as a lease of a process that died would
				s.leaseMu.Lock()
				for _, r := range group {
					delete(s.leases, r.d.ID)
					if r.d.Status == outbox.DeliveryPending {
						s.lowerDue(msOrZero(r.d.NextAttempt))
					}
				}
				s.leaseMu.Unlock()
			}
			for _, r := range group {
				r.done <- err
			}
		}
	}
	return <-req.done
}

// finishGather is how long Finish waits for more attempts to end before committing a group, while
// others are in flight.
const finishGather = 3 * time.Millisecond

type finishReq struct {
	d    *outbox.Delivery
	a    outbox.Attempt
	done chan error
}

// finishGroup writes a group's outcomes in one transaction: a multi-row UPDATE of the deliveries and a
// multi-row INSERT of the attempts per chunk of rows (rowChunk).
func (s *Webhooks) finishGroup(ctx context.Context, group []*finishReq) error {
	tx, err := s.fin.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	update := make([]any, 0, finishArgs*min(len(group), maxChunk))
	attempt := make([]any, 0, attemptArgs*min(len(group), maxChunk))
	for start := 0; start < len(group); {
		n := rowChunk(len(group) - start)
		up, err := s.finishUpdates.get(s.fin, n)
		if err != nil {
			return fmt.Errorf("couldn't prepare finishing deliveries: %w", err)
		}
		at, err := s.finishAttempts.get(s.fin, n)
		if err != nil {
			return fmt.Errorf("couldn't prepare finishing deliveries: %w", err)
		}
		update, attempt = update[:0], attempt[:0]
		for _, r := range group[start : start+n] {
			d, a := r.d, r.a
			update = append(update, d.ID, string(d.Status), d.Attempts, msOrZero(d.NextAttempt), d.LastCode, d.LastError, msOrZero(d.Done))
			attempt = append(attempt, d.ID, a.Time.UnixMilli(), a.Code, a.Error, a.Duration.Microseconds())
		}
		if _, err := tx.StmtContext(ctx, up).ExecContext(ctx, update...); err != nil {
			return fmt.Errorf("couldn't finish deliveries %s…: %w", group[start].d.ID, err)
		}
		if _, err := tx.StmtContext(ctx, at).ExecContext(ctx, attempt...); err != nil {
			return fmt.Errorf("couldn't record attempts of deliveries %s…: %w", group[start].d.ID, err)
		}
		start += n
	}
	return tx.Commit()
}

// The values a row of finishUpdateText and finishAttemptText takes.
const (
	finishArgs  = 7
	attemptArgs = 5
)

func finishUpdateText(rows int) string {
	return `UPDATE deliveries SET status = v.column2, attempts = v.column3, next_attempt = v.column4, lease_until = 0,
		last_code = v.column5, last_error = v.column6, done = v.column7 FROM (VALUES ` + valueRows(rows, finishArgs) + `) AS v
		WHERE deliveries.id = v.column1`
}

// finishAttemptText inserts no attempt of a delivery erased while it was being attempted.
func finishAttemptText(rows int) string {
	return `INSERT INTO delivery_attempts (delivery, time, code, error, duration_us)
		SELECT column1, column2, column3, column4, column5 FROM (VALUES ` + valueRows(rows, attemptArgs) + `) AS v
		WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = v.column1)`
}

// Drop implements outbox.Store.
func (s *Webhooks) Drop(ctx context.Context, app common.Address, vehicle uint64, reason string, now time.Time) ([]*outbox.Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `UPDATE deliveries SET status = 'dropped', last_error = ?, done = ?, lease_until = 0
		WHERE app = ? AND vehicle = ? AND status = 'pending' AND perms != '' RETURNING `+deliveryColumns,
		reason, now.UnixMilli(), app.Bytes(), vehicle)
	if err != nil {
		return nil, fmt.Errorf("couldn't drop deliveries: %w", err)
	}
	return scanDeliveries(rows)
}

// Erase implements telemetry.Eraser: it deletes the deliveries about vehicle whose telemetry was
// measured in [from, to) (outbox.Delivery.Measured), pending or finished, with their attempts, at most
// eraseBatch deliveries a transaction. An erased delivery is no longer listed, attempted or retried.
func (s *Webhooks) Erase(ctx context.Context, vehicle uint64, from, to int64) (int64, error) {
	var total int64
	for {
		n, err := s.eraseBatch(ctx, vehicle, from, to)
		if err != nil {
			return total, fmt.Errorf("couldn't erase the deliveries of vehicle %d: %w", vehicle, err)
		}
		total += n
		if n < eraseBatch {
			return total, nil
		}
	}
}

func (s *Webhooks) eraseBatch(ctx context.Context, vehicle uint64, from, to int64) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	const batch = `SELECT seq FROM deliveries WHERE vehicle = ? AND measured > 0 AND measured >= ? AND measured < ? ORDER BY seq LIMIT ?`
	if _, err := tx.ExecContext(ctx, `DELETE FROM delivery_attempts WHERE delivery IN (SELECT id FROM deliveries WHERE seq IN (`+batch+`))`,
		vehicle, from, to, eraseBatch); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE seq IN (`+batch+`)`, vehicle, from, to, eraseBatch)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, tx.Commit()
}

// Retry implements outbox.Store.
func (s *Webhooks) Retry(ctx context.Context, id string, now time.Time) (*outbox.Delivery, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, `UPDATE deliveries SET status = 'pending', next_attempt = ?, lease_until = 0, done = 0
		WHERE id = ? RETURNING `+deliveryColumns, now.UnixMilli(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, outbox.ErrNotFound
	}
	if err == nil {
		s.leaseMu.Lock()
		s.lowerDue(now.UnixMilli())
		s.leaseMu.Unlock()
	}
	return d, err
}

// Delivery implements outbox.Store.
func (s *Webhooks) Delivery(ctx context.Context, id string) (*outbox.Delivery, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, outbox.ErrNotFound
	}
	return d, err
}

// Deliveries implements outbox.Store.
func (s *Webhooks) Deliveries(ctx context.Context, hook string, before string, limit int) ([]*outbox.Delivery, error) {
	beforeSeq := int64(1) << 62
	if before != "" {
		if err := s.db.QueryRowContext(ctx, `SELECT seq FROM deliveries WHERE id = ? AND webhook = ?`, before, hook).Scan(&beforeSeq); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil, outbox.ErrNotFound
			}
			return nil, err
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE webhook = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
		hook, beforeSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't list deliveries: %w", err)
	}
	return scanDeliveries(rows)
}

// Pending implements outbox.Store.
func (s *Webhooks) Pending(ctx context.Context, hook string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE webhook = ? AND status = 'pending'`, hook).Scan(&n)
	return n, err
}

// Cursor implements outbox.Store.
func (s *Webhooks) Cursor(ctx context.Context, name string) (int64, bool, error) {
	var pos int64
	err := s.db.QueryRowContext(ctx, `SELECT pos FROM cursors WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return pos, err == nil, err
}

// SetCursor implements outbox.Store.
func (s *Webhooks) SetCursor(ctx context.Context, name string, pos int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO cursors (name, pos) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET pos = excluded.pos`, name, pos)
	return err
}
