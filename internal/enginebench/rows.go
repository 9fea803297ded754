package enginebench

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/telemetry"
)

// Rows is the real store/sqlite telemetry store fed as its indexer fed the rows of open hours before the
// ingest path kept them a row per record (docs/columnar.md, "The ingest path"), then sealed into chunks
// by the store itself. Write fills a signals table and a latest table of that layout, with the indexer's
// statements' shape then (multi-row inserts of rowsPerInsert rows, one transaction per batchValues
// values), from the dataset's values rather than from parsed records — what it measures is the layout's
// cost, not parsing, which every engine would share — and reopens the store, whose upgrade of that
// layout moves the rows into its own tables and seals them. (Before issue 16 the store kept a row per
// value with roll-ups: the figures of sqlite-rows in docs/columnar.md were measured then.)
type Rows struct {
	dir string
	t   *sqlite.Telemetry
}

var _ Engine = (*Rows)(nil)

const (
	rowsPerInsert = 500
	batchValues   = 8192 * 11 // an indexer chunk of 8,192 records of about 11 values
)

// OpenRows opens the baseline in dir.
func OpenRows(dir string) (Engine, error) {
	t, err := sqlite.OpenTelemetry(filepath.Join(dir, "records.db"), telemetry.DefaultCatalog)
	if err != nil {
		return nil, err
	}
	return &Rows{dir: dir, t: t}, nil
}

// Name implements Engine.
func (r *Rows) Name() string { return "sqlite-rows" }

// storedValue is a value as the indexer binds it.
func storedValue(s *Series, i int) any {
	return s.Value(i)
}

