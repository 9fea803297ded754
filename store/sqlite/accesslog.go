package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/accesslog"
)

// AccessLog is the append-only record of who read what of each vehicle, in its own SQLite file.
type AccessLog struct {
	db    *sql.DB
	stmts stmtCache
}

var _ accesslog.Store = (*AccessLog)(nil)

const accessLogSchema = `
CREATE TABLE IF NOT EXISTS access_log (
	seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, vehicle INTEGER NOT NULL, caller BLOB NOT NULL,
	query TEXT NOT NULL, permissions TEXT NOT NULL, from_ms INTEGER, to_ms INTEGER,
	value_count INTEGER NOT NULL, outcome TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS access_log_vehicle ON access_log (vehicle, seq);
`

// OpenAccessLog opens (creating if needed) the access log in the SQLite file at path. Appends are
// fsynced (synchronous=FULL): the log is the owner's evidence.
func OpenAccessLog(path string) (*AccessLog, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	if _, err := db.Exec(accessLogSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create the access log schema in %s: %w", path, err)
	}
	return &AccessLog{db: db, stmts: stmtCache{db: db}}, nil
}

// Close closes the database.
func (l *AccessLog) Close() error { return l.db.Close() }

func msOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// Append implements accesslog.Store.
func (l *AccessLog) Append(ctx context.Context, entries []accesslog.Entry) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows := make([][]any, len(entries))
	for i, e := range entries {
		rows[i] = []any{e.Time.UnixMilli(), e.Vehicle, e.Caller.Bytes(), e.Query, strings.Join(e.Permissions, ","),
			msOrNil(e.From), msOrNil(e.To), e.Values, e.Outcome}
	}
	if err := l.stmts.insertRows(ctx, tx, `INSERT INTO access_log (time, vehicle, caller, query, permissions, from_ms, to_ms, value_count, outcome) VALUES`, ``, rows); err != nil {
		return err
	}
	return tx.Commit()
}

// List implements accesslog.Store.
func (l *AccessLog) List(ctx context.Context, vehicle uint64, before int64, limit int) ([]accesslog.Entry, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := l.db.QueryContext(ctx, `SELECT seq, time, caller, query, permissions, from_ms, to_ms, value_count, outcome
		FROM access_log WHERE vehicle = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, vehicle, before, limit)
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
		var from, to sql.NullInt64
		if err := rows.Scan(&e.Seq, &t, &caller, &e.Query, &perms, &from, &to, &e.Values, &e.Outcome); err != nil {
			return nil, err
		}
		e.Time, e.Vehicle, e.Caller = time.UnixMilli(t), vehicle, common.BytesToAddress(caller)
		if perms != "" {
			e.Permissions = strings.Split(perms, ",")
		}
		if from.Valid {
			e.From = time.UnixMilli(from.Int64)
		}
		if to.Valid {
			e.To = time.UnixMilli(to.Int64)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
