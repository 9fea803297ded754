package webhook

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
)

// refusingStore is an outbox whose Enqueue fails until it is told otherwise, as a full disk does; the
// rest of the Store is not used here.
type refusingStore struct {
	Store
	refuse bool
	got    []string // ids of the deliveries enqueued
}

func (s *refusingStore) Enqueue(_ context.Context, ds []*Delivery) error {
	if s.refuse {
		return errors.New("database or disk is full")
	}
	for _, d := range ds {
		s.got = append(s.got, d.ID)
	}
	return nil
}

func TestEventsTheOutboxRefusesAreHeldAndEnqueuedOnceItTakesThem(t *testing.T) {
	store := &refusingStore{refuse: true}
	e := NewEngine(Options{Store: store, Logger: slog.New(slog.DiscardHandler)})
	var held heldDeliveries
	e.enqueueHolding(&held, []*Delivery{{ID: "a"}}, "events")
	e.enqueueHolding(&held, []*Delivery{{ID: "b"}, {ID: "c"}}, "events")
	if !held.waiting() || len(store.got) != 0 {
		t.Fatalf("while the outbox refuses: held %d, enqueued %v", len(held.ds), store.got)
	}
	store.refuse = false
	e.enqueueHolding(&held, []*Delivery{{ID: "d"}}, "events")
	if held.waiting() || !slices.Equal(store.got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("once the outbox takes them: held %d, enqueued %v; want a b c d in order", len(held.ds), store.got)
	}

	// What is held is bounded: beyond MaxHeldDeliveries the oldest go.
	store.refuse, store.got = true, nil
	many := make([]*Delivery, MaxHeldDeliveries+5)
	for i := range many {
		many[i] = &Delivery{ID: string(rune('A' + i%26))}
	}
	many[5].ID = "first kept"
	e.enqueueHolding(&held, many, "events")
	if len(held.ds) != MaxHeldDeliveries || held.ds[0].ID != "first kept" || held.dropped != 5 {
		t.Fatalf("held %d (first %q), dropped %d; want %d from the sixth, 5 dropped", len(held.ds), held.ds[0].ID, held.dropped, MaxHeldDeliveries)
	}
}
