// Package challenge is the contract of the store behind sign-in challenges (package auth): the EIP-4361
// nonces a node issued and has not yet seen answered. A challenge is outstanding from the moment
// GET /v1/auth/challenge answers it until its deadline or the one successful exchange that consumes it.
//
// Memory is the single-node implementation; store/postgres implements it for a cluster, whose processes
// share it, so that a challenge fetched from one api process is redeemed at any other.
// storetest.TestChallenges is the conformance suite both pass.
//
// It imports nothing of the module, so that a store implements it without importing auth.
package challenge

import (
	"context"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Challenge is one issued challenge: its nonce, the account it was issued to and when it expires.
type Challenge struct {
	Nonce    string
	Address  common.Address
	Deadline time.Time // the challenge is void from this instant
}

// Store keeps the outstanding challenges. Implementations are safe for concurrent use and every method is
// atomic, also among processes sharing one store. Times are the caller's clock (the now of each call),
// never the store's: a store compares them and never reads a clock. A challenge whose deadline is not
// after now is invisible to Get and Consume; stores forget such challenges in bounded steps. A method that
// fails with an error changed nothing.
type Store interface {
	// Add records c as outstanding. Nonces are random (128 bits); adding a nonce already held replaces it.
	Add(ctx context.Context, c Challenge, now time.Time) error
	// Get returns the outstanding challenge of nonce; ok is false when there is none (never issued,
	// consumed, expired or forgotten).
	Get(ctx context.Context, nonce string, now time.Time) (c Challenge, ok bool, err error)
	// Consume removes the challenge of nonce and reports whether it was outstanding: of concurrent
	// Consumes of one nonce, in one process or in several sharing the store, exactly one gets true.
	Consume(ctx context.Context, nonce string, now time.Time) (bool, error)
}
