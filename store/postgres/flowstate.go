package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/glovebox/glovebox/connect/flowstate"
)

// pruneBatch is how many expired rows of one table a write deletes at most: more than it adds, so that
// the tables hold little beyond what is live, and never a long delete on a request's path.
const pruneBatch = 100

// FlowState is the OpenID Provider's flow state (flowstate.Store) in PostgreSQL, shared by every api
// process of a cluster and kept across restarts. Each method is one statement or one transaction; the
// row locks of UPDATE and DELETE make a code redeemable once, a refresh token usable once and a consent
// screen closable once, whichever processes race. Times are the caller's (flowstate's rule), compared in
// SQL; rows past their forget_at are ignored by every lookup and deleted pruneBatch at a time by writes.
type FlowState struct {
	pool *pgxpool.Pool
}

var _ flowstate.Store = (*FlowState)(nil)

// NewFlowState returns the flow state store on pool (migration 0009).
func NewFlowState(pool *pgxpool.Pool) *FlowState { return &FlowState{pool: pool} }

func secretKey(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// expiring names a table and its column holding the instant a row is forgotten.
type expiring struct{ table, column string }

var (
	pendingRows   = expiring{"connect_pending", "forget_at"}
	codeRows      = expiring{"connect_codes", "forget_at"}
	familyRows    = expiring{"connect_families", "forget_at"}
	refreshRows   = expiring{"connect_refresh", "forget_at"}
	accessRows    = expiring{"connect_access", "expiry"}
	revokedRows   = expiring{"connect_revoked", "expiry"}
	assertionRows = expiring{"connect_assertions", "expiry"}
)

// prune deletes up to pruneBatch rows of each table that are forgotten by now, in one statement (one
// round trip, however many tables).
func prune(ctx context.Context, pool *pgxpool.Pool, now time.Time, tables ...expiring) error {
	var sql strings.Builder
	for i, t := range tables {
		if i == 0 {
			sql.WriteString("WITH ")
		} else {
			sql.WriteString(", ")
		}
		fmt.Fprintf(&sql, "d%d AS (DELETE FROM %s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s WHERE %s <= $1 LIMIT %d)))",
			i, t.table, t.table, t.column, pruneBatch)
	}
	sql.WriteString(" SELECT 1")
	if _, err := pool.Exec(ctx, sql.String(), now); err != nil {
		return fmt.Errorf("couldn't forget expired rows: %w", err)
	}
	return nil
}

func vehiclesIn(v []uint64) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

func vehiclesOut(v []int64) []uint64 {
	out := make([]uint64, len(v))
	for i, x := range v {
		out[i] = uint64(x)
	}
	return out
}

// AddPending implements flowstate.Store.
func (s *FlowState) AddPending(ctx context.Context, id string, p flowstate.Pending, now time.Time) error {
	if err := prune(ctx, s.pool, now, pendingRows); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO connect_pending (id, request, expires_at, forget_at) VALUES ($1, $2, $3, $4)`,
		secretKey(id), p.Request, p.ExpiresAt, p.Deadline); err != nil {
		return fmt.Errorf("couldn't open a consent screen: %w", err)
	}
	return nil
}

// Pending implements flowstate.Store.
func (s *FlowState) Pending(ctx context.Context, id string, now time.Time) (flowstate.Pending, bool, error) {
	return s.pending(ctx, `SELECT request, expires_at, forget_at FROM connect_pending WHERE id = $1 AND forget_at > $2`, id, now)
}

// TakePending implements flowstate.Store.
func (s *FlowState) TakePending(ctx context.Context, id string, now time.Time) (flowstate.Pending, bool, error) {
	return s.pending(ctx, `DELETE FROM connect_pending WHERE id = $1 AND forget_at > $2 RETURNING request, expires_at, forget_at`, id, now)
}

func (s *FlowState) pending(ctx context.Context, sql, id string, now time.Time) (flowstate.Pending, bool, error) {
	var p flowstate.Pending
	err := s.pool.QueryRow(ctx, sql, secretKey(id), now).Scan(&p.Request, &p.ExpiresAt, &p.Deadline)
	if errors.Is(err, pgx.ErrNoRows) {
		return flowstate.Pending{}, false, nil
	}
	if err != nil {
		return flowstate.Pending{}, false, fmt.Errorf("couldn't read a consent screen: %w", err)
	}
	return p, true, nil
}

// AddCode implements flowstate.Store.
func (s *FlowState) AddCode(ctx context.Context, code string, c flowstate.Code, now time.Time) error {
	if err := prune(ctx, s.pool, now, codeRows, familyRows); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO connect_codes (code, request, owner, vehicles, auth_time, deadline, forget_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, secretKey(code), c.Request, c.Owner.Bytes(), vehiclesIn(c.Vehicles), c.AuthTime,
		c.Deadline, c.Deadline.Add(flowstate.UsedCodeMemory)); err != nil {
		return fmt.Errorf("couldn't record a code: %w", err)
	}
	return nil
}

// Code implements flowstate.Store.
func (s *FlowState) Code(ctx context.Context, code string, now time.Time) (flowstate.Code, bool, error) {
	var c flowstate.Code
	var owner []byte
	var vehicles []int64
	var fam *string
	err := s.pool.QueryRow(ctx, `SELECT request, owner, vehicles, auth_time, deadline, used, family FROM connect_codes
		WHERE code = $1 AND forget_at > $2`, secretKey(code), now).Scan(&c.Request, &owner, &vehicles, &c.AuthTime, &c.Deadline, &c.Used, &fam)
	if errors.Is(err, pgx.ErrNoRows) {
		return flowstate.Code{}, false, nil
	}
	if err != nil {
		return flowstate.Code{}, false, fmt.Errorf("couldn't read a code: %w", err)
	}
	c.Owner, c.Vehicles = common.BytesToAddress(owner), vehiclesOut(vehicles)
	if fam != nil {
		c.Family = *fam
	}
	return c, true, nil
}

// RedeemCode implements flowstate.Store. The UPDATE's row lock makes a concurrent redeem wait, then find
// the code used.
func (s *FlowState) RedeemCode(ctx context.Context, code, family string, now time.Time) (bool, error) {
	won := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var forget time.Time
		err := tx.QueryRow(ctx, `UPDATE connect_codes SET used = true, family = $2 WHERE code = $1 AND NOT used AND forget_at > $3
			RETURNING forget_at`, secretKey(code), family, now).Scan(&forget)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO connect_families (id, forget_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, family, forget)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return errFamilyTaken
		}
		won = true
		return nil
	})
	if errors.Is(err, errFamilyTaken) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("couldn't redeem a code: %w", err)
	}
	return won, nil
}

var errFamilyTaken = errors.New("the family name is taken")

// Refresh implements flowstate.Store.
func (s *FlowState) Refresh(ctx context.Context, h [32]byte, now time.Time) (flowstate.Refresh, bool, error) {
	var r flowstate.Refresh
	var owner []byte
	var vehicles []int64
	var seq *int64
	err := s.pool.QueryRow(ctx, `SELECT r.family, r.request, r.owner, r.vehicles, r.deadline, r.used_seq FROM connect_refresh r
		JOIN connect_families f ON f.id = r.family
		WHERE r.hash = $1 AND r.forget_at > $2 AND NOT f.revoked AND f.forget_at > $2`, h[:], now).
		Scan(&r.Family, &r.Request, &owner, &vehicles, &r.Deadline, &seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return flowstate.Refresh{}, false, nil
	}
	if err != nil {
		return flowstate.Refresh{}, false, fmt.Errorf("couldn't read a refresh token: %w", err)
	}
	r.Owner, r.Vehicles, r.Used = common.BytesToAddress(owner), vehiclesOut(vehicles), seq != nil
	return r, true, nil
}

// UseRefresh implements flowstate.Store: the token is marked used (the UPDATE's row lock makes a
// concurrent use wait, then find it used), and the family's used tokens beyond the newest
// flowstate.MaxUsedRefresh are deleted, in one transaction.
func (s *FlowState) UseRefresh(ctx context.Context, h [32]byte, now time.Time) (bool, error) {
	won := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var family string
		err := tx.QueryRow(ctx, `UPDATE connect_refresh r SET used_seq = nextval('connect_used_seq'), forget_at = LEAST(r.forget_at, $3)
			WHERE r.hash = $1 AND r.used_seq IS NULL AND r.forget_at > $2
			AND EXISTS (SELECT 1 FROM connect_families f WHERE f.id = r.family AND NOT f.revoked AND f.forget_at > $2)
			RETURNING r.family`, h[:], now, now.Add(flowstate.UsedRefreshMemory)).Scan(&family)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM connect_refresh WHERE hash IN (SELECT hash FROM connect_refresh
			WHERE family = $1 AND used_seq IS NOT NULL ORDER BY used_seq DESC OFFSET $2)`, family, flowstate.MaxUsedRefresh); err != nil {
			return err
		}
		won = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("couldn't use a refresh token: %w", err)
	}
	return won, nil
}

