package connect

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/internal/expiry"
)

// Lifetimes of what the provider keeps in memory.
const (
	// CodeTTL is how long an authorization code can be exchanged: once, within 60 seconds.
	CodeTTL = 60 * time.Second
	// PendingTTL is how long a driver has to decide on a consent screen.
	PendingTTL = 15 * time.Minute
	// RefreshTTL is how long a refresh token lasts unused; each use rotates it.
	RefreshTTL = 30 * 24 * time.Hour
	// usedCodeMemory is how long a used code is remembered, so that its reuse revokes what it issued.
	usedCodeMemory = 10 * time.Minute
	// UsedRefreshMemory is how long a rotated refresh token is remembered, so that presenting it again
	// revokes its family; after that it is answered as unknown.
	UsedRefreshMemory = 24 * time.Hour
	// MaxUsedRefresh is how many rotated refresh tokens a family remembers at most: its newest ones.
	MaxUsedRefresh = 8
	// maxPending bounds the consent screens open at once; beyond it the oldest is forgotten.
	maxPending = 10_000
)

// pending is an authorization request waiting for the driver's decision on the consent screen.
type pending struct {
	req       *AuthorizeRequest
	expiresAt int64 // unix seconds the grants will carry: the request time + the requested duration
	deadline  time.Time
}

// codeGrant is what an authorization code stands for.
type codeGrant struct {
	req      *AuthorizeRequest
	owner    common.Address
	vehicles []uint64
	authTime time.Time
	deadline time.Time
	used     bool
	family   *family // the tokens issued from the code, once exchanged
}

// family is the tokens issued from one code: the access tokens' ids and the refresh tokens remembered. A
// reused code or refresh token revokes the whole family.
type family struct {
	revoked bool
	access  expiry.Queue[string] // jti of each access token not yet expired, by expiry
	tokens  map[[32]byte]bool    // hash of each refresh token remembered → used
	used    [][32]byte           // the used ones, in order of use
}

// refresh is a refresh token's state. Only its SHA-256 is kept.
type refresh struct {
	fam      *family
	req      *AuthorizeRequest // client, redirect URI, scope
	owner    common.Address
	vehicles []uint64
	deadline time.Time
	used     bool // rotated: presenting it again revokes the family
}

// memory holds the provider's short-lived state: open consent screens, codes, refresh tokens, used client
// assertion ids. Its mutex guards every field. All of it lives in this process's memory: a restart ends
// open consent screens, codes and refresh tokens (apps then ask the driver again, who is not asked to
// consent again while the grant is in force), and behind a load balancer a flow must stay on one process.
//
// Each map has a queue of its keys by expiry (internal/expiry), so that a request forgets what expired
// in O(log n) per forgotten entry instead of scanning every map.
type memory struct {
	mu         sync.Mutex
	pending    map[string]*pending
	pendingDue expiry.Queue[string] // by deadline, which is also issue order (every screen lives PendingTTL)
	codes      map[string]*codeGrant
	codesDue   expiry.Queue[string] // by deadline + usedCodeMemory
	refresh    map[[32]byte]*refresh
	refreshDue expiry.Queue[[32]byte] // by deadline, or UsedRefreshMemory after its use if sooner
	assertions expiry.Queue[string]   // client assertion "iss jti" → expiry
}

func newMemory() *memory {
	return &memory{pending: map[string]*pending{}, codes: map[string]*codeGrant{}, refresh: map[[32]byte]*refresh{}}
}

// prune forgets what expired by now. Called with mu held.
func (m *memory) prune(now time.Time) {
	m.pendingDue.Expire(now, func(id string) { delete(m.pending, id) })
	m.codesDue.Expire(now, func(c string) { delete(m.codes, c) })
	m.refreshDue.Expire(now, m.forgetRefresh)
	m.assertions.Expire(now, nil)
}

// addPending opens a consent screen, forgetting the oldest when maxPending are open. Called with mu held.
func (m *memory) addPending(id string, pd *pending) {
	for len(m.pending) >= maxPending {
		old, _, ok := m.pendingDue.Pop()
		if !ok {
			break
		}
		delete(m.pending, old)
	}
	m.pending[id] = pd
	m.pendingDue.Set(id, pd.deadline)
}

// takePending removes the open consent screen id. Called with mu held.
func (m *memory) takePending(id string) (*pending, bool) {
	pd, ok := m.pending[id]
	delete(m.pending, id)
	m.pendingDue.Delete(id)
	return pd, ok
}

// addCode records an authorization code. Called with mu held.
func (m *memory) addCode(code string, g *codeGrant) {
	m.codes[code] = g
	m.codesDue.Set(code, g.deadline.Add(usedCodeMemory))
}

// addRefresh records a new refresh token of rt.fam. Called with mu held.
func (m *memory) addRefresh(h [32]byte, rt *refresh) {
	m.refresh[h] = rt
	m.refreshDue.Set(h, rt.deadline)
	if rt.fam.tokens == nil {
		rt.fam.tokens = map[[32]byte]bool{}
	}
	rt.fam.tokens[h] = false
}

// useRefresh marks the refresh token h used at now: it is remembered for reuse detection until
// UsedRefreshMemory has passed (or it would have expired), as one of the family's newest MaxUsedRefresh
// used tokens. Called with mu held.
func (m *memory) useRefresh(h [32]byte, rt *refresh, now time.Time) {
	rt.used = true
	if until := now.Add(UsedRefreshMemory); until.Before(rt.deadline) {
		m.refreshDue.Set(h, until)
	}
	fam := rt.fam
	fam.tokens[h] = true
	fam.used = append(fam.used, h)
	for len(fam.used) > MaxUsedRefresh {
		old := fam.used[0]
		fam.used = fam.used[1:]
		delete(fam.tokens, old)
		delete(m.refresh, old)
		m.refreshDue.Delete(old)
	}
}

// forgetRefresh forgets the refresh token h. Called with mu held.
func (m *memory) forgetRefresh(h [32]byte) {
	rt, ok := m.refresh[h]
	if !ok {
		return
	}
	delete(m.refresh, h)
	m.refreshDue.Delete(h)
	fam := rt.fam
	if used := fam.tokens[h]; used {
		if i := slices.Index(fam.used, h); i >= 0 {
			fam.used = slices.Delete(fam.used, i, i+1)
		}
	}
	delete(fam.tokens, h)
}

// forgetFamily forgets every refresh token of fam. Called with mu held.
func (m *memory) forgetFamily(fam *family) {
	for h := range fam.tokens {
		delete(m.refresh, h)
		m.refreshDue.Delete(h)
	}
	fam.tokens, fam.used = nil, nil
}

// secret returns 256 random bits in base64url.
func secret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("connect: couldn't draw a secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashOf(s string) [32]byte { return sha256.Sum256([]byte(s)) }
