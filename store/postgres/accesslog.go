package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/accesslog"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AccessLog is the append-only record of who read what of each vehicle, in table access_log. Appends are
// committed with PostgreSQL's synchronous commit: durable when Append returns.
type AccessLog struct{ pool *pgxpool.Pool }

var _ accesslog.Store = (*AccessLog)(nil)

// NewAccessLog returns the access log of a migrated database.
func NewAccessLog(pool *pgxpool.Pool) *AccessLog { return &AccessLog{pool: pool} }

func msOrNil(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

// Append implements accesslog.Store: the entries get increasing sequence numbers in one statement.
func (l *AccessLog) Append(ctx context.Context, entries []accesslog.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	n := len(entries)
	times, vehicles, counts := make([]int64, n), make([]int64, n), make([]int32, n)
	callers := make([][]byte, n)
	queries, perms, outcomes := make([]string, n), make([]string, n), make([]string, n)
	froms, tos := make([]*int64, n), make([]*int64, n)
	for i, e := range entries {
		times[i], vehicles[i], counts[i] = e.Time.UnixMilli(), int64(e.Vehicle), int32(e.Values)
		callers[i], queries[i], perms[i], outcomes[i] = e.Caller.Bytes(), e.Query, strings.Join(e.Permissions, ","), e.Outcome
		froms[i], tos[i] = msOrNil(e.From), msOrNil(e.To)
	}
	_, err := l.pool.Exec(ctx, `INSERT INTO access_log (time, vehicle, caller, query, permissions, from_ms, to_ms, value_count, outcome)
		SELECT t, v, c, q, p, f, o, n, r FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::int[], $9::text[])
		WITH ORDINALITY AS u(t, v, c, q, p, f, o, n, r, ord) ORDER BY ord`,
		times, vehicles, callers, queries, perms, froms, tos, counts, outcomes)
	if err != nil {
		return fmt.Errorf("couldn't append to the access log: %w", err)
	}
	return nil
}

// List implements accesslog.Store.
func (l *AccessLog) List(ctx context.Context, vehicle uint64, before int64, limit int) ([]accesslog.Entry, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := l.pool.Query(ctx, `SELECT seq, time, caller, query, permissions, from_ms, to_ms, value_count, outcome
		FROM access_log WHERE vehicle = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, int64(vehicle), before, limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the access log: %w", err)
	}
	defer rows.Close()
	var out []accesslog.Entry
	for rows.Next() {
		var e accesslog.Entry
		var t int64
		var caller []byte
		var perms string
		var from, to *int64
		var count int32
		if err := rows.Scan(&e.Seq, &t, &caller, &e.Query, &perms, &from, &to, &count, &e.Outcome); err != nil {
			return nil, err
		}
		e.Time, e.Vehicle, e.Caller, e.Values = time.UnixMilli(t), vehicle, common.BytesToAddress(caller), int(count)
		if perms != "" {
			e.Permissions = strings.Split(perms, ",")
		}
		if from != nil {
			e.From = time.UnixMilli(*from)
		}
		if to != nil {
			e.To = time.UnixMilli(*to)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