// Issue implements flowstate.Store. The family's row is locked first, so that a concurrent RevokeFamily
// either sees these tokens (and deletes them) or makes this call answer ErrRevoked.
func (s *FlowState) Issue(ctx context.Context, family string, a flowstate.Access, h [32]byte, r flowstate.Refresh, now time.Time) error {
	if err := prune(ctx, s.pool, now, refreshRows, accessRows, revokedRows); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var revoked bool
		err := tx.QueryRow(ctx, `SELECT revoked FROM connect_families WHERE id = $1 AND forget_at > $2 FOR UPDATE`, family, now).Scan(&revoked)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && revoked {
			return flowstate.ErrRevoked
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO connect_access (family, jti, expiry) VALUES ($1, $2, $3)`, family, a.ID, a.Expiry); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO connect_refresh (hash, family, request, owner, vehicles, deadline, forget_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`, h[:], family, r.Request, r.Owner.Bytes(), vehiclesIn(r.Vehicles), r.Deadline); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE connect_families SET forget_at = GREATEST(forget_at, $2, $3) WHERE id = $1`, family, r.Deadline, a.Expiry)
		return err
	})
	if errors.Is(err, flowstate.ErrRevoked) {
		return err
	}
	if err != nil {
		return fmt.Errorf("couldn't record issued tokens: %w", err)
	}
	return nil
}

// RevokeFamily implements flowstate.Store.
func (s *FlowState) RevokeFamily(ctx context.Context, family string, now time.Time) ([]flowstate.Access, error) {
	var out []flowstate.Access
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = nil
		tag, err := tx.Exec(ctx, `UPDATE connect_families SET revoked = true WHERE id = $1`, family)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM connect_refresh WHERE family = $1`, family); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM connect_access WHERE family = $1 RETURNING jti, expiry`, family)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a flowstate.Access
			if err := rows.Scan(&a.ID, &a.Expiry); err != nil {
				return err
			}
			if now.Before(a.Expiry) {
				out = append(out, a)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, a := range out {
			if _, err := tx.Exec(ctx, `INSERT INTO connect_revoked (jti, expiry) VALUES ($1, $2)`, a.ID, a.Expiry); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't revoke a token family: %w", err)
	}
	return out, nil
}

// RevokeAccess implements flowstate.Store.
func (s *FlowState) RevokeAccess(ctx context.Context, a flowstate.Access, now time.Time) error {
	if err := prune(ctx, s.pool, now, revokedRows); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO connect_revoked (jti, expiry) VALUES ($1, $2)`, a.ID, a.Expiry); err != nil {
		return fmt.Errorf("couldn't record a revoked access token: %w", err)
	}
	return nil
}

