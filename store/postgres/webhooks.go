package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/webhook/outbox"
)

// Webhooks is the webhook registry and delivery outbox of a cluster (migration 0006), shared by all its
// processes. Every change is committed before it returns, so an enqueued delivery survives the loss of
// any process. Claim leases deliveries with SELECT … FOR UPDATE SKIP LOCKED: concurrent claims of several
// processes never return the same delivery, and the deliveries of a process that dies mid-delivery are
// claimed again by another once their lease runs out, with the same id.
//
// Times are the callers' clocks (unix milliseconds), so the processes of a cluster need synchronized clocks
// (NTP), as leases do anywhere.
type Webhooks struct {
	pool *pgxpool.Pool
}

var (
	_ outbox.Store     = (*Webhooks)(nil)
	_ telemetry.Eraser = (*Webhooks)(nil)
)

// NewWebhooks returns the webhook store on a migrated database.
func NewWebhooks(pool *pgxpool.Pool) *Webhooks { return &Webhooks{pool: pool} }

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

// CreateWebhook implements outbox.Store.
func (s *Webhooks) CreateWebhook(ctx context.Context, w *outbox.Webhook) error {
	trig, err := json.Marshal(w.Trigger)
	if err != nil {
		return fmt.Errorf("couldn't encode the trigger of webhook %s: %w", w.ID, err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO webhooks (id, app, url, description, vehicles, trigger, secret, status, reason, created, updated)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, w.ID, w.App.Bytes(), w.URL, w.Description, encodeVehicles(w), trig,
		w.Secret, string(w.Status), w.Reason, w.Created.UnixMilli(), w.Updated.UnixMilli()); err != nil {
		return fmt.Errorf("couldn't insert webhook %s: %w", w.ID, err)
	}
	return nil
}

// UpdateWebhook implements outbox.Store.
func (s *Webhooks) UpdateWebhook(ctx context.Context, w *outbox.Webhook) error {
	trig, err := json.Marshal(w.Trigger)
	if err != nil {
		return fmt.Errorf("couldn't encode the trigger of webhook %s: %w", w.ID, err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE webhooks SET url = $1, description = $2, vehicles = $3, trigger = $4, status = $5, reason = $6,
		updated = $7 WHERE id = $8`, w.URL, w.Description, encodeVehicles(w), trig, string(w.Status), w.Reason, w.Updated.UnixMilli(), w.ID)
	if err != nil {
		return fmt.Errorf("couldn't update webhook %s: %w", w.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return outbox.ErrNotFound
	}
	return nil
}

// DeleteWebhook implements outbox.Store.
func (s *Webhooks) DeleteWebhook(ctx context.Context, id string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("couldn't delete webhook %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return outbox.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = 'dropped', last_error = 'the webhook was deleted', done = $1,
			lease_until = 0 WHERE webhook = $2 AND status = 'pending'`, time.Now().UnixMilli(), id); err != nil {
			return fmt.Errorf("couldn't drop the deliveries of webhook %s: %w", id, err)
		}
		return nil
	})
}

const webhookColumns = `id, app, url, description, vehicles, trigger, secret, status, reason, created, updated`

func scanWebhook(row pgx.Row) (*outbox.Webhook, error) {
	var w outbox.Webhook
	var app, trig []byte
	var vehicles, status string
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
	if err := json.Unmarshal(trig, &w.Trigger); err != nil {
		return nil, fmt.Errorf("webhook %s: bad trigger: %w", w.ID, err)
	}
	return &w, nil
}

// Webhook implements outbox.Store.
func (s *Webhooks) Webhook(ctx context.Context, id string) (*outbox.Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, outbox.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read webhook %s: %w", id, err)
	}
	return w, nil
}

// Webhooks implements outbox.Store.
func (s *Webhooks) Webhooks(ctx context.Context, app common.Address) ([]*outbox.Webhook, error) {
	q, args := `SELECT `+webhookColumns+` FROM webhooks ORDER BY created, id`, []any{}
	if app != (common.Address{}) {
		q, args = `SELECT `+webhookColumns+` FROM webhooks WHERE app = $1 ORDER BY created, id`, []any{app.Bytes()}
	}
	rows, err := s.pool.Query(ctx, q, args...)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't list webhooks: %w", err)
	}
	return out, nil
}

