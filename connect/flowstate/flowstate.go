// Package flowstate is the contract of the store behind the OpenID Provider (package connect): the
// short-lived state of its flows (RFC 6749 §4.1 with OpenID Connect Core §3.1): open consent screens,
// authorization codes, refresh-token families and the client-assertion ids already used (RFC 7523 §3).
//
// Memory is the single-node implementation; store/postgres implements it for a cluster, where every api
// process shares it. storetest.TestConnect is the conformance suite both pass.
//
// A family is the tokens issued from one authorization code: the access tokens' ids and the refresh
// tokens. Presenting a used code or a used refresh token revokes its family (RFC 6749 §4.1.2, §10.4).
//
// It imports nothing of the module, so that a store implements it without importing connect.
package flowstate

import (
	"context"
	"errors"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// How long a store remembers what it holds. Times are the caller's clock (the now of each call), never
// the store's: a store compares them and never reads a clock.
const (
	// UsedCodeMemory is how long past its deadline a code is remembered, so that presenting it again
	// revokes what it issued.
	UsedCodeMemory = 10 * time.Minute
	// UsedRefreshMemory is how long a rotated refresh token is remembered, so that presenting it again
	// revokes its family; after that it is answered as unknown.
	UsedRefreshMemory = 24 * time.Hour
	// MaxUsedRefresh is how many rotated refresh tokens a family remembers at most: its newest ones.
	MaxUsedRefresh = 8
	// MaxPending bounds the consent screens Memory holds at once; beyond it the oldest is forgotten.
	MaxPending = 10_000
)

// ErrRevoked is Issue's answer for a family that was revoked (or forgotten) meanwhile: the tokens must
// not be handed out.
var ErrRevoked = errors.New("flowstate: the token family was revoked")

// Pending is an open consent screen: an authorization request waiting for the driver's decision.
type Pending struct {
	Request   []byte    // the checked authorization request, encoded by the provider; opaque here
	ExpiresAt int64     // unix seconds the grants will carry
	Deadline  time.Time // the screen is forgotten from this instant
}

// Code is what an authorization code stands for.
type Code struct {
	Request  []byte // as in Pending
	Owner    common.Address
	Vehicles []uint64
	AuthTime time.Time
	Deadline time.Time // the code cannot be exchanged from this instant; it is remembered UsedCodeMemory longer
	Used     bool
	Family   string // the family its exchange started, once Used
}

// Refresh is a refresh token's state. Stores key it by the SHA-256 of the token, never the token.
type Refresh struct {
	Family   string
	Request  []byte // as in Pending, with the scope the token carries
	Owner    common.Address
	Vehicles []uint64
	Deadline time.Time
	Used     bool // rotated: presenting it again revokes the family
}

// Access is an access token issued into a family: its id (jti) and expiry, which revoking it needs.
type Access struct {
	ID     string
	Expiry time.Time
}

// Store keeps the provider's flow state. Implementations are safe for concurrent use, and every method
// is atomic: of concurrent calls (in one process or in several sharing the store), each sees the others
// whole or not at all. A method that fails with an error changed nothing. What expired by now is
// invisible to every lookup; stores forget it in bounded steps.
type Store interface {
	// AddPending opens the consent screen id.
	AddPending(ctx context.Context, id string, p Pending, now time.Time) error
	// Pending returns the open consent screen id, leaving it open.
	Pending(ctx context.Context, id string, now time.Time) (Pending, bool, error)
	// TakePending closes the consent screen id and returns it: of concurrent calls, exactly one gets it.
	TakePending(ctx context.Context, id string, now time.Time) (Pending, bool, error)

	// AddCode records an authorization code (unused).
	AddCode(ctx context.Context, code string, c Code, now time.Time) error
	// Code returns the code, used or not, until UsedCodeMemory after its deadline.
	Code(ctx context.Context, code string, now time.Time) (Code, bool, error)
	// RedeemCode marks an unused code used and starts its family, named family (new, chosen by the caller).
	// It reports false, changing nothing, when the code is used or unknown: of concurrent redeems of one
	// code, exactly one gets true.
	RedeemCode(ctx context.Context, code, family string, now time.Time) (bool, error)

	// Refresh returns the refresh token whose SHA-256 is h, if its family was not revoked.
	Refresh(ctx context.Context, h [32]byte, now time.Time) (Refresh, bool, error)
	// UseRefresh marks the token h used. It is remembered for reuse detection until UsedRefreshMemory has
	// passed (or its deadline, if sooner), as one of its family's newest MaxUsedRefresh used tokens; older
	// used ones are forgotten. It reports false, changing nothing, when h is used, unknown or revoked: of
	// concurrent uses of one token, exactly one gets true.
	UseRefresh(ctx context.Context, h [32]byte, now time.Time) (bool, error)
	// Issue records an access token and a new refresh token (SHA-256 h) in family, or answers ErrRevoked
	// when the family was revoked meanwhile.
	Issue(ctx context.Context, family string, a Access, h [32]byte, r Refresh, now time.Time) error
	// RevokeFamily revokes family: its refresh tokens are forgotten and Issue refuses it from now on. It
	// returns the family's access tokens not yet expired, for the caller to revoke, each once. A store
	// shared by several processes also records them as RevokeAccess does, in the same step.
	RevokeFamily(ctx context.Context, family string, now time.Time) ([]Access, error)
	// RevokeAccess records that the access token a is revoked, for the other processes sharing the store
	// (Memory, which no other process reads, keeps nothing: the caller's issuer holds revocations).
	RevokeAccess(ctx context.Context, a Access, now time.Time) error

	// UseAssertion records the client assertion key (its issuer and jti) until exp. It reports false when
	// the key was recorded before and has not expired: of concurrent uses, exactly one gets true.
	UseAssertion(ctx context.Context, key string, exp, now time.Time) (bool, error)
}
