package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/webhook/outbox"
)

// ErasingWebhooks is a webhook store that erases the deliveries which carried a vehicle's telemetry.
type ErasingWebhooks interface {
	outbox.Store
	telemetry.Eraser
}

// TestWebhookEraser checks a webhook store's Erase (telemetry.Eraser) range by range: it deletes the
// deliveries of the vehicle whose measurement time falls in [from, to), pending or finished, with their
// attempts; it keeps deliveries that carry no telemetry, other vehicles' and those outside the range;
// erasing again deletes nothing; an erased delivery is no longer found, and an attempt of it finishing
// after its erasure records nothing. open returns an empty store; attempts counts the attempts s
// records of all its deliveries (the outbox's interface does not list them).
func TestWebhookEraser(t *testing.T, open func(t *testing.T) ErasingWebhooks, attempts func(t *testing.T, s ErasingWebhooks) int) {
	delivery := func(id string, vehicle uint64, measured int64) *outbox.Delivery {
		d := &outbox.Delivery{ID: id, Webhook: "wh_1", App: common.HexToAddress("0x1"), Vehicle: vehicle, Type: "glovebox.signal.triggered",
			Body: []byte(`{"data":{"signal":{"value":130}}}`), Status: outbox.DeliveryPending, Created: time.UnixMilli(1), NextAttempt: time.UnixMilli(1)}
		if measured != 0 {
			d.Measured = time.UnixMilli(measured)
		}
		return d
	}
	for _, c := range []struct {
		name     string
		vehicle  uint64
		from, to int64
		erased   int64
		left     []string
		attempts int
	}{
		{"a retention window deletes everything of the car measured before its start", 1, 0, 5000, 1, []string{"d2", "d3", "d4", "d5"}, 1},
		{"an erasure deletes its range, its end excluded", 1, 1000, 9000, 2, []string{"d3", "d4", "d5"}, 1},
		{"a delivery that carries no telemetry stays", 1, 0, 1 << 62, 3, []string{"d3", "d4"}, 1},
		{"another car's deliveries stay", 2, 0, 1 << 62, 1, []string{"d1", "d2", "d3", "d5"}, 1},
		{"an empty range deletes nothing", 1, 1001, 5000, 0, []string{"d1", "d2", "d3", "d4", "d5"}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			all := []string{"d1", "d2", "d3", "d4", "d5"}
			ds := []*outbox.Delivery{delivery("d1", 1, 1000), delivery("d2", 1, 5000), delivery("d3", 1, 0), delivery("d4", 2, 1000), delivery("d5", 1, 9000)}
			if err := s.Enqueue(ctx, ds); err != nil {
				t.Fatal(err)
			}
			// d1 and d4 were attempted once.
			for _, d := range []*outbox.Delivery{ds[0], ds[3]} {
				d.Status, d.Attempts, d.Done = outbox.DeliveryDelivered, 1, time.UnixMilli(2)
				if err := s.Finish(ctx, d, outbox.Attempt{Time: time.UnixMilli(2), Code: 200}); err != nil {
					t.Fatal(err)
				}
			}
			left := func() []string {
				t.Helper()
				var out []string
				for _, id := range all {
					_, err := s.Delivery(ctx, id)
					switch {
					case err == nil:
						out = append(out, id)
					case !errors.Is(err, outbox.ErrNotFound):
						t.Fatal(err)
					}
				}
				return out
			}
			n, err := s.Erase(ctx, c.vehicle, c.from, c.to)
			if err != nil || n != c.erased {
				t.Fatalf("Erase: %d %v, want %d", n, err, c.erased)
			}
			if got, a := left(), attempts(t, s); !slices.Equal(got, c.left) || a != c.attempts {
				t.Fatalf("left %v with %d attempts, want %v with %d", got, a, c.left, c.attempts)
			}
			listed, err := s.Deliveries(ctx, "wh_1", "", 100)
			if err != nil || len(listed) != len(c.left) {
				t.Fatalf("Deliveries lists %d after the erasure (%v), want %d", len(listed), err, len(c.left))
			}
			// Again: nothing more.
			if n, err := s.Erase(ctx, c.vehicle, c.from, c.to); err != nil || n != 0 {
				t.Fatalf("Erase again: %d %v", n, err)
			}
			// An attempt finishing after its delivery's erasure records nothing.
			if !slices.Contains(c.left, "d5") {
				ds[4].Status, ds[4].Attempts, ds[4].Done = outbox.DeliveryDelivered, 1, time.UnixMilli(3)
				if err := s.Finish(ctx, ds[4], outbox.Attempt{Time: time.UnixMilli(3), Code: 200}); err != nil {
					t.Fatal(err)
				}
				if a := attempts(t, s); a != c.attempts {
					t.Fatalf("an attempt of an erased delivery was recorded: %d attempts", a)
				}
				if got := left(); !slices.Equal(got, c.left) {
					t.Fatalf("finishing an erased delivery brought it back: %v", got)
				}
			}
			// An erased delivery is not claimed; the pending ones left are.
			claimed, err := s.Claim(ctx, time.UnixMilli(10), 100, 100, nil, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, d := range claimed {
				ids = append(ids, d.ID)
			}
			slices.Sort(ids)
			var want []string
			for _, id := range c.left {
				if id != "d1" && id != "d4" {
					want = append(want, id)
				}
			}
			if !slices.Equal(ids, want) {
				t.Fatalf("claimed %v after the erasure, want %v", ids, want)
			}
		})
	}
}
