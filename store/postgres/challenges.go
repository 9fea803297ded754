package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/glovebox/glovebox/auth/challenge"
)

// Challenges is the store of outstanding sign-in challenges (challenge.Store) in PostgreSQL, shared by
// every api process of a cluster and kept across restarts. Consume is one DELETE: its row lock lets one
// of concurrent exchanges of a challenge have it, whichever processes race. Times are the caller's
// (challenge's rule), compared in SQL; rows past their deadline are ignored by every lookup and deleted
// pruneBatch at a time by Add, so the table holds little beyond what is outstanding.
type Challenges struct {
	pool *pgxpool.Pool
}

var _ challenge.Store = (*Challenges)(nil)

// NewChallenges returns the challenge store on pool (migration 0010).
func NewChallenges(pool *pgxpool.Pool) *Challenges { return &Challenges{pool: pool} }

var challengeRows = expiring{"auth_challenges", "deadline"}

// Add implements challenge.Store.
func (s *Challenges) Add(ctx context.Context, c challenge.Challenge, now time.Time) error {
	if err := prune(ctx, s.pool, now, challengeRows); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO auth_challenges (nonce, address, deadline) VALUES ($1, $2, $3)
		ON CONFLICT (nonce) DO UPDATE SET address = excluded.address, deadline = excluded.deadline`,
		c.Nonce, c.Address.Bytes(), c.Deadline); err != nil {
		return fmt.Errorf("couldn't keep a sign-in challenge: %w", err)
	}
	return nil
}

// Get implements challenge.Store.
func (s *Challenges) Get(ctx context.Context, nonce string, now time.Time) (challenge.Challenge, bool, error) {
	var address []byte
	c := challenge.Challenge{Nonce: nonce}
	err := s.pool.QueryRow(ctx, `SELECT address, deadline FROM auth_challenges WHERE nonce = $1 AND deadline > $2`, nonce, now).
		Scan(&address, &c.Deadline)
	if errors.Is(err, pgx.ErrNoRows) {
		return challenge.Challenge{}, false, nil
	}
	if err != nil {
		return challenge.Challenge{}, false, fmt.Errorf("couldn't look a sign-in challenge up: %w", err)
	}
	c.Address = common.BytesToAddress(address)
	return c, true, nil
}

// Consume implements challenge.Store.
func (s *Challenges) Consume(ctx context.Context, nonce string, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM auth_challenges WHERE nonce = $1 AND deadline > $2`, nonce, now)
	if err != nil {
		return false, fmt.Errorf("couldn't consume a sign-in challenge: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
