package flowstate

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/glovebox/glovebox/internal/expiry"
)

// Memory is the Store of a single node: everything in this process's memory. A restart ends open consent
// screens, codes and refresh tokens (apps then ask the driver again, who is not asked to consent again
// while the grant is in force).
//
// Its mutex guards every field. Each map has a queue of its keys by expiry (internal/expiry), so that a
// call forgets what expired in O(log n) per forgotten entry instead of scanning every map.
type Memory struct {
	mu          sync.Mutex
	pending     map[string]*Pending
	pendingDue  expiry.Queue[string] // by deadline, which is also issue order when every screen lives as long
	codes       map[string]*Code
	codesDue    expiry.Queue[string] // by deadline + UsedCodeMemory
	refresh     map[[32]byte]*Refresh
	refreshDue  expiry.Queue[[32]byte] // by deadline, or UsedRefreshMemory after its use if sooner
	families    map[string]*family
	familiesDue expiry.Queue[string] // by the latest time one of its codes or tokens is remembered
	assertions  expiry.Queue[string] // client assertion key → expiry
}

// family is the tokens issued from one code.
type family struct {
	revoked bool
	access  expiry.Queue[string] // jti of each access token not yet expired, by expiry
	tokens  map[[32]byte]bool    // hash of each refresh token remembered → used
	used    [][32]byte           // the used ones, in order of use
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{pending: map[string]*Pending{}, codes: map[string]*Code{}, refresh: map[[32]byte]*Refresh{},
		families: map[string]*family{}}
}

// prune forgets what expired by now. Called with mu held.
func (m *Memory) prune(now time.Time) {
	m.pendingDue.Expire(now, func(id string) { delete(m.pending, id) })
	m.codesDue.Expire(now, func(c string) { delete(m.codes, c) })
	m.refreshDue.Expire(now, m.forgetRefresh)
	m.familiesDue.Expire(now, func(id string) {
		m.forgetTokens(m.families[id])
		delete(m.families, id)
	})
	m.assertions.Expire(now, nil)
}

// keepFamily makes sure the family id is remembered at least until t. Called with mu held.
func (m *Memory) keepFamily(id string, t time.Time) {
	if old, ok := m.familiesDue.When(id); !ok || old.Before(t) {
		m.familiesDue.Set(id, t)
	}
}

// AddPending implements Store, forgetting the oldest screen when MaxPending are open.
func (m *Memory) AddPending(_ context.Context, id string, p Pending, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	for len(m.pending) >= MaxPending {
		old, _, ok := m.pendingDue.Pop()
		if !ok {
			break
		}
		delete(m.pending, old)
	}
	m.pending[id] = &p
	m.pendingDue.Set(id, p.Deadline)
	return nil
}

// Pending implements Store.
func (m *Memory) Pending(_ context.Context, id string, now time.Time) (Pending, bool, error) {
	return m.pendingScreen(id, now, false)
}

// TakePending implements Store.
func (m *Memory) TakePending(_ context.Context, id string, now time.Time) (Pending, bool, error) {
	return m.pendingScreen(id, now, true)
}

// pendingScreen returns the open consent screen id, forgetting it if take.
func (m *Memory) pendingScreen(id string, now time.Time, take bool) (Pending, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	p, ok := m.pending[id]
	if !ok {
		return Pending{}, false, nil
	}
	if take {
		delete(m.pending, id)
		m.pendingDue.Delete(id)
	}
	return *p, true, nil
}

// AddCode implements Store.
func (m *Memory) AddCode(_ context.Context, code string, c Code, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	c.Used, c.Family = false, ""
	m.codes[code] = &c
	m.codesDue.Set(code, c.Deadline.Add(UsedCodeMemory))
	return nil
}

// Code implements Store.
func (m *Memory) Code(_ context.Context, code string, now time.Time) (Code, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	c, ok := m.codes[code]
	if !ok {
		return Code{}, false, nil
	}
	return *c, true, nil
}

