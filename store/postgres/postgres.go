// Package postgres keeps a Glovebox deployment's shared state in PostgreSQL 15 or later through pgx: the
// Merkle log (entries, stored hashes, checkpoints; package tlog's wire formats), telemetry records
// partitioned by month with their derived signal values — rows for the open hours, compressed chunks
// (telemetry/series) with summaries for the closed ones, sealed by a background loop (chunks.go) — the
// sequencer lease and the OpenID Provider's flow state (FlowState). See docs/scale.md.
//
// The schema is versioned: Migrate applies the SQL files in migrations/ in order, each once, under an
// advisory lock, recording them in schema_migrations. `glovebox migrate --store postgres://…` runs it.
//
// A store implements the contracts of the packages below it (ledger, tlog, telemetry, accesslog,
// webhook/outbox, credential, attestation, connect/flowstate, auth/challenge) and must not import anything
// that uses them (api, node, webhook's engine, connect, auth).
package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Advisory lock keys (pg_advisory_lock's bigint space is shared by the whole database).
const (
	lockMigrate    int64 = 0x676c6f7665626f01 // "glovebo" 01: schema migrations
	lockPartitions int64 = 0x676c6f7665626f02 // creating partitions
	lockSequencer  int64 = 0x676c6f7665626f03 // the sequencer role
)

// Open connects a pool to the database at dsn (a postgres:// URL or key=value string) and checks that the
// schema is migrated to the version this build knows.
func Open(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	pool, err := Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	have, err := SchemaVersion(ctx, pool)
	if err == nil && have != LatestVersion() {
		err = fmt.Errorf("the database schema is at version %d, this build needs %d: run glovebox migrate", have, LatestVersion())
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Connect connects a pool to dsn without looking at the schema.
func Connect(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the PostgreSQL address: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("couldn't connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("couldn't connect to PostgreSQL: %w", err)
	}
	return pool, nil
}

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string // file name
	SQL     string
}

// Migrations returns the embedded migrations in version order. File names are NNNN_name.sql.
func Migrations() []Migration {
	ents, _ := fs.ReadDir(migrationFiles, "migrations")
	var out []Migration
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			panic("postgres: migration without a version number: " + e.Name()) // a build error, not input
		}
		b, _ := migrationFiles.ReadFile("migrations/" + e.Name())
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// LatestVersion is the schema version of this build.
func LatestVersion() int {
	m := Migrations()
	return m[len(m)-1].Version
}

// SchemaVersion returns the highest applied migration, 0 for an empty database.
func SchemaVersion(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("couldn't read the schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("couldn't read the schema version: %w", err)
	}
	return v, nil
}

// Migrate applies every migration the database lacks, each in its own transaction, while holding an
// advisory lock so that processes started together migrate once. It returns the versions it applied;
// running it again applies nothing.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockMigrate); err != nil {
		return nil, fmt.Errorf("couldn't take the migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, lockMigrate)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("couldn't create schema_migrations: %w", err)
	}
	var applied []int
	for _, m := range Migrations() {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&done); err != nil {
				return err
			}
			if done {
				return nil
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return err
			}
			applied = append(applied, m.Version)
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("couldn't apply migration %s: %w", m.Name, err)
		}
	}
	return applied, nil
}
