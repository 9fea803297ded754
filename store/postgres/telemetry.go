package postgres

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/glovebox/glovebox/telemetry"
)

// Telemetry stores device-signed records in PostgreSQL. One transaction stores a batch: the record keys
// (unique on source and id across every partition), the records as received in their month's partition,
// and the derived signal and latest rows of the records that were new. It is committed with PostgreSQL's
// default synchronous_commit (the WAL is flushed before Commit returns), so Write's contract holds: an
// accepted record is durable. Any number of processes may write at once; each write is idempotent.
type Telemetry struct {
	pool *pgxpool.Pool

	mu    sync.Mutex // guards names and parts
	names map[string]int32
	parts map[int64]bool // months (unix ms of their first instant) whose partitions exist

	derive telemetry.SpeedDeriver // open runs of derived events of the records this process wrote

	slotsFilled atomic.Bool // FillSlots found nothing left to fill
}

var _ telemetry.Store = (*Telemetry)(nil)

// NewTelemetry returns the telemetry store of a migrated database.
func NewTelemetry(pool *pgxpool.Pool) *Telemetry {
	return &Telemetry{pool: pool, names: map[string]int32{}, parts: map[int64]bool{}}
}

// Pool returns the connection pool, for queries.
func (t *Telemetry) Pool() *pgxpool.Pool { return t.pool }

type recordKey struct {
	source common.Address
	id     string
}

// Write implements telemetry.Store. Every record must carry its parsed Values (telemetry.Catalog.Parse),
// from which the derived rows are written.
func (t *Telemetry) Write(ctx context.Context, recs []*telemetry.Record) ([]telemetry.Status, error) {
	var out []telemetry.Status
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		out, err = t.write(ctx, recs)
		var pe *pgconn.PgError
		// Writers racing on the same keys may deadlock or conflict; the loser retries from scratch. A month
		// whose partitions retention dropped (dropMonths) since this process created them is created again.
		if err == nil || !errors.As(err, &pe) || (pe.Code != "40P01" && pe.Code != "40001" && pe.Code != noPartition) {
			break
		}
		if pe.Code == noPartition {
			t.forgetPartitions()
		}
	}
	return out, err
}