// RedeemCode implements Store.
func (m *Memory) RedeemCode(_ context.Context, code, fam string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	c, ok := m.codes[code]
	if !ok || c.Used {
		return false, nil
	}
	if _, taken := m.families[fam]; taken {
		return false, nil
	}
	c.Used, c.Family = true, fam
	m.families[fam] = &family{tokens: map[[32]byte]bool{}}
	m.keepFamily(fam, c.Deadline.Add(UsedCodeMemory))
	return true, nil
}

// Refresh implements Store.
func (m *Memory) Refresh(_ context.Context, h [32]byte, now time.Time) (Refresh, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	r, ok := m.refresh[h]
	if !ok {
		return Refresh{}, false, nil
	}
	if f := m.families[r.Family]; f == nil || f.revoked {
		return Refresh{}, false, nil
	}
	return *r, true, nil
}

// UseRefresh implements Store.
func (m *Memory) UseRefresh(_ context.Context, h [32]byte, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	r, ok := m.refresh[h]
	if !ok || r.Used {
		return false, nil
	}
	fam := m.families[r.Family]
	if fam == nil || fam.revoked {
		return false, nil
	}
	r.Used = true
	if until := now.Add(UsedRefreshMemory); until.Before(r.Deadline) {
		m.refreshDue.Set(h, until)
	}
	fam.tokens[h] = true
	fam.used = append(fam.used, h)
	for len(fam.used) > MaxUsedRefresh {
		old := fam.used[0]
		fam.used = fam.used[1:]
		delete(fam.tokens, old)
		delete(m.refresh, old)
		m.refreshDue.Delete(old)
	}
	return true, nil
}

// Issue implements Store.
func (m *Memory) Issue(_ context.Context, id string, a Access, h [32]byte, r Refresh, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	fam := m.families[id]
	if fam == nil || fam.revoked {
		return ErrRevoked
	}
	fam.access.Expire(now, nil) // expired access tokens need no revoking
	fam.access.Set(a.ID, a.Expiry)
	r.Family, r.Used = id, false
	m.refresh[h] = &r
	m.refreshDue.Set(h, r.Deadline)
	fam.tokens[h] = false
	m.keepFamily(id, r.Deadline)
	m.keepFamily(id, a.Expiry)
	return nil
}

// RevokeFamily implements Store.
func (m *Memory) RevokeFamily(_ context.Context, id string, now time.Time) ([]Access, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	fam := m.families[id]
	if fam == nil {
		return nil, nil
	}
	fam.revoked = true
	var out []Access
	for {
		jti, exp, ok := fam.access.Pop()
		if !ok {
			break
		}
		if now.Before(exp) {
			out = append(out, Access{ID: jti, Expiry: exp})
		}
	}
	m.forgetTokens(fam)
	return out, nil
}

// RevokeAccess implements Store: no other process reads m, so there is nothing to record.
func (m *Memory) RevokeAccess(context.Context, Access, time.Time) error { return nil }

// UseAssertion implements Store.
func (m *Memory) UseAssertion(_ context.Context, key string, exp, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	if _, used := m.assertions.When(key); used {
		return false, nil
	}
	m.assertions.Set(key, exp)
	return true, nil
}

// forgetRefresh forgets the refresh token h. Called with mu held.
func (m *Memory) forgetRefresh(h [32]byte) {
	r, ok := m.refresh[h]
	if !ok {
		return
	}
	delete(m.refresh, h)
	m.refreshDue.Delete(h)
	fam := m.families[r.Family]
	if fam == nil {
		return
	}
	if used := fam.tokens[h]; used {
		if i := slices.Index(fam.used, h); i >= 0 {
			fam.used = slices.Delete(fam.used, i, i+1)
		}
	}
	delete(fam.tokens, h)
}

// forgetTokens forgets every refresh token of fam. Called with mu held.
func (m *Memory) forgetTokens(fam *family) {
	if fam == nil {
		return
	}
	for h := range fam.tokens {
		delete(m.refresh, h)
		m.refreshDue.Delete(h)
	}
	fam.tokens, fam.used = map[[32]byte]bool{}, nil
}

// Len returns how many consent screens, codes and refresh tokens m holds, for tests and benchmarks.
func (m *Memory) Len() (pending, codes, refresh int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending), len(m.codes), len(m.refresh)
}
