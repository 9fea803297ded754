// Package live hands the records a node accepts to the subscribers of their vehicles, as they are
// acknowledged: the source of GraphQL subscriptions (docs/graphql.md#subscriptions).
//
// The ingest writer calls Publish after each durable write; Publish never blocks on a subscriber. A
// subscriber that falls behind has its updates merged: the newest value of each signal is kept (a
// signalsLatest subscription wants no more), and events queue up to MaxPendingEvents, past which the
// subscription is marked Overflowed and its owner ends it.
//
// It imports only telemetry: the ingest path calls it, GraphQL subscriptions read it.
package live

import (
	"context"
	"sync"
	"time"

	"github.com/glovebox/glovebox/telemetry"
)

// MaxPendingEvents bounds the events waiting for one subscriber.
const MaxPendingEvents = 1000

// Update is what reached a vehicle since the subscriber last took its updates: per signal the newest value
// (in the order the signals first arrived), and every event in arrival order, the events devices sent and
// those the node derives from the speed signal (telemetry.SpeedDeriver).
type Update struct {
	Values []telemetry.Value
	Events []telemetry.Event
}

// Hub fans accepted records out to subscriptions. The zero value is not usable: call NewHub.
type Hub struct {
	mu     sync.RWMutex // guards subs
	subs   map[uint64]map[*Subscription]struct{}
	derive telemetry.SpeedDeriver // derived events of the vehicles that have subscribers

	chMu    sync.Mutex    // guards changed
	changed chan struct{} // closed at the next ledger change; nil until someone waits
}

// NewHub returns a hub without subscribers.
func NewHub() *Hub {
	return &Hub{subs: map[uint64]map[*Subscription]struct{}{}}
}

// Subscription receives the updates of one vehicle. Ready is signalled (without blocking, capacity one)
// whenever updates wait; Take collects them.
type Subscription struct {
	hub     *Hub
	vehicle uint64

	ready chan struct{}

	mu       sync.Mutex // guards the fields below
	values   []telemetry.Value
	at       map[string]int // signal name → index in values
	events   []telemetry.Event
	overflow bool
	closed   bool
}

// Subscribe returns a subscription to vehicle's records; Close ends it.
func (h *Hub) Subscribe(vehicle uint64) *Subscription {
	s := &Subscription{hub: h, vehicle: vehicle, ready: make(chan struct{}, 1), at: map[string]int{}}
	h.mu.Lock()
	m := h.subs[vehicle]
	if m == nil {
		m = map[*Subscription]struct{}{}
		h.subs[vehicle] = m
	}
	m[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Subscribers returns how many subscriptions are open.
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, m := range h.subs {
		n += len(m)
	}
	return n
}

// Publish hands accepted records to the subscriptions of their vehicles. Records of vehicles nobody
// subscribes to cost a map lookup. It never blocks on a subscriber.
func (h *Hub) Publish(recs []*telemetry.Record) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.subs) == 0 {
		return
	}
	for _, r := range recs {
		m := h.subs[r.VehicleID]
		if len(m) == 0 {
			continue
		}
		evs := r.Events
		if derived := h.derive.Add(r.VehicleID, telemetry.SpeedSamples(r.Values)); len(derived) > 0 {
			evs = append(append([]telemetry.Event(nil), evs...), derived...)
		}
		for s := range m {
			s.add(r.Values, evs)
		}
	}
}

func (s *Subscription) add(values []telemetry.Value, events []telemetry.Event) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	for _, v := range values {
		i, ok := s.at[v.Signal.Name]
		switch {
		case !ok:
			s.at[v.Signal.Name] = len(s.values)
			s.values = append(s.values, v)
		case v.Time >= s.values[i].Time:
			s.values[i] = v
		}
	}
	if len(s.events)+len(events) > MaxPendingEvents {
		s.overflow = true
	} else {
		s.events = append(s.events, events...)
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Vehicle returns the subscription's vehicle.
func (s *Subscription) Vehicle() uint64 { return s.vehicle }

// Ready is signalled when updates wait to be taken.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take returns the updates that arrived since the last Take, and whether events were lost because more
// than MaxPendingEvents waited (the subscription should then end).
func (s *Subscription) Take() (u Update, overflowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u = Update{Values: s.values, Events: s.events}
	s.values, s.events = nil, nil
	clear(s.at)
	return u, s.overflow
}

// Close ends the subscription; it gets no more updates.
func (s *Subscription) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	h := s.hub
	h.mu.Lock()
	if m := h.subs[s.vehicle]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.subs, s.vehicle)
		}
	}
	h.mu.Unlock()
}

// Changes returns a channel that is closed at the next change of the ledger WatchLedger sees: a
// subscription then checks its grant again (a revoke, a renounce, a transfer).
func (h *Hub) Changes() <-chan struct{} {
	h.chMu.Lock()
	defer h.chMu.Unlock()
	if h.changed == nil {
		h.changed = make(chan struct{})
	}
	return h.changed
}

// LedgerChanged closes the channel Changes returned, for every waiter at once.
func (h *Hub) LedgerChanged() {
	h.chMu.Lock()
	if h.changed != nil {
		close(h.changed)
		h.changed = nil
	}
	h.chMu.Unlock()
}

// DefaultWatchInterval is how often WatchLedger looks at the log's size.
const DefaultWatchInterval = 50 * time.Millisecond

// WatchLedger calls LedgerChanged whenever size (the committed size of the ledger's log) grows, looking
// every interval until ctx is done.
func (h *Hub) WatchLedger(ctx context.Context, size func() int64, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := size()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n := size(); n != last {
			last = n
			h.LedgerChanged()
		}
	}
}
