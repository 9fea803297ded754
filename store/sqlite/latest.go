package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/telemetry"
)

// QueryLatest reads the newest value of every signal of vehicle from a signals database.
func QueryLatest(ctx context.Context, db *sql.DB, vehicle uint64) ([]telemetry.LatestRow, error) {
	return queryLatest(ctx, db, vehicle, nil, math.MinInt64, nil)
}

// queryLatest reads the newest values of vehicle measured at or after since, from source unless it is
// nil, with their signals' names: from names when it knows them all, else from the names table.
func queryLatest(ctx context.Context, db *sql.DB, vehicle uint64, source []byte, since int64, names map[int64]string) ([]telemetry.LatestRow, error) {
	ns, err := readNewest(ctx, db, vehicle, source)
	if err != nil || len(ns) == 0 {
		return nil, err
	}
	for _, n := range ns {
		if _, ok := names[n.name]; !ok {
			names = nil
			break
		}
	}
	if names == nil { // names are only ever added: no transaction is needed around the two reads
		names = map[int64]string{}
		if err := eachQueryRow(ctx, db, `SELECT id, name FROM names`, nil, func(scan func(...any) error) error {
			var id int64
			var name string
			err := scan(&id, &name)
			names[id] = name
			return err
		}); err != nil {
			return nil, fmt.Errorf("couldn't read the names of the latest values of vehicle %d: %w", vehicle, err)
		}
	}
	out := make([]telemetry.LatestRow, 0, len(ns))
	for _, n := range ns {
		if n.t >= since {
			out = append(out, telemetry.LatestRow{Name: names[n.name], Time: n.t, Val: n.v})
		}
	}
	return out, nil
}

// nameByID returns the signal names this store knows, by id.
func (t *Telemetry) nameByID() map[int64]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[int64]string, len(t.names))
	for name, id := range t.names {
		out[id] = name
	}
	return out
}

// LatestFrom implements telemetry.Reader from latest_sources (not cached: a source filter is rare next to
// polling of every latest value).
func (t *Telemetry) LatestFrom(ctx context.Context, vehicle uint64, source common.Address, since int64) ([]telemetry.LatestRow, error) {
	rows, err := queryLatest(ctx, t.idx, vehicle, source.Bytes(), since, t.nameByID())
	if err != nil {
		return nil, fmt.Errorf("from %s: %w", source, err)
	}
	return rows, nil
}

// latestCache keeps QueryLatest's answers per vehicle until the next indexing commit: an app polling a
// vehicle's latest values many times a second then reads memory, not SQLite. gen counts commits; an
// answer is kept with the gen read before its query, so a commit during the query makes it stale.
type latestCache struct {
	gen atomic.Uint64
	mu  sync.Mutex
	m   map[uint64]latestEntry
}

type latestEntry struct {
	gen  uint64
	rows []telemetry.LatestRow
}

// maxLatestCached bounds the cache; past it, the cache starts over.
const maxLatestCached = 100_000

// Latest implements telemetry.Reader: the newest value of every signal of vehicle measured at or after
// since, as QueryLatest reads them, from a cache that each indexing commit (and Reindex) invalidates.
func (t *Telemetry) Latest(ctx context.Context, vehicle uint64, since int64) ([]telemetry.LatestRow, error) {
	rows, err := t.latestRows(ctx, vehicle)
	if err != nil {
		return nil, err
	}
	return sinceRows(rows, since), nil
}

// sinceRows returns the rows measured at or after since: rows itself when none is older (the common
// case, without allocating), a copy without the older ones otherwise.
func sinceRows(rows []telemetry.LatestRow, since int64) []telemetry.LatestRow {
	old := 0
	for _, r := range rows {
		if r.Time < since {
			old++
		}
	}
	if old == 0 {
		return rows
	}
	out := make([]telemetry.LatestRow, 0, len(rows)-old)
	for _, r := range rows {
		if r.Time >= since {
			out = append(out, r)
		}
	}
	return out
}

func (t *Telemetry) latestRows(ctx context.Context, vehicle uint64) ([]telemetry.LatestRow, error) {
	c := &t.latest
	gen := c.gen.Load()
	c.mu.Lock()
	e, ok := c.m[vehicle]
	c.mu.Unlock()
	if ok && e.gen == gen {
		return e.rows, nil
	}
	rows, err := queryLatest(ctx, t.idx, vehicle, nil, math.MinInt64, t.nameByID())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxLatestCached {
		c.m = make(map[uint64]latestEntry)
	}
	c.m[vehicle] = latestEntry{gen: gen, rows: rows}
	c.mu.Unlock()
	return rows, nil
}