// Write implements Engine.
func (r *Rows) Write(ctx context.Context, d *Dataset) error {
	db := r.t.SignalsDB()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS signals (vehicle INTEGER NOT NULL, name INTEGER NOT NULL, time INTEGER NOT NULL, val,
	PRIMARY KEY (vehicle, name, time)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latest (vehicle INTEGER NOT NULL, name INTEGER NOT NULL, time INTEGER NOT NULL, val ANY,
	PRIMARY KEY (vehicle, name)) WITHOUT ROWID;
DELETE FROM meta WHERE key = 'chunk_version';`); err != nil {
		return fmt.Errorf("couldn't create the tables of the layout before: %w", err)
	}
	ids := make([]int64, len(d.Series))
	for i := range d.Series {
		if err := db.QueryRowContext(ctx, `INSERT INTO names (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id`,
			d.Series[i].Name).Scan(&ids[i]); err != nil {
			return fmt.Errorf("couldn't add signal %s: %w", d.Series[i].Name, err)
		}
	}
	tuple := "(?,?,?,?)"
	full := `INSERT INTO signals (vehicle, name, time, val) VALUES ` + strings.TrimSuffix(strings.Repeat(tuple+",", rowsPerInsert), ",") + ` ON CONFLICT DO NOTHING`
	m := newMerge(d)
	args := make([]any, 0, rowsPerInsert*4)
	for !m.done() {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("couldn't begin: %w", err)
		}
		st, err := tx.PrepareContext(ctx, full)
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("couldn't prepare the insert: %w", err)
		}
		type span struct{ since, until, last int }
		spans := map[int]*span{}
		for n := 0; n < batchValues && !m.done(); n++ {
			si, i := m.next()
			s := &d.Series[si]
			args = append(args, d.Vehicle, ids[si], s.Times[i], storedValue(s, i))
			if sp := spans[si]; sp == nil {
				spans[si] = &span{i, i, i}
			} else {
				sp.until, sp.last = i, i
			}
			if len(args) == cap(args) || m.done() || n == batchValues-1 {
				var err error
				if len(args) == cap(args) {
					_, err = st.ExecContext(ctx, args...)
				} else {
					q := `INSERT INTO signals (vehicle, name, time, val) VALUES ` + strings.TrimSuffix(strings.Repeat(tuple+",", len(args)/4), ",") + ` ON CONFLICT DO NOTHING`
					_, err = tx.ExecContext(ctx, q, args...)
				}
				if err != nil {
					st.Close()
					tx.Rollback()
					return fmt.Errorf("couldn't insert values: %w", err)
				}
				args = args[:0]
			}
		}
		st.Close()
		for si, sp := range spans {
			s := &d.Series[si]
			if _, err := tx.ExecContext(ctx, `INSERT INTO latest (vehicle, name, time, val) VALUES (?, ?, ?, ?)
ON CONFLICT (vehicle, name) DO UPDATE SET time=excluded.time, val=excluded.val WHERE excluded.time >= latest.time`,
				d.Vehicle, ids[si], s.Times[sp.last], storedValue(s, sp.last)); err != nil {
				tx.Rollback()
				return fmt.Errorf("couldn't update the latest values: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("couldn't commit values: %w", err)
		}
	}
	// Opening the store moves the rows into its tables and seals the closed hours (all of them here).
	if err := r.t.Close(); err != nil {
		return fmt.Errorf("couldn't close the store: %w", err)
	}
	t, err := sqlite.OpenTelemetry(filepath.Join(r.dir, "records.db"), telemetry.DefaultCatalog)
	if err != nil {
		return fmt.Errorf("couldn't reopen the store: %w", err)
	}
	r.t = t
	if _, err := r.t.Seal(ctx); err != nil {
		return fmt.Errorf("couldn't seal: %w", err)
	}
	return nil
}

// Checkpoint implements Engine.
func (r *Rows) Checkpoint(ctx context.Context) error {
	return checkpointSQLite(ctx, r.t.SignalsDB())
}

// checkpointSQLite vacuums a database in WAL mode and empties its WAL.
func checkpointSQLite(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("couldn't vacuum: %w", err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("couldn't checkpoint: %w", err)
	}
	return nil
}

// Size implements Engine: the derived database (values, latest values), not the records.
func (r *Rows) Size() (int64, error) {
	return fileSizes(filepath.Join(r.dir, sqlite.SignalsFile), filepath.Join(r.dir, sqlite.SignalsFile+"-wal"))
}

// fileSizes adds up the sizes of the files that exist.
func fileSizes(paths ...string) (int64, error) {
	var n int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("couldn't measure %s: %w", p, err)
		}
		n += fi.Size()
	}
	return n, nil
}

// Aggregate implements telemetry.History with the store's own History.
func (r *Rows) Aggregate(ctx context.Context, a telemetry.Aggregation, put func(b int64, agg string, v any)) error {
	return r.t.Aggregate(ctx, a, put)
}

// Latest implements Engine with the store's own Latest.
func (r *Rows) Latest(ctx context.Context, vehicle uint64) ([]telemetry.LatestRow, error) {
	rows, err := r.t.Latest(ctx, vehicle, 0)
	if err != nil {
		return nil, err
	}
	rows = append([]telemetry.LatestRow(nil), rows...)
	sortLatest(rows)
	return rows, nil
}

// Scan implements Engine: every value through the store's History (a bucket per millisecond).
func (r *Rows) Scan(ctx context.Context, vehicle uint64, s *Series, yield func(t int64, v any) error) error {
	var err error
	a := telemetry.Aggregation{Vehicle: vehicle, Signal: s.Name, Kind: s.Kind, From: math.MinInt64 / 2, Step: 1, Lo: math.MinInt64 / 2,
		Hi: math.MaxInt64 / 2, Aggs: []string{telemetry.AggLast}, Keep: func(any) bool { return true }}
	if aerr := r.t.Aggregate(ctx, a, func(b int64, _ string, v any) {
		if err == nil {
			err = yield(a.From+b, v)
		}
	}); aerr != nil {
		return fmt.Errorf("couldn't read %s: %w", s.Name, aerr)
	}
	return err
}

// Close implements Engine.
func (r *Rows) Close() error { return r.t.Close() }

// merge walks the values of a dataset in time order across its series (the order records bring them in).
type merge struct {
	d   *Dataset
	pos []int
}

func newMerge(d *Dataset) *merge { return &merge{d: d, pos: make([]int, len(d.Series))} }

func (m *merge) done() bool {
	for i, p := range m.pos {
		if p < m.d.Series[i].Len() {
			return false
		}
	}
	return true
}

// next returns the series and index of the earliest value not yet returned (the lowest series on a tie).
func (m *merge) next() (int, int) {
	best := -1
	var bt int64
	for i, p := range m.pos {
		s := &m.d.Series[i]
		if p < s.Len() && (best < 0 || s.Times[p] < bt) {
			best, bt = i, s.Times[p]
		}
	}
	i := m.pos[best]
	m.pos[best]++
	return best, i
}
