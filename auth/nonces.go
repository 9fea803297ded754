package auth

import (
	"container/list"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// DefaultMaxNonces bounds the outstanding challenges kept in memory; beyond it the oldest is forgotten.
const DefaultMaxNonces = 100_000

// nonceStore holds the outstanding challenge nonces. Its mutex guards every field. Entries are kept in
// issue order, which is also expiry order since every challenge lives ChallengeTTL, so the oldest is
// always at the front, for both pruning and eviction.
type nonceStore struct {
	mu    sync.Mutex
	max   int
	order *list.List               // of *nonce, oldest first
	byKey map[string]*list.Element // nonce → element of order
}

type nonce struct {
	value    string
	address  common.Address // the account the challenge was issued to
	deadline time.Time      // the challenge is void from this instant
}

func newNonceStore(max int) *nonceStore {
	return &nonceStore{max: max, order: list.New(), byKey: make(map[string]*list.Element)}
}

// add records a new outstanding nonce, first dropping expired ones and, if still full, the oldest.
func (s *nonceStore) add(n nonce, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.order.Front(); e != nil && !now.Before(e.Value.(*nonce).deadline); e = s.order.Front() {
		s.remove(e)
	}
	for s.order.Len() >= s.max {
		s.remove(s.order.Front())
	}
	s.byKey[n.value] = s.order.PushBack(&n)
}

// get returns the outstanding nonce named value.
func (s *nonceStore) get(value string) (nonce, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byKey[value]
	if !ok {
		return nonce{}, false
	}
	return *e.Value.(*nonce), true
}

// consume removes value and reports whether it was still outstanding: of two concurrent exchanges of the
// same nonce, exactly one gets true.
func (s *nonceStore) consume(value string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byKey[value]
	if ok {
		s.remove(e)
	}
	return ok
}

func (s *nonceStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

func (s *nonceStore) remove(e *list.Element) {
	delete(s.byKey, e.Value.(*nonce).value)
	s.order.Remove(e)
}
