package enginebench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/glovebox/glovebox/telemetry"
)

// Chunks keeps signal values as compressed chunk rows in SQLite (codec.go), one row per vehicle, signal
// and chunk, with the chunk's count, sum, minimum, maximum, first and last value beside the blob: a
// query reads those of every chunk whose values fall in one of its buckets and decodes only the others
// (the range's unaligned ends, buckets narrower than a chunk). The chunk rows are the hourly roll-up.
type Chunks struct {
	// exact keeps each chunk's exact sum (exactSum) and answers AVG from exact sums: the same mean at
	// every bucket width, whatever the chunks and roll-ups.
	exact bool
	// split keeps the summaries in a narrow WITHOUT ROWID table (chunk_sums) and the blobs in another
	// (chunk_data), so that a long aggregation reads contiguous short rows instead of one page per chunk.
	// Only with exact.
	split bool
	dir   string
	db    *sql.DB
}

var _ Engine = (*Chunks)(nil)

const chunksSchema = `
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind INTEGER NOT NULL);
-- One row per vehicle, signal and chunk: start is the time of its first value, all of whose values are
-- in the UTC hour of start. cnt values; total, lo and hi their sum (in time order), minimum and maximum
-- (numbers and booleans); ft/fv and lt/lv the first and last time and value; data the encoded values.
CREATE TABLE IF NOT EXISTS chunks (
	vehicle INTEGER NOT NULL, name INTEGER NOT NULL, start INTEGER NOT NULL,
	cnt INTEGER NOT NULL, total REAL, lo REAL, hi REAL, ft INTEGER NOT NULL, fv ANY, lt INTEGER NOT NULL, lv ANY,
	xsum BLOB, -- the exact sum's partials (exactSum), kept by the exact variant
	data BLOB NOT NULL,
	PRIMARY KEY (vehicle, name, start));
-- The split variant: the same columns in two tables.
CREATE TABLE IF NOT EXISTS chunk_sums (
	vehicle INTEGER NOT NULL, name INTEGER NOT NULL, start INTEGER NOT NULL,
	cnt INTEGER NOT NULL, total REAL, lo REAL, hi REAL, ft INTEGER NOT NULL, fv ANY, lt INTEGER NOT NULL, lv ANY, xsum BLOB,
	PRIMARY KEY (vehicle, name, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunk_data (
	vehicle INTEGER NOT NULL, name INTEGER NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL,
	PRIMARY KEY (vehicle, name, start));
`

