package pgtest_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/glovebox/glovebox/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestEachDatabaseIsFreshAndWritable(t *testing.T) {
	ctx := context.Background()
	for range 2 {
		dsn := pgtest.Database(t)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		// A table of this name exists only if the database were reused.
		if _, err := conn.Exec(ctx, `CREATE TABLE probe (x int); INSERT INTO probe VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		var version int
		if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if version < 150000 {
			t.Errorf("server version %d, want PostgreSQL 15 or later", version)
		}
		conn.Close(ctx)
	}
}

func TestTheServerListensOnLoopbackTCP(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:"+strconv.Itoa(srv.Port)+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
}
