package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/store/storetest"
	"github.com/glovebox/glovebox/webhook/outbox"
)

// delivery is a delivery of vehicle whose body carries telemetry measured at unix ms measured (0: none).
func delivery(id string, vehicle uint64, measured int64) *outbox.Delivery {
	d := &outbox.Delivery{ID: id, Webhook: "wh_1", App: common.HexToAddress("0x1"), Vehicle: vehicle, Type: "glovebox.signal.triggered",
		Body: []byte(`{"data":{"signal":{"value":130}}}`), Status: outbox.DeliveryPending, Created: time.UnixMilli(1), NextAttempt: time.UnixMilli(1)}
	if measured != 0 {
		d.Measured = time.UnixMilli(measured)
	}
	return d
}

// remaining lists the ids of the deliveries left, and how many attempts are recorded.
func remaining(t *testing.T, s *Webhooks) ([]string, int) {
	t.Helper()
	rows, err := s.db.Query(`SELECT id FROM deliveries ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	var attempts int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM delivery_attempts`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	return ids, attempts
}

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

func TestEnqueueLeasedHandsTheNewDeliveriesToTheCallerAlone(t *testing.T) {
	ctx := context.Background()
	s, err := OpenWebhooks(filepath.Join(t.TempDir(), "webhooks.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := func(ds []*outbox.Delivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	now := time.UnixMilli(1000)
	if err := s.Enqueue(ctx, []*outbox.Delivery{delivery("d1", 1, 0)}); err != nil {
		t.Fatal(err)
	}
	// d1 is there already: only d2 and d3 are added, and leased.
	d3 := delivery("d3", 1, 0)
	d3.Webhook = "wh_3"
	leased, err := s.EnqueueLeased(ctx, []*outbox.Delivery{delivery("d1", 1, 0), delivery("d2", 1, 0), d3}, now.Add(time.Minute))
	if err != nil || !slices.Equal(ids(leased), []string{"d2", "d3"}) {
		t.Fatalf("EnqueueLeased: %v %v", ids(leased), err)
	}
	// Durable as Enqueue: in the file before they are attempted.
	if left, _ := remaining(t, s); !slices.Equal(left, []string{"d1", "d2", "d3"}) {
		t.Fatalf("in the file: %v", left)
	}
	steps := []struct {
		name    string
		release []string
		at      time.Time
		perHook int
		want    []string
	}{
		{"a claim gets only what is not leased", nil, now, 5, []string{"d1"}},
		{"nothing more while the leases hold", nil, now.Add(time.Second), 5, nil},
		{"a released delivery is claimed", []string{"d3"}, now.Add(time.Second), 5, []string{"d3"}},
		{"a lease that ran out is claimed again", nil, now.Add(2 * time.Minute), 5, []string{"d1", "d2", "d3"}},
	}
	for _, st := range steps {
		s.Release(st.release)
		got, err := s.Claim(ctx, st.at, 10, st.perHook, nil, time.Minute)
		if err != nil || !slices.Equal(ids(got), st.want) {
			t.Fatalf("%s: claimed %v %v, want %v", st.name, ids(got), err, st.want)
		}
	}
}

func TestAClaimThatReadsNothingStillFindsWhatBecameDue(t *testing.T) {
	ctx := context.Background()
	s, err := OpenWebhooks(filepath.Join(t.TempDir(), "webhooks.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.UnixMilli(1000)
	claim := func(at time.Time, busy ...string) []string {
		t.Helper()
		ds, err := s.Claim(ctx, at, 10, 1, busy, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	a, b := delivery("a", 1, 0), delivery("b", 1, 0) // both of wh_1, one in flight at a time
	if err := s.Enqueue(ctx, []*outbox.Delivery{a, b}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t0); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("first claim: %v", got)
	}
	if got := claim(t0, "wh_1"); got != nil {
		t.Fatalf("wh_1 busy: %v", got)
	}
	// a fails and is due again in a minute: wh_1 is free, so b goes; then a when it is due.
	a.Attempts, a.NextAttempt = 1, t0.Add(time.Minute)
	if err := s.Finish(ctx, a, outbox.Attempt{Time: t0, Code: 500}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t0); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after a failed: %v", got)
	}
	b.Status, b.Done, b.NextAttempt = outbox.DeliveryDelivered, t0, time.Time{}
	if err := s.Finish(ctx, b, outbox.Attempt{Time: t0, Code: 200}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t0.Add(time.Minute - time.Millisecond)); got != nil {
		t.Fatalf("before a's retry: %v", got)
	}
	c := delivery("c", 1, 0)
	c.Webhook, c.NextAttempt = "wh_2", t0.Add(time.Second)
	if err := s.Enqueue(ctx, []*outbox.Delivery{c}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t0.Add(time.Second)); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("an enqueued delivery due earlier: %v", got)
	}
	if got := claim(t0.Add(time.Minute)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("a's retry: %v", got)
	}
	if _, err := s.Retry(ctx, "b", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := claim(t0.Add(time.Minute)); got != nil {
		t.Fatalf("b retried while a of the same webhook is in flight: %v", got)
	}
	a.Status, a.Done, a.NextAttempt = outbox.DeliveryDelivered, t0, time.Time{}
	if err := s.Finish(ctx, a, outbox.Attempt{Time: t0, Code: 200}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t0.Add(time.Minute)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("b once wh_1 is free: %v", got)
	}
}

// Enqueue and Finish write their rows in multi-row statements of up to maxChunk rows: a batch that spans
// several of them, with ids already in the outbox in any of them and an id twice in one, adds each new id
// once, hands back exactly those added in the order given, and Finish records every outcome.
func TestLargeBatchesAddEachNewDeliveryOnceAndFinishEveryOne(t *testing.T) {
	ctx := context.Background()
	s, err := OpenWebhooks(filepath.Join(t.TempDir(), "webhooks.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name := func(i int) string { return fmt.Sprintf("d%03d", i) }
	// There already: d000, d070 (in the second chunk of 64), d150 (in the chunk of 16 after two of 64).
	if err := s.Enqueue(ctx, []*outbox.Delivery{delivery(name(0), 1, 0), delivery(name(70), 1, 0), delivery(name(150), 1, 0)}); err != nil {
		t.Fatal(err)
	}
	var batch []*outbox.Delivery
	var want []string
	for i := range 151 {
		batch = append(batch, delivery(name(i), 1, 0))
		if i != 0 && i != 70 && i != 150 {
			want = append(want, name(i))
		}
		if i == 100 {
			batch = append(batch, delivery(name(100), 1, 0)) // twice in one chunk: added once
		}
	}
	leased, err := s.EnqueueLeased(ctx, batch, time.UnixMilli(1000).Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range leased {
		got = append(got, d.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("EnqueueLeased of 152 deliveries handed back %d: %v\nwant %d: %v", len(got), got, len(want), want)
	}
	if left, _ := remaining(t, s); len(left) != 151 {
		t.Fatalf("%d deliveries in the file, want 151", len(left))
	}

	var group []*finishReq
	for i, d := range leased {
		d.Attempts, d.LastCode = 1, 200+i%2
		d.Status, d.Done = outbox.DeliveryDelivered, time.UnixMilli(int64(2000+i))
		group = append(group, &finishReq{d: d, a: outbox.Attempt{Time: time.UnixMilli(1500), Code: d.LastCode, Duration: time.Millisecond}})
	}
	if err := s.finishGroup(ctx, group); err != nil {
		t.Fatal(err)
	}
	for i, d := range leased {
		got, err := s.Delivery(ctx, d.ID)
		if err != nil || got.Status != outbox.DeliveryDelivered || got.LastCode != 200+i%2 || got.Done.UnixMilli() != int64(2000+i) {
			t.Fatalf("%s after Finish: %+v %v", d.ID, got, err)
		}
	}
	if _, attempts := remaining(t, s); attempts != len(leased) {
		t.Fatalf("%d attempts recorded, want %d", attempts, len(leased))
	}
}
