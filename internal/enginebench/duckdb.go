//go:build duckdb

package enginebench

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/glovebox/glovebox/telemetry"
)

// DuckDB keeps signal values in an embedded DuckDB database, one row per value in a table per kind of
// value (DuckDB compresses each column of each row group itself), appended with its Appender.
// Aggregations are SQL over the values: DuckDB has no roll-ups to keep, it scans the column segments of
// the range. It is built only with the duckdb build tag, so that nothing else links its C++ library.
type DuckDB struct {
	// bySignal appends series by series (as a reindex that sorts each vehicle's values by signal could)
	// instead of in record order.
	bySignal bool
	dir      string
	db       *sql.DB
	conn     *sql.Conn // the appender's connection
}

var _ Engine = (*DuckDB)(nil)

func init() {
	Engines["duckdb"] = OpenDuckDB
	Engines["duckdb-bysignal"] = func(dir string) (Engine, error) {
		e, err := OpenDuckDB(dir)
		if err == nil {
			e.(*DuckDB).bySignal = true
		}
		return e, err
	}
}

const duckSchema = `
CREATE TABLE IF NOT EXISTS names (id USMALLINT PRIMARY KEY, name VARCHAR NOT NULL, kind INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nums (vehicle UBIGINT NOT NULL, name USMALLINT NOT NULL, time BIGINT NOT NULL, val DOUBLE NOT NULL);
CREATE TABLE IF NOT EXISTS strs (vehicle UBIGINT NOT NULL, name USMALLINT NOT NULL, time BIGINT NOT NULL, val VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS locs (vehicle UBIGINT NOT NULL, name USMALLINT NOT NULL, time BIGINT NOT NULL,
	lat DOUBLE NOT NULL, lon DOUBLE NOT NULL, hdop DOUBLE NOT NULL);
`

// OpenDuckDB opens the DuckDB layout in dir.
func OpenDuckDB(dir string) (Engine, error) {
	path := filepath.Join(dir, "values.duckdb")
	db, err := sql.Open("duckdb", path)
	if err != nil {
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	if _, err := db.Exec(duckSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create the schema in %s: %w", path, err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't connect to %s: %w", path, err)
	}
	return &DuckDB{dir: dir, db: db, conn: conn}, nil
}

// Name implements Engine.
func (e *DuckDB) Name() string {
	if e.bySignal {
		return "duckdb-bysignal"
	}
	return "duckdb"
}

func table(k telemetry.Kind) string {
	switch k {
	case telemetry.KindString, telemetry.KindStrings:
		return "strs"
	case telemetry.KindLocation:
		return "locs"
	}
	return "nums"
}

// Write implements Engine: values in record order through one appender per table, flushed every
// batchValues values (an indexer's commit).
func (e *DuckDB) Write(ctx context.Context, d *Dataset) error {
	for i := range d.Series {
		if _, err := e.db.ExecContext(ctx, `INSERT INTO names VALUES (?, ?, ?)`, i+1, d.Series[i].Name, int(d.Series[i].Kind)); err != nil {
			return fmt.Errorf("couldn't add signal %s: %w", d.Series[i].Name, err)
		}
	}
	return e.conn.Raw(func(dc any) error {
		apps := map[string]*duckdb.Appender{}
		for _, t := range []string{"nums", "strs", "locs"} {
			a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", t)
			if err != nil {
				return fmt.Errorf("couldn't make an appender for %s: %w", t, err)
			}
			apps[t] = a
		}
		closeAll := func() error {
			var errs []error
			for _, a := range apps {
				errs = append(errs, a.Close())
			}
			return errors.Join(errs...)
		}
		m := newMerge(d)
		next := m.next
		done := m.done
		if e.bySignal {
			si, i := 0, 0
			done = func() bool { return si >= len(d.Series) }
			next = func() (int, int) {
				a, b := si, i
				if i++; i >= d.Series[si].Len() {
					si, i = si+1, 0
				}
				return a, b
			}
		}
		n := 0
		for !done() {
			si, i := next()
			s := &d.Series[si]
			var err error
			name := uint16(si + 1)
			switch s.Kind {
			case telemetry.KindString, telemetry.KindStrings:
				err = apps["strs"].AppendRow(d.Vehicle, name, s.Times[i], s.Strs[i])
			case telemetry.KindLocation:
				l := s.Locs[i]
				err = apps["locs"].AppendRow(d.Vehicle, name, s.Times[i], l[0], l[1], l[2])
			default:
				err = apps["nums"].AppendRow(d.Vehicle, name, s.Times[i], s.Nums[i])
			}
			if err != nil {
				closeAll()
				return fmt.Errorf("couldn't append a value of %s: %w", s.Name, err)
			}
			if n++; n%batchValues == 0 {
				for t, a := range apps {
					if err := a.Flush(); err != nil {
						closeAll()
						return fmt.Errorf("couldn't flush %s: %w", t, err)
					}
				}
			}
		}
		return closeAll()
	})
}

// Checkpoint implements Engine.
func (e *DuckDB) Checkpoint(ctx context.Context) error {
	if _, err := e.db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		return fmt.Errorf("couldn't checkpoint: %w", err)
	}
	return nil
}

