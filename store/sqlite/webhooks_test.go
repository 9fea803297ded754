package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/glovebox/glovebox/store/storetest"
)

// The shared eraser suite, counting the attempts in delivery_attempts.
func TestWebhookEraserConformance(t *testing.T) {
	storetest.TestWebhookEraser(t, func(t *testing.T) storetest.ErasingWebhooks {
		s, err := OpenWebhooks(filepath.Join(t.TempDir(), "webhooks.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}, func(t *testing.T, s storetest.ErasingWebhooks) int {
		var n int
		if err := s.(*Webhooks).db.QueryRow(`SELECT COUNT(*) FROM delivery_attempts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	})
}

// A webhooks file made before deliveries had measurement times gets them from the bodies when it is
// opened, so that retention and erasure reach the deliveries already there.
func TestAnOlderWebhooksFileGetsTheMeasurementTimesOfItsDeliveries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webhooks.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE deliveries (
	seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, webhook TEXT NOT NULL, app BLOB NOT NULL,
	vehicle INTEGER NOT NULL, type TEXT NOT NULL, perms TEXT NOT NULL, body BLOB NOT NULL,
	status TEXT NOT NULL, attempts INTEGER NOT NULL, created INTEGER NOT NULL, next_attempt INTEGER NOT NULL,
	lease_until INTEGER NOT NULL, last_code INTEGER NOT NULL, last_error TEXT NOT NULL, done INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
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
	} {
		if _, err := db.Exec(`INSERT INTO deliveries (id, webhook, app, vehicle, type, perms, body, status, attempts, created, next_attempt,
			lease_until, last_code, last_error, done) VALUES (?, 'wh_1', x'01', ?, '', '', ?, 'delivered', 1, 0, 0, 0, 200, '', 1)`,
			r.id, r.vehicle, []byte(r.body)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := OpenWebhooks(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := map[string]int64{}
	rows, err := s.db.Query(`SELECT id, measured FROM deliveries`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var m int64
		rows.Scan(&id, &m)
		got[id] = m
	}
	rows.Close()
	ms := func(s string) int64 { t, _ := time.Parse(time.RFC3339Nano, s); return t.UnixMilli() }
	want := map[string]int64{"signal": ms("2026-01-02T03:04:05.5Z"), "event": ms("2026-01-02T03:04:06Z"), "trip": ms("2026-01-02T03:00:00Z"),
		"offline": ms("2026-01-02T03:04:07Z"), "grant": 0, "test": 0}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: measured %d, want %d", id, got[id], w)
		}
	}
	if n, err := s.Erase(context.Background(), 1, 0, ms("2026-01-02T03:04:06.5Z")); err != nil || n != 3 {
		t.Fatalf("erasing before 03:04:06.5: %d %v, want the signal, event and trip deliveries", n, err)
	}
}
