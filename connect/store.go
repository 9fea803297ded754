package connect

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/connect/flowstate"
)

// Lifetimes of what the provider keeps in its store (Config.Store).
const (
	// CodeTTL is how long an authorization code can be exchanged: once, within 60 seconds.
	CodeTTL = 60 * time.Second
	// PendingTTL is how long a driver has to decide on a consent screen.
	PendingTTL = 15 * time.Minute
	// RefreshTTL is how long a refresh token lasts unused; each use rotates it.
	RefreshTTL = 30 * 24 * time.Hour
	// UsedRefreshMemory is how long a rotated refresh token is remembered, so that presenting it again
	// revokes its family; after that it is answered as unknown.
	UsedRefreshMemory = flowstate.UsedRefreshMemory
	// MaxUsedRefresh is how many rotated refresh tokens a family remembers at most: its newest ones.
	MaxUsedRefresh = flowstate.MaxUsedRefresh
)

// storedRequest is an AuthorizeRequest as the store keeps it (flowstate's opaque Request): the scope as
// its canonical parameter, parsed again when read.
type storedRequest struct {
	ClientID      string         `json:"client_id"`
	App           common.Address `json:"app"`
	AppName       string         `json:"app_name"`
	RedirectURI   string         `json:"redirect_uri"`
	Scope         string         `json:"scope"`
	State         string         `json:"state,omitempty"`
	Nonce         string         `json:"nonce,omitempty"`
	CodeChallenge string         `json:"code_challenge"`
	Purpose       string         `json:"purpose"`
	TermsURI      string         `json:"terms_uri,omitempty"`
	Duration      int64          `json:"duration"` // seconds
}

func encodeRequest(r *AuthorizeRequest) ([]byte, error) {
	b, err := json.Marshal(storedRequest{ClientID: r.ClientID, App: r.App, AppName: r.AppName, RedirectURI: r.RedirectURI,
		Scope: r.Scope.String(), State: r.State, Nonce: r.Nonce, CodeChallenge: r.CodeChallenge, Purpose: r.Purpose,
		TermsURI: r.TermsURI, Duration: int64(r.Duration / time.Second)})
	if err != nil {
		return nil, fmt.Errorf("connect: couldn't encode a request: %w", err)
	}
	return b, nil
}

func decodeRequest(b []byte) (*AuthorizeRequest, error) {
	var s storedRequest
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("connect: couldn't decode a stored request: %w", err)
	}
	scope, err := ParseScope(s.Scope)
	if err != nil {
		return nil, fmt.Errorf("connect: a stored request's scope: %w", err)
	}
	return &AuthorizeRequest{ClientID: s.ClientID, App: s.App, AppName: s.AppName, RedirectURI: s.RedirectURI, Scope: scope,
		State: s.State, Nonce: s.Nonce, CodeChallenge: s.CodeChallenge, Purpose: s.Purpose, TermsURI: s.TermsURI,
		Duration: time.Duration(s.Duration) * time.Second}, nil
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