// OpenChunks opens the chunk layout in dir.
func OpenChunks(dir string) (Engine, error) {
	const pragmas = "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=cache_size(-16384)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	path := filepath.Join(dir, "chunks.db")
	db, err := sql.Open("sqlite", "file:"+path+pragmas)
	if err != nil {
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	if _, err := db.Exec(chunksSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create the chunk schema in %s: %w", path, err)
	}
	return &Chunks{dir: dir, db: db}, nil
}

// OpenChunksExact opens the chunk layout with exact sums in dir.
func OpenChunksExact(dir string) (Engine, error) {
	e, err := OpenChunks(dir)
	if err == nil {
		e.(*Chunks).exact = true
	}
	return e, err
}

// OpenChunksSplit opens the chunk layout with exact sums and summaries apart from the blobs in dir.
func OpenChunksSplit(dir string) (Engine, error) {
	e, err := OpenChunks(dir)
	if err == nil {
		e.(*Chunks).exact, e.(*Chunks).split = true, true
	}
	return e, err
}

// Name implements Engine.
func (c *Chunks) Name() string {
	if c.split {
		return "sqlite-chunks-split"
	}
	if c.exact {
		return "sqlite-chunks-exact"
	}
	return "sqlite-chunks"
}

// ExactMean tells whether AVG is the exact sum, rounded once, divided by the count (Exact).
func (c *Chunks) ExactMean() bool { return c.exact }

// Write implements Engine: values in record order, each signal's open chunk in memory; a chunk is written
// when its hour ends or it is full, and every open chunk is written (replacing its earlier version) at
// each commit, so that a commit makes every value so far durable and readable, as the indexer's must.
func (c *Chunks) Write(ctx context.Context, d *Dataset) error {
	ids := make([]int64, len(d.Series))
	for i := range d.Series {
		if err := c.db.QueryRowContext(ctx, `INSERT INTO names (name, kind) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id`,
			d.Series[i].Name, int(d.Series[i].Kind)).Scan(&ids[i]); err != nil {
			return fmt.Errorf("couldn't add signal %s: %w", d.Series[i].Name, err)
		}
	}
	open := make([]*chunkBuilder, len(d.Series))
	m := newMerge(d)
	for !m.done() {
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("couldn't begin: %w", err)
		}
		st, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO chunks (vehicle, name, start, cnt, total, lo, hi, ft, fv, lt, lv, xsum, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("couldn't prepare the chunk insert: %w", err)
		}
		sums, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO chunk_sums (vehicle, name, start, cnt, total, lo, hi, ft, fv, lt, lv, xsum)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			st.Close()
			tx.Rollback()
			return fmt.Errorf("couldn't prepare the chunk insert: %w", err)
		}
		data, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO chunk_data (vehicle, name, start, data) VALUES (?, ?, ?, ?)`)
		if err != nil {
			sums.Close()
			st.Close()
			tx.Rollback()
			return fmt.Errorf("couldn't prepare the chunk insert: %w", err)
		}
		closeAll := func() {
			st.Close()
			sums.Close()
			data.Close()
		}
		put := func(si int, b *chunkBuilder) error {
			var total, lo, hi, xsum any
			if b.kind == telemetry.KindNumber || b.kind == telemetry.KindBool {
				total, lo, hi = b.sum.total, b.sum.lo, b.sum.hi
				if c.exact {
					xsum = b.exact.bytes()
				}
			}
			if c.split {
				if _, err := sums.ExecContext(ctx, d.Vehicle, ids[si], b.ft, b.n, total, lo, hi, b.ft, b.fv, b.lt, b.lv, xsum); err != nil {
					return err
				}
				_, err := data.ExecContext(ctx, d.Vehicle, ids[si], b.ft, b.bytes())
				return err
			}
			_, err := st.ExecContext(ctx, d.Vehicle, ids[si], b.ft, b.n, total, lo, hi, b.ft, b.fv, b.lt, b.lv, xsum, b.bytes())
			return err
		}
		for n := 0; n < batchValues && !m.done(); n++ {
			si, i := m.next()
			s := &d.Series[si]
			hour := s.Times[i] / ChunkMs * ChunkMs
			if b := open[si]; b != nil && (b.hour != hour || b.n == MaxChunkValues) {
				if err := put(si, b); err != nil {
					closeAll()
					tx.Rollback()
					return fmt.Errorf("couldn't write a chunk: %w", err)
				}
				open[si] = nil
			}
			if open[si] == nil {
				open[si] = newChunkBuilder(s.Kind, hour)
			}
			open[si].add(s, i)
		}
		for si, b := range open {
			if b != nil {
				if err := put(si, b); err != nil {
					closeAll()
					tx.Rollback()
					return fmt.Errorf("couldn't write an open chunk: %w", err)
				}
			}
		}
		closeAll()
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("couldn't commit chunks: %w", err)
		}
	}
	return nil
}

// Checkpoint implements Engine.
func (c *Chunks) Checkpoint(ctx context.Context) error { return checkpointSQLite(ctx, c.db) }

// Size implements Engine.
func (c *Chunks) Size() (int64, error) {
	p := filepath.Join(c.dir, "chunks.db")
	return fileSizes(p, p+"-wal")
}

func (c *Chunks) nameID(ctx context.Context, signal string) (int64, telemetry.Kind, bool, error) {
	var id int64
	var kind int
	err := c.db.QueryRowContext(ctx, `SELECT id, kind FROM names WHERE name = ?`, signal).Scan(&id, &kind)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("couldn't look up signal %s: %w", signal, err)
	}
	return id, telemetry.Kind(kind), true, nil
}

// bucketPart is what the chunks of one bucket contributed so far.
type bucketPart struct {
	n        int64
	sum      float64
	lo, hi   float64
	xs       exactSum
	ft, lt   int64
	fv, lv   any
	hasValue bool
}

func (p *bucketPart) addValue(t int64, v any, numeric bool) {
	if numeric {
		p.xs.add(v.(float64))
	}
	p.merge(1, v, v, v, t, v, t, v, numeric)
}

// merge adds a chunk's (or one value's) summary; chunks come in time order.
func (p *bucketPart) merge(n int64, total, lo, hi any, ft int64, fv any, lt int64, lv any, numeric bool) {
	if numeric {
		tf, lf, hf := total.(float64), lo.(float64), hi.(float64)
		if !p.hasValue {
			p.sum, p.lo, p.hi = tf, lf, hf
		} else {
			p.sum += tf
			p.lo = min(p.lo, lf)
			p.hi = max(p.hi, hf)
		}
	}
	if !p.hasValue {
		p.ft, p.fv = ft, fv
	}
	p.lt, p.lv = lt, lv
	p.n += n
	p.hasValue = true
}

// Aggregate implements telemetry.History for FIRST, LAST, AVG, MIN, MAX and COUNT.
func (c *Chunks) Aggregate(ctx context.Context, a telemetry.Aggregation, put func(b int64, agg string, v any)) error {
	if a.Step <= 0 || a.Lo >= a.Hi {
		return nil
	}
	name, kind, ok, err := c.nameID(ctx, a.Signal)
	if !ok || err != nil {
		return err
	}
	for _, agg := range a.Aggs {
		switch agg {
		case telemetry.AggFirst, telemetry.AggLast, telemetry.AggAvg, telemetry.AggMin, telemetry.AggMax, telemetry.AggCount:
		default:
			return fmt.Errorf("the chunk engine does not answer %s", agg)
		}
	}
	numeric := kind == telemetry.KindNumber || kind == telemetry.KindBool
	bucket := func(t int64) int64 {
		d := t - a.From
		b := d / a.Step
		if d%a.Step != 0 && d < 0 {
			b--
		}
		return b
	}
	// A chunk whose values all fall in one bucket inside [Lo, Hi) is read from its summary, without data.
	q := `SELECT cnt, total, lo, hi, ft, fv, lt, lv, xsum,
	CASE WHEN ft >= ?3 AND lt < ?4 AND (ft - ?5) / ?6 = (lt - ?5) / ?6 AND ft >= ?5 THEN NULL ELSE data END
FROM chunks WHERE vehicle = ?1 AND name = ?2 AND start >= ?7 AND start < ?4 ORDER BY start`
	if c.split {
		q = `SELECT cnt, total, lo, hi, ft, fv, lt, lv, xsum,
	CASE WHEN ft >= ?3 AND lt < ?4 AND (ft - ?5) / ?6 = (lt - ?5) / ?6 AND ft >= ?5 THEN NULL
	ELSE (SELECT d.data FROM chunk_data d WHERE d.vehicle = ?1 AND d.name = ?2 AND d.start = s.start) END
FROM chunk_sums s WHERE vehicle = ?1 AND name = ?2 AND start >= ?7 AND start < ?4 ORDER BY start`
	}
	rows, err := c.db.QueryContext(ctx, q, a.Vehicle, name, a.Lo, a.Hi, a.From, a.Step, a.Lo/ChunkMs*ChunkMs-ChunkMs)
	if err != nil {
		return fmt.Errorf("couldn't read the chunks of %s: %w", a.Signal, err)
	}
	defer rows.Close()
	parts := map[int64]*bucketPart{}
	var order []int64
	part := func(b int64) *bucketPart {
		p := parts[b]
		if p == nil {
			p = &bucketPart{}
			parts[b] = p
			order = append(order, b)
		}
		return p
	}
	for rows.Next() {
		var n int64
		var total, lo, hi, fv, lv any
		var ft, lt int64
		var data, xsum []byte
		if err := rows.Scan(&n, &total, &lo, &hi, &ft, &fv, &lt, &lv, &xsum, &data); err != nil {
			return fmt.Errorf("couldn't read the chunks of %s: %w", a.Signal, err)
		}
		if data == nil {
			if numeric {
				fv, lv = asFloat(fv), asFloat(lv)
				total, lo, hi = asFloat(total), asFloat(lo), asFloat(hi)
			}
			p := part(bucket(ft))
			if numeric && c.exact {
				xs, ok := exactSumOf(xsum)
				if !ok {
					return fmt.Errorf("a chunk of %s at %d: %w", a.Signal, ft, errChunk)
				}
				p.xs.merge(xs)
			}
			p.merge(n, total, lo, hi, ft, fv, lt, lv, numeric)
			continue
		}
		if err := decodeChunk(kind, data, func(t int64, v any) error {
			if t >= a.Lo && t < a.Hi {
				part(bucket(t)).addValue(t, v, numeric)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("a chunk of %s at %d: %w", a.Signal, ft, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't read the chunks of %s: %w", a.Signal, err)
	}
	for _, b := range order {
		p := parts[b]
		for _, agg := range a.Aggs {
			switch agg {
			case telemetry.AggFirst:
				put(b, agg, p.fv)
			case telemetry.AggLast:
				put(b, agg, p.lv)
			case telemetry.AggCount:
				if numeric {
					put(b, agg, float64(p.n))
				}
			case telemetry.AggAvg:
				if numeric && c.exact {
					put(b, agg, p.xs.round()/float64(p.n))
				} else if numeric {
					put(b, agg, p.sum/float64(p.n))
				}
			case telemetry.AggMin:
				if numeric {
					put(b, agg, p.lo)
				}
			case telemetry.AggMax:
				if numeric {
					put(b, agg, p.hi)
				}
			}
		}
	}
	return nil
}

// asFloat turns what SQLite returns for a REAL or ANY column holding a number into a float64 (SQLite
// returns a whole REAL of an ANY column as an int64).
func asFloat(v any) any {
	if i, ok := v.(int64); ok {
		return float64(i)
	}
	return v
}

// Latest implements Engine: the last value of each signal's newest chunk, one primary-key seek per
// signal.
func (c *Chunks) Latest(ctx context.Context, vehicle uint64) ([]telemetry.LatestRow, error) {
	q := `SELECT n.name, n.kind, c.lt, c.lv FROM names n, chunks c
WHERE c.rowid = (SELECT rowid FROM chunks WHERE vehicle = ?1 AND name = n.id ORDER BY start DESC LIMIT 1)`
	if c.split {
		q = `SELECT * FROM (SELECT n.name, n.kind,
	(SELECT lt FROM chunk_sums WHERE vehicle = ?1 AND name = n.id ORDER BY start DESC LIMIT 1) AS lt,
	(SELECT lv FROM chunk_sums WHERE vehicle = ?1 AND name = n.id ORDER BY start DESC LIMIT 1) FROM names n) WHERE lt IS NOT NULL`
	}
	rows, err := c.db.QueryContext(ctx, q, vehicle)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
	}
	defer rows.Close()
	var out []telemetry.LatestRow
	for rows.Next() {
		var r telemetry.LatestRow
		var kind int
		if err := rows.Scan(&r.Name, &kind, &r.Time, &r.Val); err != nil {
			return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
		}
		if k := telemetry.Kind(kind); k == telemetry.KindNumber || k == telemetry.KindBool {
			r.Val = asFloat(r.Val)
		}
		out = append(out, r)
	}
	sortLatest(out)
	return out, rows.Err()
}

// Scan implements Engine by decoding every chunk of the signal.
func (c *Chunks) Scan(ctx context.Context, vehicle uint64, s *Series, yield func(t int64, v any) error) error {
	name, kind, ok, err := c.nameID(ctx, s.Name)
	if !ok || err != nil {
		return err
	}
	table := "chunks"
	if c.split {
		table = "chunk_data"
	}
	rows, err := c.db.QueryContext(ctx, `SELECT start, data FROM `+table+` WHERE vehicle = ? AND name = ? ORDER BY start`, vehicle, name)
	if err != nil {
		return fmt.Errorf("couldn't read %s: %w", s.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var start int64
		var data []byte
		if err := rows.Scan(&start, &data); err != nil {
			return fmt.Errorf("couldn't read %s: %w", s.Name, err)
		}
		if err := decodeChunk(kind, data, yield); err != nil {
			return fmt.Errorf("the chunk of %s at %d: %w", s.Name, start, err)
		}
	}
	return rows.Err()
}

// Close implements Engine.
func (c *Chunks) Close() error { return c.db.Close() }