// Enqueue implements outbox.Store.
func (s *Webhooks) Enqueue(ctx context.Context, ds []*outbox.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, d := range ds {
		b.Queue(`INSERT INTO webhook_deliveries (id, webhook, app, vehicle, type, perms, body, status, attempts, created, next_attempt,
			measured) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING`,
			d.ID, d.Webhook, d.App.Bytes(), int64(d.Vehicle), d.Type, strings.Join(d.Permissions, ","), d.Body, string(d.Status),
			d.Attempts, d.Created.UnixMilli(), d.NextAttempt.UnixMilli(), msOrZero(d.Measured))
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return fmt.Errorf("couldn't enqueue %d deliveries: %w", len(ds), err)
		}
		return nil
	})
}

const deliveryColumns = `id, webhook, app, vehicle, type, perms, body, status, attempts, created, next_attempt, last_code, last_error, done`

func scanDelivery(row pgx.Row) (*outbox.Delivery, error) {
	var d outbox.Delivery
	var app []byte
	var perms, status string
	var vehicle, created, next, done int64
	if err := row.Scan(&d.ID, &d.Webhook, &app, &vehicle, &d.Type, &perms, &d.Body, &status, &d.Attempts, &created, &next,
		&d.LastCode, &d.LastError, &done); err != nil {
		return nil, err
	}
	d.App, d.Vehicle = common.BytesToAddress(app), uint64(vehicle)
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

func scanDeliveries(rows pgx.Rows, err error) ([]*outbox.Delivery, error) {
	if err != nil {
		return nil, err
	}
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

// Claim implements outbox.Store. The per-webhook bound counts the deliveries every process holds a lease
// on, so that a slow endpoint holds perWebhook slots of the whole cluster (two processes claiming at the
// same instant may exceed it once). Rows another claim has locked are skipped, never waited for.
func (s *Webhooks) Claim(ctx context.Context, now time.Time, limit, perWebhook int, busy []string, lease time.Duration) ([]*outbox.Delivery, error) {
	if busy == nil {
		busy = []string{}
	}
	ms := now.UnixMilli()
	ds, err := scanDeliveries(s.pool.Query(ctx, `WITH inflight AS (
			SELECT webhook, count(*) AS n FROM webhook_deliveries WHERE status = 'pending' AND lease_until > $1 GROUP BY webhook
		), ranked AS (
			SELECT d.seq, d.next_attempt, row_number() OVER (PARTITION BY d.webhook ORDER BY d.next_attempt, d.seq) + COALESCE(i.n, 0) AS rn
			FROM webhook_deliveries d LEFT JOIN inflight i ON i.webhook = d.webhook
			WHERE d.status = 'pending' AND d.next_attempt <= $1 AND d.lease_until <= $1 AND d.webhook <> ALL($2)
		), picked AS (
			SELECT d.seq FROM webhook_deliveries d
			JOIN (SELECT seq FROM ranked WHERE rn <= $3 ORDER BY next_attempt, seq LIMIT $4) r ON r.seq = d.seq
			WHERE d.status = 'pending' AND d.lease_until <= $1
			FOR UPDATE OF d SKIP LOCKED
		)
		UPDATE webhook_deliveries d SET lease_until = $5 FROM picked WHERE d.seq = picked.seq
		RETURNING `+prefixed("d.", deliveryColumns), ms, busy, perWebhook, limit, now.Add(lease).UnixMilli()))
	if err != nil {
		return nil, fmt.Errorf("couldn't claim deliveries: %w", err)
	}
	return ds, nil
}

// prefixed qualifies each of a comma-separated list of columns with p.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

// Finish implements outbox.Store.
func (s *Webhooks) Finish(ctx context.Context, d *outbox.Delivery, a outbox.Attempt) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt = $3, lease_until = 0,
			last_code = $4, last_error = $5, done = $6 WHERE id = $7`, string(d.Status), d.Attempts, msOrZero(d.NextAttempt), d.LastCode,
			d.LastError, msOrZero(d.Done), d.ID)
		if err != nil {
			return fmt.Errorf("couldn't finish delivery %s: %w", d.ID, err)
		}
		if tag.RowsAffected() == 0 { // erased while it was attempted: nothing of it is kept
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (delivery, time, code, error, duration_us) VALUES ($1, $2, $3, $4, $5)`,
			d.ID, a.Time.UnixMilli(), a.Code, a.Error, a.Duration.Microseconds()); err != nil {
			return fmt.Errorf("couldn't record an attempt of delivery %s: %w", d.ID, err)
		}
		return nil
	})
}

