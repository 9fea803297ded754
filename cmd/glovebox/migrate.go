package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/glovebox/glovebox/store/postgres"
)

func init() {
	register(command{name: "migrate", args: "--store postgres://…",
		short: "create or upgrade the PostgreSQL schema (idempotent)", run: runMigrate})
}

func runMigrate(ctx context.Context, args []string) error {
	fs := newFlags("migrate")
	store := fs.String("store", envDefault("GLOVEBOX_STORE", ""), "the PostgreSQL database, postgres://user@host/db (env GLOVEBOX_STORE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || !isPostgres(*store) {
		return errUsage
	}
	pool, err := postgres.Connect(ctx, *store)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := postgres.Migrate(ctx, pool)
	for _, v := range applied {
		fmt.Fprintf(stdout, "applied migration %04d\n", v)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d\n", postgres.LatestVersion())
	return nil
}

// isPostgres reports whether a --store value names a PostgreSQL database.
func isPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}
