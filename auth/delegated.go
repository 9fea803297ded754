package auth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/glovebox/glovebox/internal/expiry"
)

// Delegation is what an access token issued through a consent flow (package connect) says beyond who
// the caller is: the app is the token's subject, because the app is who calls the API and what
// access.Check decides for; the owner who consented and the scope they consented to ride along. A token
// from the SIWE grant has the zero Delegation.
type Delegation struct {
	ClientID string         // "client_id" (RFC 9068 §2.2): the app's client_id as it sent it
	Owner    common.Address // "owner": the account that consented
	Scope    string         // "scope": space-separated, as granted
}

// delegatedClaims are the extra JWT claims of a delegated access token.
type delegatedClaims struct {
	ClientID string `json:"client_id,omitempty"`
	Owner    string `json:"owner,omitempty"`
	Scope    string `json:"scope,omitempty"`
}

// IssueDelegated signs an access token whose subject is app, carrying d. It returns the token, its jti
// and its expiry, which Revoke takes.
func (i *Issuer) IssueDelegated(app common.Address, d Delegation) (tok Token, jti string, exp time.Time, err error) {
	now := i.cfg.Now().Truncate(time.Second)
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return Token{}, "", time.Time{}, fmt.Errorf("auth: couldn't draw a token id: %w", err)
	}
	jti = base64.RawURLEncoding.EncodeToString(rnd[:])
	exp = now.Add(i.cfg.TokenTTL)
	s, err := i.SignJWT(jwt.Claims{
		Issuer:    i.cfg.Issuer,
		Subject:   app.Hex(),
		Audience:  jwt.Audience{Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(exp),
		ID:        jti,
	}, delegatedClaims{ClientID: d.ClientID, Owner: d.Owner.Hex(), Scope: d.Scope})
	if err != nil {
		return Token{}, "", time.Time{}, err
	}
	return Token{AccessToken: s, TokenType: "Bearer", ExpiresIn: int(i.cfg.TokenTTL / time.Second)}, jti, exp, nil
}

// SignJWT signs a JWT whose claims are the JSON members of each value in claims merged (later ones
// win), ES256 with the node's key and kid, as the node's ID tokens are. It checks nothing.
func (i *Issuer) SignJWT(claims ...any) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: i.key, KeyID: i.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("auth: couldn't make a signer: %w", err)
	}
	b := jwt.Signed(signer)
	for _, c := range claims {
		b = b.Claims(c)
	}
	s, err := b.Serialize()
	if err != nil {
		return "", fmt.Errorf("auth: couldn't sign a token: %w", err)
	}
	return s, nil
}

// URL returns the issuer URL (Config.Issuer).
func (i *Issuer) URL() string { return i.cfg.Issuer }

// Now returns the Issuer's clock.
func (i *Issuer) Now() time.Time { return i.cfg.Now() }

// TokenTTL returns the lifetime of access tokens.
func (i *Issuer) TokenTTL() time.Duration { return i.cfg.TokenTTL }

// Revoke makes Verify refuse the token with id jti from now on. exp is the token's expiry, after which
// the id is forgotten (Verify refuses the token anyway). Revocations live in this process's memory (a
// cluster's processes each read the shared ones into theirs): a restarted node forgets them, and its
// tokens live at most TokenTTL.
func (i *Issuer) Revoke(jti string, exp time.Time) { i.revoked.add(jti, exp, i.cfg.Now()) }

// revokedSet holds the ids of revoked, unexpired tokens. Its mutex guards the queue, which is also the
// set: a revocation forgets the expired ones in O(log n) each, and a lookup costs O(1).
type revokedSet struct {
	mu  sync.Mutex
	ids expiry.Queue[string] // jti → the token's expiry
}

func (s *revokedSet) add(jti string, exp, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids.Expire(now, nil)
	if old, ok := s.ids.When(jti); ok && old.After(exp) {
		exp = old
	}
	s.ids.Set(jti, exp)
}

func (s *revokedSet) has(jti string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids.When(jti)
	return ok
}

func (s *revokedSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids.Len()
}
