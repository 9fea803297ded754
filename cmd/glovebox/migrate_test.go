package main

import (
	"strings"
	"testing"

	"github.com/glovebox/glovebox/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestMigrateCreatesTheSchemaOnceAndThenHasNothingToDo(t *testing.T) {
	dsn := pgtest.Database(t)
	code, out, errOut := runCLI(t, "migrate", "--store", dsn)
	if code != 0 || !strings.Contains(out, "applied migration 0001") {
		t.Fatalf("first migrate: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "migrate", "--store", dsn)
	if code != 0 || strings.Contains(out, "applied") || !strings.Contains(out, "schema at version") {
		t.Fatalf("second migrate: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, "migrate", "--store", "./not-postgres"); code != 2 {
		t.Fatalf("a non-PostgreSQL store: exit %d, want 2 (usage)", code)
	}
}
