package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

func TestRollbackOnViolationNamesTheResolution(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"INSERT INTO events (vehicle, time) VALUES", "INSERT OR ROLLBACK INTO events (vehicle, time) VALUES", ""},
		{"INSERT OR IGNORE INTO events (vehicle) VALUES", "", `"INSERT OR IGNORE INTO events (vehicle) VALUES" is not an INSERT INTO`},
		{"UPDATE events SET time = 1", "", `"UPDATE events SET time = 1" is not an INSERT INTO`},
	} {
		got, err := rollbackOnViolation(tc.in)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("rollbackOnViolation(%q) = %q, %v; want %q, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestAViolationInABatchInsertUndoesTheTransaction: a row that breaks a constraint the statement does not
// resolve (NOT NULL here) fails insertRows and undoes everything the transaction wrote before it, while
// the statement's own upsert still resolves a duplicate key.
func TestAViolationInABatchInsertUndoesTheTransaction(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "t.db")+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	c := stmtCache{db: db}
	insert := func(rows ...[]any) (int, error) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (k, v) VALUES (100, 'before')`); err != nil {
			t.Fatal(err)
		}
		if err := c.insertRows(ctx, tx, `INSERT INTO t (k, v) VALUES`, `ON CONFLICT (k) DO NOTHING`, rows); err != nil {
			return 0, err
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n, nil
	}
	if _, err := insert([]any{1, "a"}, []any{2, nil}, []any{3, "c"}); err == nil {
		t.Fatal("a NULL in a NOT NULL column was inserted")
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after the failed transaction the table holds %d rows (%v), want 0", n, err)
	}
	if n, err := insert([]any{1, "a"}, []any{1, "again"}, []any{100, "dup"}); err != nil || n != 2 {
		t.Fatalf("upserted duplicates: %d rows, %v; want 2 and no error", n, err)
	}
}