func (t *Telemetry) write(ctx context.Context, recs []*telemetry.Record) ([]telemetry.Status, error) {
	out := make([]telemetry.Status, len(recs))
	first := make(map[recordKey]int, len(recs))
	digests := make([][]byte, len(recs))
	var cand []int
	for i, r := range recs {
		d := sha256.Sum256(r.Event)
		digests[i] = d[:]
		k := recordKey{r.Source, r.ID}
		if _, ok := first[k]; ok {
			continue
		}
		first[k] = i
		cand = append(cand, i)
	}
	// A fixed order of keys keeps concurrent writers from deadlocking on each other's rows.
	sort.Slice(cand, func(a, b int) bool {
		ra, rb := recs[cand[a]], recs[cand[b]]
		if c := bytes.Compare(ra.Source[:], rb.Source[:]); c != 0 {
			return c < 0
		}
		return ra.ID < rb.ID
	})
	months := map[int64]bool{}
	var names []string
	for _, i := range cand {
		months[monthStart(recs[i].Time)] = true
		for _, v := range recs[i].Values {
			months[monthStart(v.Time)] = true
			names = append(names, v.Signal.Name)
		}
	}
	if err := t.ensurePartitions(ctx, months); err != nil {
		return nil, err
	}
	nameIDs, err := t.nameIDs(ctx, names)
	if err != nil {
		return nil, err
	}

	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	srcs, ids, digs, times := make([][]byte, len(cand)), make([]string, len(cand)), make([][]byte, len(cand)), make([]int64, len(cand))
	for j, i := range cand {
		r := recs[i]
		srcs[j], ids[j], digs[j], times[j] = r.Source.Bytes(), r.ID, digests[i], r.Time
	}
	rows, err := tx.Query(ctx, `INSERT INTO record_keys (source, id, digest, time)
		SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::bigint[]) ON CONFLICT (source, id) DO NOTHING RETURNING source, id`,
		srcs, ids, digs, times)
	if err != nil {
		return nil, fmt.Errorf("couldn't insert record keys: %w", err)
	}
	inserted := map[recordKey]bool{}
	for rows.Next() {
		var src []byte
		var id string
		if err := rows.Scan(&src, &id); err != nil {
			rows.Close()
			return nil, err
		}
		inserted[recordKey{common.BytesToAddress(src), id}] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't insert record keys: %w", err)
	}
	// The digest stored under each key, for duplicates and conflicts.
	stored := map[recordKey][]byte{}
	var oldSrcs [][]byte
	var oldIDs []string
	for j, i := range cand {
		if !inserted[recordKey{recs[i].Source, recs[i].ID}] {
			oldSrcs, oldIDs = append(oldSrcs, srcs[j]), append(oldIDs, ids[j])
		}
	}
	if len(oldSrcs) > 0 {
		rows, err := tx.Query(ctx, `SELECT k.source, k.id, k.digest FROM record_keys k
			JOIN unnest($1::bytea[], $2::text[]) AS u(source, id) ON k.source = u.source AND k.id = u.id`, oldSrcs, oldIDs)
		if err != nil {
			return nil, fmt.Errorf("couldn't read stored record keys: %w", err)
		}
		for rows.Next() {
			var src, dig []byte
			var id string
			if err := rows.Scan(&src, &id, &dig); err != nil {
				rows.Close()
				return nil, err
			}
			stored[recordKey{common.BytesToAddress(src), id}] = dig
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("couldn't read stored record keys: %w", err)
		}
	}

	var rs recordRows
	var sig signalRows
	type latestKey struct {
		vehicle uint64
		name    int32
	}
	latest := map[latestKey]int{} // index into lat
	var lat signalRows
	type sourceKey struct {
		latestKey
		source common.Address
	}
	bySource := map[sourceKey]telemetry.Value{}
	var evs eventRows
	for _, i := range cand {
		r := recs[i]
		k := recordKey{r.Source, r.ID}
		if !inserted[k] {
			continue
		}
		stored[k] = digests[i]
		rs.add(r)
		for _, e := range r.Events {
			evs.add(e)
		}
		for _, e := range t.derive.Add(r.VehicleID, telemetry.SpeedSamples(r.Values)) {
			evs.add(e)
		}
		for _, v := range r.Values {
			id := nameIDs[v.Signal.Name]
			sig.add(r.VehicleID, id, v)
			lk := latestKey{r.VehicleID, id}
			if at, ok := latest[lk]; !ok {
				latest[lk] = len(lat.vehicle)
				lat.add(r.VehicleID, id, v)
			} else if lat.time[at] <= v.Time {
				lat.set(at, r.VehicleID, id, v)
			}
			if sk := (sourceKey{lk, r.Source}); bySource[sk].Signal == nil || bySource[sk].Time <= v.Time {
				bySource[sk] = v
			}
		}
	}
	if len(rs.source) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO records (source, id, vehicle, time, received, pairing, event, signature)
			SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bytea[], $8::bytea[])`,
			rs.source, rs.id, rs.vehicle, rs.time, rs.received, rs.pairing, rs.event, rs.signature); err != nil {
			return nil, fmt.Errorf("couldn't insert records: %w", err)
		}
	}
	if len(sig.vehicle) > 0 {
		sig.sort()
		if _, err := tx.Exec(ctx, `INSERT INTO signals (vehicle, name, time, num, str, loc)
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::float8[], $5::text[], $6::bytea[]) ON CONFLICT DO NOTHING`,
			sig.vehicle, sig.name, sig.time, sig.num, sig.str, sig.loc); err != nil {
			return nil, fmt.Errorf("couldn't insert signal values: %w", err)
		}
		lat.sort()
		if _, err := tx.Exec(ctx, `INSERT INTO latest (vehicle, name, time, num, str, loc)
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::float8[], $5::text[], $6::bytea[])
			ON CONFLICT (vehicle, name) DO UPDATE SET time = excluded.time, num = excluded.num, str = excluded.str, loc = excluded.loc
			WHERE excluded.time >= latest.time`,
			lat.vehicle, lat.name, lat.time, lat.num, lat.str, lat.loc); err != nil {
			return nil, fmt.Errorf("couldn't update latest values: %w", err)
		}
		// by source, in key order so that concurrent writers lock rows in the same order
		keys := make([]sourceKey, 0, len(bySource))
		for k := range bySource {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b sourceKey) int {
			return cmp.Or(cmp.Compare(a.vehicle, b.vehicle), bytes.Compare(a.source[:], b.source[:]), cmp.Compare(a.name, b.name))
		})
		var ls signalRows
		srcs := make([][]byte, len(keys))
		for i, k := range keys {
			ls.add(k.vehicle, k.name, bySource[k])
			srcs[i] = k.source.Bytes()
		}
		if _, err := tx.Exec(ctx, `INSERT INTO latest_source (vehicle, source, name, time, num, str, loc)
			SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::int[], $4::bigint[], $5::float8[], $6::text[], $7::bytea[])
			ON CONFLICT (vehicle, source, name) DO UPDATE SET time = excluded.time, num = excluded.num, str = excluded.str, loc = excluded.loc
			WHERE excluded.time >= latest_source.time`,
			ls.vehicle, srcs, ls.name, ls.time, ls.num, ls.str, ls.loc); err != nil {
			return nil, fmt.Errorf("couldn't update latest values by source: %w", err)
		}
	}
	if len(evs.vehicle) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO events (vehicle, time, name, source, duration_ns, metadata)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[]) ON CONFLICT DO NOTHING`,
			evs.vehicle, evs.time, evs.name, evs.source, evs.duration, evs.metadata); err != nil {
			return nil, fmt.Errorf("couldn't insert events: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("couldn't commit records: %w", err)
	}
	for i, r := range recs {
		k := recordKey{r.Source, r.ID}
		switch {
		case first[k] == i && inserted[k]:
			out[i] = telemetry.StatusAccepted
		case bytes.Equal(stored[k], digests[i]):
			out[i] = telemetry.StatusDuplicate
		default:
			out[i] = telemetry.StatusConflict
		}
	}
	return out, nil
}

