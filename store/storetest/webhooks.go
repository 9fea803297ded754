package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/webhook/outbox"
)

// TestWebhooks checks a webhook store (outbox.Store) against its contract: webhooks round-trip, the outbox
// keeps delivery ids unique, Claim leases due deliveries to one caller at a time (also when callers
// claim concurrently), honours busy and the per-webhook bound, hands a delivery whose lease ran out to the
// next claim with the same id, and Finish, Drop, Retry, Deliveries, Pending and the cursors do what they
// say. open returns an empty store; a store shared by several processes passes the same suite.
func TestWebhooks(t *testing.T, open func(t *testing.T) outbox.Store) {
	ctx := context.Background()
	appA, appB := common.HexToAddress("0x00000000000000000000000000000000000000aa"), common.HexToAddress("0x00000000000000000000000000000000000000bb")
	t0 := time.UnixMilli(1_800_000_000_000).UTC()
	hook := func(id string, app common.Address, at time.Time) *outbox.Webhook {
		return &outbox.Webhook{ID: id, App: app, URL: "https://hooks.example/" + id, Description: "for " + id, Vehicles: []uint64{1, 2},
			Trigger: outbox.Trigger{Kind: outbox.KindSignal, Signal: "speed", Condition: "value > 120.0", CooldownSeconds: 60},
			Secret:  "whsec_c2VjcmV0", Status: outbox.StatusPending, Created: at, Updated: at}
	}
	delivery := func(id, webhook string, app common.Address, vehicle uint64, at time.Time, perms ...string) *outbox.Delivery {
		return &outbox.Delivery{ID: id, Webhook: webhook, App: app, Vehicle: vehicle, Type: "glovebox.signal.triggered", Permissions: perms,
			Body: []byte(`{"id":"` + id + `"}`), Status: outbox.DeliveryPending, Created: at, NextAttempt: at}
	}
	ids := func(ds []*outbox.Delivery) []string {
		out := []string{}
		for _, d := range ds {
			out = append(out, d.ID)
		}
		slices.Sort(out)
		return out
	}

	t.Run("webhooks round-trip and are listed oldest first", func(t *testing.T) {
		s := open(t)
		a1, a2, b1 := hook("wh_a1", appA, t0), hook("wh_a2", appA, t0.Add(time.Second)), hook("wh_b1", appB, t0.Add(2*time.Second))
		a2.AllGranted, a2.Vehicles, a2.Trigger = true, nil, outbox.Trigger{Kind: outbox.KindConnectivity, SilenceSeconds: 600}
		for _, w := range []*outbox.Webhook{a2, a1, b1} {
			if err := s.CreateWebhook(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Webhook(ctx, "wh_a2")
		if err != nil || fmt.Sprint(*got) != fmt.Sprint(*a2) {
			t.Fatalf("Webhook: %+v %v, want %+v", got, err, a2)
		}
		listed := func(app common.Address) []string {
			ws, err := s.Webhooks(ctx, app)
			if err != nil {
				t.Fatal(err)
			}
			out := []string{}
			for _, w := range ws {
				out = append(out, w.ID)
			}
			return out
		}
		if got := listed(appA); !slices.Equal(got, []string{"wh_a1", "wh_a2"}) {
			t.Errorf("app A's webhooks: %v", got)
		}
		if got := listed(common.Address{}); !slices.Equal(got, []string{"wh_a1", "wh_a2", "wh_b1"}) {
			t.Errorf("every webhook: %v", got)
		}
		a1.URL, a1.Status, a1.Reason, a1.Vehicles, a1.Updated = "https://hooks.example/new", outbox.StatusDisabled, "paused", []uint64{7}, t0.Add(time.Hour)
		if err := s.UpdateWebhook(ctx, a1); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Webhook(ctx, "wh_a1"); err != nil || fmt.Sprint(*got) != fmt.Sprint(*a1) {
			t.Errorf("after UpdateWebhook: %+v %v, want %+v", got, err, a1)
		}
		missing := hook("wh_none", appA, t0)
		if err := s.UpdateWebhook(ctx, missing); !errors.Is(err, outbox.ErrNotFound) {
			t.Errorf("UpdateWebhook of a missing webhook: %v", err)
		}
		if _, err := s.Webhook(ctx, "wh_none"); !errors.Is(err, outbox.ErrNotFound) {
			t.Errorf("Webhook of a missing webhook: %v", err)
		}
		if err := s.DeleteWebhook(ctx, "wh_none"); !errors.Is(err, outbox.ErrNotFound) {
			t.Errorf("DeleteWebhook of a missing webhook: %v", err)
		}
	})

	t.Run("claims lease due deliveries once until the lease runs out, keeping their ids", func(t *testing.T) {
		s := open(t)
		for _, w := range []*outbox.Webhook{hook("wh_1", appA, t0), hook("wh_2", appA, t0)} {
			if err := s.CreateWebhook(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		d1, d2 := delivery("msg_1", "wh_1", appA, 1, t0, "signals"), delivery("msg_2", "wh_2", appA, 1, t0, "signals")
		later := delivery("msg_later", "wh_2", appA, 1, t0)
		later.NextAttempt = t0.Add(time.Minute)
		if err := s.Enqueue(ctx, []*outbox.Delivery{d1, d2, later}); err != nil {
			t.Fatal(err)
		}
		again := delivery("msg_1", "wh_1", appA, 1, t0)
		again.Body = []byte("another body")
		if err := s.Enqueue(ctx, []*outbox.Delivery{again}); err != nil {
			t.Fatalf("re-enqueueing an id: %v", err)
		}
		if got, err := s.Delivery(ctx, "msg_1"); err != nil || string(got.Body) != `{"id":"msg_1"}` || !slices.Equal(got.Permissions, []string{"signals"}) {
			t.Fatalf("a re-enqueued id replaced the delivery: %+v %v", got, err)
		}
		if ds, err := s.Claim(ctx, t0, 10, 1, []string{"wh_2"}, time.Hour); err != nil || !slices.Equal(ids(ds), []string{"msg_1"}) {
			t.Fatalf("claim with wh_2 busy: %v %v", ids(ds), err)
		}
		if ds, err := s.Claim(ctx, t0.Add(time.Second), 10, 1, nil, time.Hour); err != nil || !slices.Equal(ids(ds), []string{"msg_2"}) {
			t.Fatalf("the second claim: %v %v", ids(ds), err)
		}
		// msg_later is due now, but wh_2 has a delivery leased out and the bound is one per webhook.
		if ds, err := s.Claim(ctx, t0.Add(2*time.Minute), 10, 1, nil, time.Minute); err != nil || len(ds) != 0 {
			t.Fatalf("a claim while every lease holds: %v %v", ids(ds), err)
		}
		if ds, err := s.Claim(ctx, t0.Add(2*time.Minute), 10, 2, nil, time.Minute); err != nil || !slices.Equal(ids(ds), []string{"msg_later"}) {
			t.Fatalf("a claim with two per webhook: %v %v", ids(ds), err)
		}
		// The holders died: once the leases ran out, the next claim gets the deliveries again, same ids and
		// bodies (msg_later waits behind msg_2, one per webhook).
		t1 := t0.Add(2 * time.Hour)
		ds, err := s.Claim(ctx, t1, 10, 1, nil, time.Minute)
		if err != nil || !slices.Equal(ids(ds), []string{"msg_1", "msg_2"}) {
			t.Fatalf("the claim after the leases ran out: %v %v", ids(ds), err)
		}
		for _, d := range ds {
			if d.Status != outbox.DeliveryPending || d.Attempts != 0 || d.App != appA || d.Vehicle != 1 || string(d.Body) != `{"id":"`+d.ID+`"}` {
				t.Errorf("claimed delivery %+v", d)
			}
		}
		// Finish releases the lease: a failed attempt is due again at its next attempt.
		d := ds[slices.IndexFunc(ds, func(d *outbox.Delivery) bool { return d.ID == "msg_1" })]
		d.Attempts, d.LastCode, d.LastError, d.NextAttempt = 1, 503, "the endpoint answered 503", t1.Add(10*time.Minute)
		if err := s.Finish(ctx, d, outbox.Attempt{Time: t1, Code: 503, Error: d.LastError, Duration: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		busy := []string{"wh_2"}
		if ds, err := s.Claim(ctx, t1.Add(5*time.Minute), 10, 1, busy, time.Minute); err != nil || len(ds) != 0 {
			t.Fatalf("a claim before the retry is due: %v %v", ids(ds), err)
		}
		ds, err = s.Claim(ctx, t1.Add(10*time.Minute), 10, 1, busy, time.Minute)
		if err != nil || !slices.Equal(ids(ds), []string{"msg_1"}) || ds[0].Attempts != 1 || ds[0].LastCode != 503 || ds[0].LastError != "the endpoint answered 503" {
			t.Fatalf("the claim when the retry is due: %+v %v", ds, err)
		}
		done := t1.Add(10 * time.Minute)
		ds[0].Status, ds[0].Attempts, ds[0].LastCode, ds[0].LastError, ds[0].Done, ds[0].NextAttempt = outbox.DeliveryDelivered, 2, 200, "", done, time.Time{}
		if err := s.Finish(ctx, ds[0], outbox.Attempt{Time: done, Code: 200}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Delivery(ctx, "msg_1")
		if err != nil || got.Status != outbox.DeliveryDelivered || got.Attempts != 2 || got.LastCode != 200 || !got.Done.Equal(done) || !got.NextAttempt.IsZero() {
			t.Fatalf("the delivered delivery: %+v %v", got, err)
		}
		if n, err := s.Pending(ctx, "wh_1"); err != nil || n != 0 {
			t.Errorf("wh_1 pending: %d %v", n, err)
		}
		if n, err := s.Pending(ctx, "wh_2"); err != nil || n != 2 {
			t.Errorf("wh_2 pending: %d %v", n, err)
		}
		// Retry makes it pending again, due now, with the same id.
		if got, err := s.Retry(ctx, "msg_1", t1.Add(time.Hour)); err != nil || got.Status != outbox.DeliveryPending || got.ID != "msg_1" {
			t.Fatalf("Retry: %+v %v", got, err)
		}
		if ds, err := s.Claim(ctx, t1.Add(time.Hour), 10, 1, busy, time.Minute); err != nil || !slices.Equal(ids(ds), []string{"msg_1"}) {
			t.Fatalf("the claim after Retry: %v %v", ids(ds), err)
		}
		if _, err := s.Retry(ctx, "msg_none", t0); !errors.Is(err, outbox.ErrNotFound) {
			t.Errorf("Retry of a missing delivery: %v", err)
		}
	})

	t.Run("concurrent claims never return the same delivery", func(t *testing.T) {
		s := open(t)
		var ds []*outbox.Delivery
		for i := range 20 {
			id := fmt.Sprintf("wh_%02d", i)
			if err := s.CreateWebhook(ctx, hook(id, appA, t0)); err != nil {
				t.Fatal(err)
			}
			for j := range 5 {
				ds = append(ds, delivery(fmt.Sprintf("msg_%02d_%d", i, j), id, appA, 1, t0.Add(time.Duration(j)*time.Millisecond)))
			}
		}
		if err := s.Enqueue(ctx, ds); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := s.Claim(ctx, t0.Add(time.Second), 100, 5, nil, time.Minute)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				for _, d := range got {
					seen[d.ID]++
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s was claimed %d times", id, n)
			}
		}
		rest, err := s.Claim(ctx, t0.Add(time.Second), 100, 5, nil, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen)+len(rest) != 100 {
			t.Errorf("the concurrent claims got %d and a last claim %d of 100", len(seen), len(rest))
		}
		for _, d := range rest {
			if seen[d.ID] != 0 {
				t.Errorf("%s was claimed twice", d.ID)
			}
		}
	})

	t.Run("drops, deletes and the delivery log", func(t *testing.T) {
		s := open(t)
		for _, w := range []*outbox.Webhook{hook("wh_1", appA, t0), hook("wh_2", appB, t0)} {
			if err := s.CreateWebhook(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		var ds []*outbox.Delivery
		for i := range 5 {
			ds = append(ds, delivery(fmt.Sprintf("msg_a%d", i), "wh_1", appA, 1, t0.Add(time.Duration(i)*time.Second), "signals"))
		}
		ds = append(ds, delivery("msg_grant", "wh_1", appA, 1, t0), // no permissions: about the grant itself, never dropped
			delivery("msg_car2", "wh_1", appA, 2, t0, "signals"), delivery("msg_b", "wh_2", appB, 1, t0, "signals"))
		if err := s.Enqueue(ctx, ds); err != nil {
			t.Fatal(err)
		}
		dropped, err := s.Drop(ctx, appA, 1, "the grant was revoked", t0.Add(time.Minute))
		if err != nil || !slices.Equal(ids(dropped), []string{"msg_a0", "msg_a1", "msg_a2", "msg_a3", "msg_a4"}) {
			t.Fatalf("Drop: %v %v", ids(dropped), err)
		}
		for _, d := range dropped {
			if d.Status != outbox.DeliveryDropped || d.LastError != "the grant was revoked" || !d.Done.Equal(t0.Add(time.Minute)) {
				t.Errorf("dropped delivery %+v", d)
			}
		}
		page, err := s.Deliveries(ctx, "wh_1", "", 3)
		if err != nil || !slices.Equal([]string{page[0].ID, page[1].ID, page[2].ID}, []string{"msg_car2", "msg_grant", "msg_a4"}) {
			t.Fatalf("the newest deliveries: %v %v", page, err)
		}
		page, err = s.Deliveries(ctx, "wh_1", "msg_a4", 10)
		if err != nil || len(page) != 4 || page[0].ID != "msg_a3" || page[3].ID != "msg_a0" {
			t.Fatalf("the deliveries before msg_a4: %v %v", page, err)
		}
		if _, err := s.Deliveries(ctx, "wh_1", "msg_b", 10); !errors.Is(err, outbox.ErrNotFound) {
			t.Errorf("a cursor of another webhook: %v", err)
		}
		if err := s.DeleteWebhook(ctx, "wh_1"); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"msg_grant", "msg_car2"} {
			if d, err := s.Delivery(ctx, id); err != nil || d.Status != outbox.DeliveryDropped || d.LastError != "the webhook was deleted" {
				t.Errorf("%s after its webhook was deleted: %+v %v", id, d, err)
			}
		}
		if d, err := s.Delivery(ctx, "msg_b"); err != nil || d.Status != outbox.DeliveryPending {
			t.Errorf("another app's delivery: %+v %v", d, err)
		}
		if _, err := s.Delivery(ctx, "msg_none"); !errors.Is(err, outbox.ErrNotFound) {
			t.Errorf("a missing delivery: %v", err)
		}
	})

	t.Run("cursors", func(t *testing.T) {
		s := open(t)
		if _, ok, err := s.Cursor(ctx, "ledger"); ok || err != nil {
			t.Fatalf("a new cursor: %v %v", ok, err)
		}
		for _, pos := range []int64{5, 42} {
			if err := s.SetCursor(ctx, "ledger", pos); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := s.Cursor(ctx, "ledger"); got != pos || !ok || err != nil {
				t.Errorf("cursor: %d %v %v, want %d", got, ok, err, pos)
			}
		}
	})
}
