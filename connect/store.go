package connect

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
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

// family is the tokens issued from one code: the access tokens' ids and the current refresh token. A
// reused code or refresh token revokes the whole family.
type family struct {
	revoked bool
	access  map[string]time.Time // jti → expiry
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
// assertion ids. Its mutex guards every map. All of it lives in this process's memory: a restart ends
// open consent screens, codes and refresh tokens (apps then ask the driver again, who is not asked to
// consent again while the grant is in force), and behind a load balancer a flow must stay on one process.
type memory struct {
	mu         sync.Mutex
	pending    map[string]*pending
	pendingIDs []string // issue order, for eviction
	codes      map[string]*codeGrant
	refresh    map[[32]byte]*refresh
	assertions map[string]time.Time // client assertion "iss jti" → expiry
}

func newMemory() *memory {
	return &memory{pending: map[string]*pending{}, codes: map[string]*codeGrant{},
		refresh: map[[32]byte]*refresh{}, assertions: map[string]time.Time{}}
}

// prune forgets what expired by now. Called with mu held.
func (m *memory) prune(now time.Time) {
	for id, p := range m.pending {
		if !now.Before(p.deadline) {
			delete(m.pending, id)
		}
	}
	for len(m.pendingIDs) > 0 && m.pending[m.pendingIDs[0]] == nil {
		m.pendingIDs = m.pendingIDs[1:]
	}
	for c, g := range m.codes {
		if !now.Before(g.deadline.Add(usedCodeMemory)) {
			delete(m.codes, c)
		}
	}
	for h, r := range m.refresh {
		if !now.Before(r.deadline) {
			delete(m.refresh, h)
		}
	}
	for k, exp := range m.assertions {
		if !now.Before(exp) {
			delete(m.assertions, k)
		}
	}
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