type recordRows struct {
	source, event, signature [][]byte
	id                       []string
	vehicle                  []int64
	time, received, pairing  []int64
}

func (rs *recordRows) add(r *telemetry.Record) {
	rs.source = append(rs.source, r.Source.Bytes())
	rs.id = append(rs.id, r.ID)
	rs.vehicle = append(rs.vehicle, int64(r.VehicleID))
	rs.time = append(rs.time, r.Time)
	rs.received = append(rs.received, r.Received)
	rs.pairing = append(rs.pairing, r.Pairing.FromIndex)
	rs.event = append(rs.event, r.Event)
	rs.signature = append(rs.signature, r.Signature[:])
}

// signalRows are rows of signals or latest, as columns.
type signalRows struct {
	vehicle, time []int64
	name          []int32
	num           []*float64
	str           []*string
	loc           [][]byte
}

func (s *signalRows) add(vehicle uint64, name int32, v telemetry.Value) {
	s.vehicle, s.name, s.time = append(s.vehicle, 0), append(s.name, 0), append(s.time, 0)
	s.num, s.str, s.loc = append(s.num, nil), append(s.str, nil), append(s.loc, nil)
	s.set(len(s.vehicle)-1, vehicle, name, v)
}

func (s *signalRows) set(i int, vehicle uint64, name int32, v telemetry.Value) {
	s.vehicle[i], s.name[i], s.time[i] = int64(vehicle), name, v.Time
	s.num[i], s.str[i], s.loc[i] = nil, nil, nil
	switch v.Signal.Kind {
	case telemetry.KindNumber, telemetry.KindBool:
		n := v.Number
		s.num[i] = &n
	case telemetry.KindString, telemetry.KindStrings:
		str := v.String
		s.str[i] = &str
	case telemetry.KindLocation:
		s.loc[i] = telemetry.EncodeLocation(v.Lat, v.Lon, v.HDOP)
	}
}

// sort orders the rows by key, so that concurrent writers lock rows in the same order.
func (s *signalRows) sort() {
	idx := make([]int, len(s.vehicle))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		x, y := idx[a], idx[b]
		if s.vehicle[x] != s.vehicle[y] {
			return s.vehicle[x] < s.vehicle[y]
		}
		if s.name[x] != s.name[y] {
			return s.name[x] < s.name[y]
		}
		return s.time[x] < s.time[y]
	})
	var o signalRows
	for _, i := range idx {
		o.vehicle, o.name, o.time = append(o.vehicle, s.vehicle[i]), append(o.name, s.name[i]), append(o.time, s.time[i])
		o.num, o.str, o.loc = append(o.num, s.num[i]), append(o.str, s.str[i]), append(o.loc, s.loc[i])
	}
	*s = o
}