// Drop implements outbox.Store.
func (s *Webhooks) Drop(ctx context.Context, app common.Address, vehicle uint64, reason string, now time.Time) ([]*outbox.Delivery, error) {
	ds, err := scanDeliveries(s.pool.Query(ctx, `UPDATE webhook_deliveries SET status = 'dropped', last_error = $1, done = $2, lease_until = 0
		WHERE app = $3 AND vehicle = $4 AND status = 'pending' AND perms <> '' RETURNING `+deliveryColumns,
		reason, now.UnixMilli(), app.Bytes(), int64(vehicle)))
	if err != nil {
		return nil, fmt.Errorf("couldn't drop deliveries: %w", err)
	}
	return ds, nil
}

// eraseBatch is the most deliveries one transaction of Erase deletes.
const eraseBatch = 2000

// Erase implements telemetry.Eraser: it deletes the deliveries about vehicle whose telemetry was
// measured in [from, to) (outbox.Delivery.Measured), pending or finished, with their attempts, at most
// eraseBatch deliveries a transaction. An erased delivery is no longer listed, attempted or retried: a
// process attempting it when it is erased records nothing of the attempt (Finish).
func (s *Webhooks) Erase(ctx context.Context, vehicle uint64, from, to int64) (int64, error) {
	var total int64
	for {
		var n int64
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `DELETE FROM webhook_deliveries WHERE seq IN (
				SELECT seq FROM webhook_deliveries WHERE vehicle = $1 AND measured > 0 AND measured >= $2 AND measured < $3
				ORDER BY seq LIMIT $4) RETURNING id`, int64(vehicle), from, to, eraseBatch)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			n = int64(len(ids))
			if n == 0 {
				return nil
			}
			_, err = tx.Exec(ctx, `DELETE FROM webhook_attempts WHERE delivery = ANY($1)`, ids)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("couldn't erase the deliveries of vehicle %d: %w", vehicle, err)
		}
		total += n
		if n < eraseBatch {
			return total, nil
		}
	}
}

// Retry implements outbox.Store.
func (s *Webhooks) Retry(ctx context.Context, id string, now time.Time) (*outbox.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `UPDATE webhook_deliveries SET status = 'pending', next_attempt = $1, lease_until = 0, done = 0
		WHERE id = $2 RETURNING `+deliveryColumns, now.UnixMilli(), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, outbox.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't retry delivery %s: %w", id, err)
	}
	return d, nil
}

// Delivery implements outbox.Store.
func (s *Webhooks) Delivery(ctx context.Context, id string) (*outbox.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, outbox.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read delivery %s: %w", id, err)
	}
	return d, nil
}

// Deliveries implements outbox.Store.
func (s *Webhooks) Deliveries(ctx context.Context, hook string, before string, limit int) ([]*outbox.Delivery, error) {
	beforeSeq := int64(1) << 62
	if before != "" {
		if err := s.pool.QueryRow(ctx, `SELECT seq FROM webhook_deliveries WHERE id = $1 AND webhook = $2`, before, hook).Scan(&beforeSeq); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, outbox.ErrNotFound
			}
			return nil, fmt.Errorf("couldn't read delivery %s: %w", before, err)
		}
	}
	ds, err := scanDeliveries(s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE webhook = $1 AND seq < $2
		ORDER BY seq DESC LIMIT $3`, hook, beforeSeq, limit))
	if err != nil {
		return nil, fmt.Errorf("couldn't list deliveries: %w", err)
	}
	return ds, nil
}

// Pending implements outbox.Store.
func (s *Webhooks) Pending(ctx context.Context, hook string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE webhook = $1 AND status = 'pending'`, hook).Scan(&n); err != nil {
		return 0, fmt.Errorf("couldn't count pending deliveries: %w", err)
	}
	return n, nil
}

// Cursor implements outbox.Store.
func (s *Webhooks) Cursor(ctx context.Context, name string) (int64, bool, error) {
	var pos int64
	err := s.pool.QueryRow(ctx, `SELECT pos FROM webhook_cursors WHERE name = $1`, name).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("couldn't read cursor %s: %w", name, err)
	}
	return pos, true, nil
}

// SetCursor implements outbox.Store.
func (s *Webhooks) SetCursor(ctx context.Context, name string, pos int64) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO webhook_cursors (name, pos) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET pos = excluded.pos`,
		name, pos); err != nil {
		return fmt.Errorf("couldn't set cursor %s: %w", name, err)
	}
	return nil
}