// Revocations returns the access tokens revoked (RevokeFamily, RevokeAccess) after the position after,
// not expired by now, and the position to ask from next time; 0 is the start. Each process of a cluster
// polls it and revokes them in its own issuer, so that a revocation through one process holds in all.
func (s *FlowState) Revocations(ctx context.Context, after int64, now time.Time) ([]flowstate.Access, int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, jti, expiry FROM connect_revoked WHERE seq > $1 ORDER BY seq LIMIT 10000`, after)
	if err != nil {
		return nil, after, fmt.Errorf("couldn't read revoked access tokens: %w", err)
	}
	defer rows.Close()
	var out []flowstate.Access
	next := after
	for rows.Next() {
		var a flowstate.Access
		if err := rows.Scan(&next, &a.ID, &a.Expiry); err != nil {
			return nil, after, fmt.Errorf("couldn't read revoked access tokens: %w", err)
		}
		if now.Before(a.Expiry) {
			out = append(out, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("couldn't read revoked access tokens: %w", err)
	}
	return out, next, nil
}

// UseAssertion implements flowstate.Store: an expired entry of the same key is replaced.
func (s *FlowState) UseAssertion(ctx context.Context, key string, exp, now time.Time) (bool, error) {
	if err := prune(ctx, s.pool, now, assertionRows); err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO connect_assertions (key, expiry) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expiry = EXCLUDED.expiry WHERE connect_assertions.expiry <= $3`, key, exp, now)
	if err != nil {
		return false, fmt.Errorf("couldn't record a client assertion: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
