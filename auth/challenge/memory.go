package challenge

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// DefaultMaxMemory bounds the outstanding challenges a Memory holds; beyond it the oldest is forgotten.
const DefaultMaxMemory = 100_000

// Memory is a Store in one process's memory: the store of a single node. Its mutex guards every field.
// Challenges are kept in the order they were added, which is also their deadlines' order when they all
// live as long (auth issues every challenge with the same lifetime), so the oldest is always at the front,
// for both pruning and eviction.
type Memory struct {
	mu    sync.Mutex
	max   int
	order *list.List               // of *Challenge, oldest first
	byKey map[string]*list.Element // nonce → element of order
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory holding at most max challenges (max ≤ 0: DefaultMaxMemory).
func NewMemory(max int) *Memory {
	if max <= 0 {
		max = DefaultMaxMemory
	}
	return &Memory{max: max, order: list.New(), byKey: make(map[string]*list.Element)}
}

// Add implements Store. It first forgets the challenges expired by now and, if still full, the oldest.
func (m *Memory) Add(_ context.Context, c Challenge, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for e := m.order.Front(); e != nil && !now.Before(e.Value.(*Challenge).Deadline); e = m.order.Front() {
		m.remove(e)
	}
	if e, ok := m.byKey[c.Nonce]; ok {
		m.remove(e)
	}
	for m.order.Len() >= m.max {
		m.remove(m.order.Front())
	}
	m.byKey[c.Nonce] = m.order.PushBack(&c)
	return nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, nonce string, now time.Time) (Challenge, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byKey[nonce]
	if !ok || !now.Before(e.Value.(*Challenge).Deadline) {
		return Challenge{}, false, nil
	}
	return *e.Value.(*Challenge), true, nil
}

// Consume implements Store.
func (m *Memory) Consume(_ context.Context, nonce string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byKey[nonce]
	if !ok {
		return false, nil
	}
	m.remove(e)
	return now.Before(e.Value.(*Challenge).Deadline), nil
}

// Len returns how many challenges the store holds, expired ones not yet forgotten included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

func (m *Memory) remove(e *list.Element) {
	delete(m.byKey, e.Value.(*Challenge).Nonce)
	m.order.Remove(e)
}