// nameIDs returns the ids of signal names, adding new ones.
func (t *Telemetry) nameIDs(ctx context.Context, names []string) (map[string]int32, error) {
	t.mu.Lock()
	var missing []string
	for _, n := range names {
		if _, ok := t.names[n]; !ok {
			missing = append(missing, n)
		}
	}
	t.mu.Unlock()
	if len(missing) > 0 {
		sort.Strings(missing)
		rows, err := t.pool.Query(ctx, `WITH n AS (INSERT INTO names (name) SELECT DISTINCT unnest($1::text[]) ON CONFLICT (name) DO NOTHING)
			SELECT id, name FROM names WHERE name = ANY($1)`, missing)
		if err != nil {
			return nil, fmt.Errorf("couldn't add signal names: %w", err)
		}
		found := map[string]int32{}
		for rows.Next() {
			var id int32
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, err
			}
			found[name] = id
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("couldn't add signal names: %w", err)
		}
		// A name inserted by this statement is not visible to its own SELECT: read those again.
		var again []string
		for _, n := range missing {
			if _, ok := found[n]; !ok {
				again = append(again, n)
			}
		}
		if len(again) > 0 {
			rows, err := t.pool.Query(ctx, `SELECT id, name FROM names WHERE name = ANY($1)`, again)
			if err != nil {
				return nil, fmt.Errorf("couldn't read signal names: %w", err)
			}
			for rows.Next() {
				var id int32
				var name string
				if err := rows.Scan(&id, &name); err != nil {
					rows.Close()
					return nil, err
				}
				found[name] = id
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
		t.mu.Lock()
		for n, id := range found {
			t.names[n] = id
		}
		t.mu.Unlock()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int32, len(names))
	for _, n := range names {
		id, ok := t.names[n]
		if !ok {
			return nil, fmt.Errorf("signal name %q has no id", n)
		}
		out[n] = id
	}
	return out, nil
}

// monthStart returns the first instant (unix ms, UTC) of the month holding ms.
func monthStart(ms int64) int64 {
	tm := time.UnixMilli(ms).UTC()
	return time.Date(tm.Year(), tm.Month(), 1, 0, 0, 0, 0, time.UTC).UnixMilli()
}

// partitioned are the tables partitioned by month: each month's partitions are created together.
var partitioned = []string{"records", "signals", "chunk_sums", "chunk_data"}

// ensurePartitions creates the monthly partitions of records, signals and chunks that months need. Creators in
// every process take the same advisory lock, so two never race on one partition.
func (t *Telemetry) ensurePartitions(ctx context.Context, months map[int64]bool) error {
	t.mu.Lock()
	var need []int64
	for m := range months {
		if !t.parts[m] {
			need = append(need, m)
		}
	}
	t.mu.Unlock()
	if len(need) == 0 {
		return nil
	}
	sort.Slice(need, func(i, j int) bool { return need[i] < need[j] })
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockPartitions); err != nil {
			return err
		}
		for _, m := range need {
			start := time.UnixMilli(m).UTC()
			end := start.AddDate(0, 1, 0).UnixMilli()
			suffix := start.Format("200601")
			if start.Year() < 0 || start.Year() > 9999 {
				return fmt.Errorf("time %d is out of range", m)
			}
			for _, table := range partitioned {
				q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s_p%s PARTITION OF %s FOR VALUES FROM (%d) TO (%d)`, table, suffix, table, m, end)
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("couldn't create partitions: %w", err)
	}
	t.mu.Lock()
	for _, m := range need {
		t.parts[m] = true
	}
	t.mu.Unlock()
	return nil
}

// noPartition is the SQLSTATE of an insert into a partitioned table without a partition for the row.
const noPartition = "23514"

// forgetPartitions forgets which months' partitions exist, so that the next write checks them again.
func (t *Telemetry) forgetPartitions() {
	t.mu.Lock()
	clear(t.parts)
	t.mu.Unlock()
}

// CountRecords returns how many records are stored.
func (t *Telemetry) CountRecords(ctx context.Context) (int64, error) {
	var n int64
	err := t.pool.QueryRow(ctx, `SELECT COUNT(*) FROM record_keys`).Scan(&n)
	return n, err
}

// Stored returns the SHA-256 digests of the event bytes stored under those of keys that are stored; it
// is the Lookup of an ingest process publishing to the stream (telemetry/stream).
func (t *Telemetry) Stored(ctx context.Context, keys []telemetry.RecordKey) (map[telemetry.RecordKey][32]byte, error) {
	srcs, ids := make([][]byte, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		srcs[i], ids[i] = k.Source.Bytes(), k.ID
	}
	rows, err := t.pool.Query(ctx, `SELECT k.source, k.id, k.digest FROM record_keys k
		JOIN unnest($1::bytea[], $2::text[]) AS u(source, id) ON k.source = u.source AND k.id = u.id`, srcs, ids)
	if err != nil {
		return nil, fmt.Errorf("couldn't look up record keys: %w", err)
	}
	defer rows.Close()
	out := map[telemetry.RecordKey][32]byte{}
	for rows.Next() {
		var src, dig []byte
		var id string
		if err := rows.Scan(&src, &id, &dig); err != nil {
			return nil, err
		}
		var d [32]byte
		copy(d[:], dig)
		out[telemetry.RecordKey{Source: common.BytesToAddress(src), ID: id}] = d
	}
	return out, rows.Err()
}
