package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SaveSnapshot stores an encoded snapshot of the ledger state after the first size log entries, and
// drops all but the newest two. Snapshots are a cache of the log, like every read model: a process that
// finds none, or one it cannot decode, replays the log from the start. data is opaque here: its format,
// version and digest are the caller's (package node checks them).
func SaveSnapshot(ctx context.Context, pool *pgxpool.Pool, size int64, data []byte) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO identity_snapshots (size, data) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING`, size, data); err != nil {
			return fmt.Errorf("couldn't store the snapshot: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM identity_snapshots WHERE size < (SELECT MIN(size) FROM
			(SELECT size FROM identity_snapshots ORDER BY size DESC LIMIT 2) newest)`); err != nil {
			return fmt.Errorf("couldn't drop old snapshots: %w", err)
		}
		return nil
	})
}

// LatestSnapshot returns the newest snapshot of at most maxSize entries; ok is false when there is none.
func LatestSnapshot(ctx context.Context, pool *pgxpool.Pool, maxSize int64) (size int64, data []byte, ok bool, err error) {
	err = pool.QueryRow(ctx, `SELECT size, data FROM identity_snapshots WHERE size <= $1 ORDER BY size DESC LIMIT 1`, maxSize).Scan(&size, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("couldn't read the latest snapshot: %w", err)
	}
	return size, data, true, nil
}
