package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/store/storetest"
	"github.com/glovebox/glovebox/webhook/outbox"
)

func TestWebhooksConformance(t *testing.T) {
	storetest.TestWebhooks(t, func(t *testing.T) outbox.Store { return postgres.NewWebhooks(migrated(t)) })
}

// The shared eraser suite, counting the attempts in webhook_attempts.
func TestWebhookEraserConformance(t *testing.T) {
	var pool *pgxpool.Pool // the database of the store the current case opened
	storetest.TestWebhookEraser(t, func(t *testing.T) storetest.ErasingWebhooks {
		pool = migrated(t)
		return postgres.NewWebhooks(pool)
	}, func(t *testing.T, _ storetest.ErasingWebhooks) int {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM webhook_attempts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	})
}

// A database whose deliveries were enqueued before they had measurement times (migration 0011) gets
// them from their events when migrated, so that retention and erasure reach them.
func TestMigrationGivesOlderDeliveriesTheirMeasurementTimes(t *testing.T) {
	ctx := context.Background()
	// The schema as a build before 0011 left it.
	pool := migratedBefore(t, 11)
	for _, r := range []struct {
		id      string
		vehicle int
		body    string
	}{
		{"signal", 1, `{"type":"glovebox.signal.triggered","data":{"signal":{"name":"speed","timestamp":"2026-01-02T03:04:05.5Z","value":130}}}`},
		{"event", 1, `{"type":"glovebox.event.triggered","data":{"event":{"name":"behavior.harshBraking","timestamp":"2026-01-02T03:04:06Z"}}}`},
		{"trip", 1, `{"type":"glovebox.trip.ended","data":{"start":"2026-01-02T03:00:00Z","end":"2026-01-02T04:00:00Z"}}`},
		{"offline", 1, `{"type":"glovebox.vehicle.offline","data":{"lastSeen":"2026-01-02T03:04:07Z"}}`},
		{"grant", 1, `{"type":"glovebox.grant.created","data":{"permissions":["signals"]}}`},
		{"test", 0, `{"type":"glovebox.webhook.test","data":{"message":"hi"}}`},
		{"not json", 1, `{"data":`},
		{"bad time", 1, `{"data":{"start":"yesterday"}}`},
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO webhook_deliveries (id, webhook, app, vehicle, type, perms, body, status, attempts, created,
			next_attempt) VALUES ($1, 'wh_1', '\x01', $2, '', '', $3, 'delivered', 1, 0, 0)`, r.id, r.vehicle, []byte(r.body)); err != nil {
			t.Fatal(err)
		}
	}
	if applied, err := postgres.Migrate(ctx, pool); err != nil || !slices.Contains(applied, 11) {
		t.Fatalf("Migrate: %v %v, want 0011 applied", applied, err)
	}
	got := map[string]int64{}
	rows, err := pool.Query(ctx, `SELECT id, measured FROM webhook_deliveries`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var m int64
		if err := rows.Scan(&id, &m); err != nil {
			t.Fatal(err)
		}
		got[id] = m
	}
	rows.Close()
	ms := func(s string) int64 { t, _ := time.Parse(time.RFC3339Nano, s); return t.UnixMilli() }
	want := map[string]int64{"signal": ms("2026-01-02T03:04:05.5Z"), "event": ms("2026-01-02T03:04:06Z"), "trip": ms("2026-01-02T03:00:00Z"),
		"offline": ms("2026-01-02T03:04:07Z"), "grant": 0, "test": 0, "not json": 0, "bad time": 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("measured after the migration\n%v\nwant\n%v", got, want)
	}
	if n, err := postgres.NewWebhooks(pool).Erase(ctx, 1, 0, ms("2026-01-02T03:04:06.5Z")); err != nil || n != 3 {
		t.Fatalf("erasing before 03:04:06.5: %d %v, want the signal, event and trip deliveries", n, err)
	}
}