// Size implements Engine.
func (e *DuckDB) Size() (int64, error) {
	p := filepath.Join(e.dir, "values.duckdb")
	return fileSizes(p, p+".wal")
}

func (e *DuckDB) nameID(ctx context.Context, signal string) (int, telemetry.Kind, bool, error) {
	var id, kind int
	err := e.db.QueryRowContext(ctx, `SELECT id, kind FROM names WHERE name = ?`, signal).Scan(&id, &kind)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("couldn't look up signal %s: %w", signal, err)
	}
	return id, telemetry.Kind(kind), true, nil
}

// Aggregate implements telemetry.History for numbers and FIRST, LAST, AVG, MIN, MAX and COUNT.
func (e *DuckDB) Aggregate(ctx context.Context, a telemetry.Aggregation, put func(b int64, agg string, v any)) error {
	if a.Step <= 0 || a.Lo >= a.Hi {
		return nil
	}
	name, kind, ok, err := e.nameID(ctx, a.Signal)
	if !ok || err != nil {
		return err
	}
	if kind != telemetry.KindNumber && kind != telemetry.KindBool {
		return fmt.Errorf("the DuckDB engine aggregates numbers only, not %s", a.Signal)
	}
	rows, err := e.db.QueryContext(ctx, `SELECT (time - ?) // ? AS b, avg(val), max(val), min(val), arg_min(val, time), arg_max(val, time), count(*)
FROM nums WHERE vehicle = ? AND name = ? AND time >= ? AND time < ? GROUP BY b ORDER BY b`,
		a.From, a.Step, a.Vehicle, name, max(a.Lo, a.From), a.Hi)
	if err != nil {
		return fmt.Errorf("couldn't aggregate %s: %w", a.Signal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var b, n int64
		var avg, hi, lo, first, last float64
		if err := rows.Scan(&b, &avg, &hi, &lo, &first, &last, &n); err != nil {
			return fmt.Errorf("couldn't aggregate %s: %w", a.Signal, err)
		}
		for _, agg := range a.Aggs {
			switch agg {
			case telemetry.AggAvg:
				put(b, agg, avg)
			case telemetry.AggMax:
				put(b, agg, hi)
			case telemetry.AggMin:
				put(b, agg, lo)
			case telemetry.AggFirst:
				put(b, agg, first)
			case telemetry.AggLast:
				put(b, agg, last)
			case telemetry.AggCount:
				put(b, agg, float64(n))
			default:
				return fmt.Errorf("the DuckDB engine does not answer %s", agg)
			}
		}
	}
	return rows.Err()
}

// Latest implements Engine.
func (e *DuckDB) Latest(ctx context.Context, vehicle uint64) ([]telemetry.LatestRow, error) {
	var out []telemetry.LatestRow
	for _, q := range []string{
		`SELECT n.name, max(v.time), arg_max(v.val, v.time) FROM nums v JOIN names n ON n.id = v.name WHERE v.vehicle = ? GROUP BY n.name`,
		`SELECT n.name, max(v.time), arg_max(v.val, v.time) FROM strs v JOIN names n ON n.id = v.name WHERE v.vehicle = ? GROUP BY n.name`,
		`SELECT n.name, max(v.time), arg_max(v.lat, v.time), arg_max(v.lon, v.time), arg_max(v.hdop, v.time)
		FROM locs v JOIN names n ON n.id = v.name WHERE v.vehicle = ? GROUP BY n.name`,
	} {
		rows, err := e.db.QueryContext(ctx, q, vehicle)
		if err != nil {
			return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			var r telemetry.LatestRow
			if len(cols) == 5 {
				var lat, lon, hdop float64
				err = rows.Scan(&r.Name, &r.Time, &lat, &lon, &hdop)
				r.Val = telemetry.EncodeLocation(lat, lon, hdop)
			} else {
				err = rows.Scan(&r.Name, &r.Time, &r.Val)
			}
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
			}
			out = append(out, r)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	sortLatest(out)
	return out, nil
}

// Scan implements Engine.
func (e *DuckDB) Scan(ctx context.Context, vehicle uint64, s *Series, yield func(t int64, v any) error) error {
	name, kind, ok, err := e.nameID(ctx, s.Name)
	if !ok || err != nil {
		return err
	}
	q := `SELECT time, val FROM ` + table(kind) + ` WHERE vehicle = ? AND name = ? ORDER BY time`
	if kind == telemetry.KindLocation {
		q = `SELECT time, lat, lon, hdop FROM locs WHERE vehicle = ? AND name = ? ORDER BY time`
	}
	rows, err := e.db.QueryContext(ctx, q, vehicle, name)
	if err != nil {
		return fmt.Errorf("couldn't read %s: %w", s.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t int64
		var v any
		if kind == telemetry.KindLocation {
			var lat, lon, hdop float64
			err = rows.Scan(&t, &lat, &lon, &hdop)
			v = telemetry.EncodeLocation(lat, lon, hdop)
		} else {
			err = rows.Scan(&t, &v)
		}
		if err != nil {
			return fmt.Errorf("couldn't read %s: %w", s.Name, err)
		}
		if err := yield(t, v); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Close implements Engine.
func (e *DuckDB) Close() error {
	e.conn.Close()
	return e.db.Close()
}
