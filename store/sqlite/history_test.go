package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

// historyFixture writes random telemetry of two vehicles straight into a Telemetry store (the store
// does not check signatures; ingest does), on a clock the test moves, and keeps the values it wrote, the
// first at each millisecond, as the reference the store's answers are held to.
type historyFixture struct {
	t    *testing.T
	tel  *Telemetry
	rng  *rand.Rand
	seq  int
	base time.Time
	now  time.Time
	path string
	ref  map[refKey]map[int64]any // the first value written at each time
}

type refKey struct {
	vehicle uint64
	signal  string
}

var historySignals = []struct {
	name string
	aggs []string
}{
	{"speed", []string{telemetry.AggAvg, telemetry.AggMin, telemetry.AggMax, telemetry.AggFirst, telemetry.AggLast, telemetry.AggCount, telemetry.AggMedian, telemetry.AggRand}},
	{"isIgnitionOn", []string{telemetry.AggAvg, telemetry.AggMin, telemetry.AggMax, telemetry.AggFirst, telemetry.AggLast}},
	{"powertrainType", []string{telemetry.AggFirst, telemetry.AggLast, telemetry.AggTop, telemetry.AggUnique, telemetry.AggRand}},
	{"currentLocationCoordinates", []string{telemetry.AggFirst, telemetry.AggLast, telemetry.AggMean, telemetry.AggRand}},
}

func newHistoryFixture(t *testing.T, seed uint64) *historyFixture {
	f := &historyFixture{t: t, rng: rand.New(rand.NewPCG(seed, 7)), base: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		ref: map[refKey]map[int64]any{}}
	f.now = f.base.Add(1000 * time.Hour)
	f.path = filepath.Join(t.TempDir(), "telemetry.db")
	f.open(f.path)
	return f
}

// open opens the store at path on the fixture's clock.
func (f *historyFixture) open(path string) {
	tel, err := OpenTelemetry(path, telemetry.DefaultCatalog)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { tel.Close() })
	tel.Now = func() time.Time { return f.now }
	f.tel = tel
}

// write stores n records per vehicle at random times in [from, from+span), each with every signal.
func (f *historyFixture) write(from, span time.Duration, n int) {
	var recs []*telemetry.Record
	for vehicle := uint64(1); vehicle <= 2; vehicle++ {
		src := common.BigToAddress(new(big.Int).SetUint64(vehicle))
		for range n {
			f.seq++
			at := f.base.Add(from + time.Duration(f.rng.Int64N(int64(span))))
			at = at.Truncate(time.Millisecond)
			if f.rng.IntN(50) == 0 { // now and then a second value at a time taken
				at = at.Truncate(time.Second)
			}
			types := []string{"ELECTRIC", "COMBUSTION", "HYBRID"}
			speed, on := math.Round(f.rng.Float64()*1200)/10, f.rng.IntN(2) == 1
			pt := types[f.rng.IntN(3)]
			lat, lon := 38+f.rng.Float64(), -9+f.rng.Float64()
			ev, err := telemetry.NewEvent(src, vehicle, strconv.Itoa(f.seq), at, []telemetry.EventSignal{
				{Name: "speed", Timestamp: at, Value: speed},
				{Name: "isIgnitionOn", Timestamp: at, Value: on},
				{Name: "powertrainType", Timestamp: at, Value: pt},
				{Name: "currentLocationCoordinates", Timestamp: at, Value: telemetry.Location{Latitude: lat, Longitude: lon, HDOP: 1}},
			})
			if err != nil {
				f.t.Fatal(err)
			}
			recs = append(recs, &telemetry.Record{Source: src, ID: strconv.Itoa(f.seq), VehicleID: vehicle,
				Time: at.UnixMilli(), Received: at.UnixMilli(), Event: ev})
			f.keep(vehicle, "speed", at, speed)
			f.keep(vehicle, "isIgnitionOn", at, map[bool]float64{false: 0, true: 1}[on])
			f.keep(vehicle, "powertrainType", at, pt)
			f.keep(vehicle, "currentLocationCoordinates", at, string(telemetry.EncodeLocation(lat, lon, 1)))
		}
	}
	if _, err := f.tel.Write(context.Background(), recs); err != nil {
		f.t.Fatal(err)
	}
}

func (f *historyFixture) keep(vehicle uint64, signal string, at time.Time, v any) {
	k := refKey{vehicle, signal}
	if f.ref[k] == nil {
		f.ref[k] = map[int64]any{}
	}
	if _, ok := f.ref[k][at.UnixMilli()]; !ok {
		f.ref[k][at.UnixMilli()] = v
	}
}

// values hands over the reference values of a signal in [lo, hi) in time order.
func (f *historyFixture) values(vehicle uint64, signal string, lo, hi int64, yield func(t int64, v any) error) error {
	m := f.ref[refKey{vehicle, signal}]
	ts := make([]int64, 0, len(m))
	for t := range m {
		if t >= lo && t < hi {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	for _, t := range ts {
		v := m[t]
		if s, ok := v.(string); ok && signal == "currentLocationCoordinates" {
			v = []byte(s)
		}
		if err := yield(t, v); err != nil {
			return err
		}
	}
	return nil
}

// answers runs a's aggregations and returns them keyed "bucket/agg".
func (f *historyFixture) answers(a telemetry.Aggregation) map[string]any {
	out := map[string]any{}
	err := f.tel.Aggregate(context.Background(), a, func(b int64, agg string, v any) {
		k := fmt.Sprintf("%d/%s", b, agg)
		if _, dup := out[k]; dup {
			f.t.Fatalf("%s put twice", k)
		}
		if bs, ok := v.([]byte); ok {
			v = string(bs)
		}
		out[k] = v
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// fold answers a with telemetry.FoldHistory over the reference values.
func (f *historyFixture) fold(a telemetry.Aggregation) map[string]any {
	out := map[string]any{}
	scan := func(yield func(t int64, v any) error) error { return f.values(a.Vehicle, a.Signal, a.Lo, a.Hi, yield) }
	err := telemetry.FoldHistory(a, scan, func(b int64, agg string, v any) {
		if bs, ok := v.([]byte); ok {
			v = string(bs)
		}
		out[fmt.Sprintf("%d/%s", b, agg)] = v
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// compare checks that random windows get from the store, with chunk summaries and without, exactly the
// answers of telemetry.FoldHistory over the values written (AVG to the bit).
func (f *historyFixture) compare(windows int) {
	steps := []time.Duration{time.Second, 7 * time.Second, time.Minute, 90 * time.Second, 5 * time.Minute,
		15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour}
	aligns := []time.Duration{time.Millisecond, time.Minute, 5 * time.Minute, time.Hour, 24 * time.Hour}
	for i := range windows {
		step := steps[f.rng.IntN(len(steps))]
		align := aligns[f.rng.IntN(len(aligns))]
		from := f.base.Add(time.Duration(f.rng.Int64N(int64(72*time.Hour))) - 12*time.Hour).Truncate(align)
		span := time.Duration(f.rng.Int64N(int64(96 * time.Hour)))
		if step < time.Minute {
			span /= 100
		}
		lo := from
		if f.rng.IntN(3) == 0 { // an owner's era starting inside the range
			lo = from.Add(time.Duration(f.rng.Int64N(int64(span) + 1)))
		}
		for _, s := range historySignals {
			sig, _ := telemetry.DefaultCatalog.Lookup(s.name)
			vehicle := uint64(1 + f.rng.IntN(2))
			a := telemetry.Aggregation{Vehicle: vehicle, Signal: s.name, Kind: sig.Kind, From: from.UnixMilli(),
				Step: step.Milliseconds(), Lo: lo.UnixMilli(), Hi: from.Add(span).UnixMilli(), Aggs: s.aggs}
			want := f.fold(a)
			for _, noSummaries := range []bool{false, true} {
				a.NoRollup = noSummaries
				got := f.answers(a)
				if len(got) != len(want) {
					f.t.Fatalf("window %d %s (%+v): %d answers from the store, %d from telemetry.FoldHistory", i, s.name, a, len(got), len(want))
				}
				for k, w := range want {
					if got[k] != w {
						f.t.Fatalf("window %d %s %s (%+v): %v from the store, %v from telemetry.FoldHistory", i, s.name, k, a, got[k], w)
					}
				}
			}
		}
	}
}

// counts returns how many values are open (one per signal and millisecond) and in chunks, and how many
// chunks there are.
func (f *historyFixture) counts() (rows, chunked, chunks int) {
	if err := f.tel.SignalsDB().QueryRow(`SELECT (SELECT COALESCE(SUM(cnt), 0) FROM chunk_sums), (SELECT COUNT(*) FROM chunk_sums)`).Scan(&chunked, &chunks); err != nil {
		f.t.Fatal(err)
	}
	for vehicle := uint64(1); vehicle <= 2; vehicle++ {
		open, err := openValuesByName(context.Background(), f.tel.SignalsDB(), vehicle, math.MinInt64/2, math.MaxInt64)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, pts := range open {
			rows += len(pts)
		}
	}
	return rows, chunked, chunks
}

// erase runs job's deletion in batches to its end, then finishes it.
func (f *historyFixture) erase(job telemetry.DeleteJob) {
	ctx := context.Background()
	for {
		_, done, err := f.tel.DeleteBatch(ctx, job, 10_000)
		if err != nil {
			f.t.Fatal(err)
		}
		if done {
			break
		}
	}
	if err := f.tel.Finish(ctx, job, f.base.Add(24*time.Hour).UnixMilli()); err != nil {
		f.t.Fatal(err)
	}
}

// total is how many reference values there are.
func (f *historyFixture) total() int {
	n := 0
	for _, m := range f.ref {
		n += len(m)
	}
	return n
}

// chunkTables returns the chunk tables' contents as text.
func (f *historyFixture) chunkTables() string {
	var out string
	if err := f.tel.SignalsDB().QueryRow(`SELECT COALESCE((SELECT group_concat(vehicle||'/'||name||'/'||start||'/'||end||'/'||cnt||'/'||hex(xsum)||'/'||quote(lo)||'/'||quote(hi)||'/'||quote(fv)||'/'||quote(lv)||'/'||hex(minutes), ';') FROM chunk_sums), '')
		|| '|' || COALESCE((SELECT group_concat(x, ';') FROM (SELECT vehicle||'/'||name||'/'||start||'/'||hex(data) AS x FROM chunk_data ORDER BY vehicle, name, start)), '')
		|| '|' || COALESCE((SELECT group_concat(x, ';') FROM (SELECT vehicle||'/'||name||'/'||start||'/'||hex(slots) AS x FROM chunk_slots ORDER BY vehicle, name, start)), '')`).Scan(&out); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// TestAnswersAreFoldHistorysOverTheValuesWritten writes telemetry in phases — some hours closed (chunks)
// and some open (rows), a backfill into closed hours and into open ones, the open hours sealed, a
// reindex — and after each compares hundreds of random queries (bucket widths, alignments, owner eras
// starting mid-range) with telemetry.FoldHistory over the values written.
func TestAnswersAreFoldHistorysOverTheValuesWritten(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 1)
	f.now = f.base.Add(30 * time.Hour)
	f.write(0, 48*time.Hour, 3000)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, chunked, _ := f.counts(); rows == 0 || chunked == 0 || rows+chunked != f.total() {
		t.Fatalf("%d values in rows and %d in chunks, want some of each and %d in all", rows, chunked, f.total())
	}
	f.compare(40)
	// Backfill into closed hours (merged into their chunks) and into open ones.
	f.write(10*time.Hour, 3*time.Hour, 500)
	f.write(29*time.Hour, 4*time.Hour, 500)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	f.compare(40)
	// Two hours later the hours up to 31h are closed: sealing moves their rows into chunks.
	f.now = f.base.Add(32*time.Hour + SealGrace)
	if n, err := f.tel.Seal(ctx); err != nil || n == 0 {
		t.Fatalf("sealed %d groups: %v", n, err)
	}
	if rows, chunked, _ := f.counts(); rows == 0 || rows+chunked != f.total() {
		t.Fatalf("%d values in rows and %d in chunks, want some rows and %d in all", rows, chunked, f.total())
	}
	f.compare(40)
	f.now = f.base.Add(100 * time.Hour)
	if _, err := f.tel.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, chunked, _ := f.counts(); rows != 0 || chunked != f.total() {
		t.Fatalf("after sealing every hour: %d values in rows and %d in chunks, want %d in chunks", rows, chunked, f.total())
	}
	f.compare(40)
	// Reindex rebuilds the same chunks.
	before := f.chunkTables()
	if _, err := f.tel.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	if after := f.chunkTables(); before != after {
		t.Fatalf("reindex changed the chunks (%d bytes before, %d after)", len(before), len(after))
	}
}

// TestOpeningASignalsFileOfRowsSealsIt checks the upgrade of a signals file of the layouts before a row
// per record: a row per value in the signals table, with chunks (chunk_version 1) or with roll-up tables
// (before). Opening it moves the values of closed hours into chunks and those of open hours into
// open_values, drops the old tables, and every answer stays the same.
func TestOpeningASignalsFileOfRowsSealsIt(t *testing.T) {
	for _, rollups := range []bool{false, true} {
		t.Run(fmt.Sprintf("roll-ups %v", rollups), func(t *testing.T) { testOpeningASignalsFileOfRows(t, rollups) })
	}
}

func testOpeningASignalsFileOfRows(t *testing.T, rollups bool) {
	ctx := context.Background()
	f := newHistoryFixture(t, 2)
	f.now = f.base // every hour open: rows only
	f.write(0, 24*time.Hour, 500)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, chunked, _ := f.counts(); rows != f.total() || chunked != 0 {
		t.Fatalf("%d values in rows and %d in chunks, want all %d in rows", rows, chunked, f.total())
	}
	// Rewrite the open values as the layout before kept them: a row per value, the first at each time.
	db := f.tel.SignalsDB()
	if _, err := db.Exec(`CREATE TABLE signals (vehicle INTEGER NOT NULL, name INTEGER NOT NULL, time INTEGER NOT NULL, val,
	PRIMARY KEY (vehicle, name, time)) WITHOUT ROWID;
CREATE TABLE unsealed (vehicle INTEGER NOT NULL, name INTEGER NOT NULL, hour INTEGER NOT NULL, PRIMARY KEY (hour, vehicle, name)) WITHOUT ROWID;`); err != nil {
		t.Fatal(err)
	}
	for vehicle := uint64(1); vehicle <= 2; vehicle++ {
		err := eachOpenRow(ctx, db, vehicle, 0, math.MinInt64/2, math.MaxInt64, func(hour, _ int64, vals []openValue) error {
			for _, v := range vals {
				if _, err := db.Exec(`INSERT INTO signals (vehicle, name, time, val) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, vehicle, v.name, v.p.T, v.p.V); err != nil {
					return err
				}
				if _, err := db.Exec(`INSERT OR IGNORE INTO unsealed (vehicle, name, hour) VALUES (?, ?, ?)`, vehicle, v.name, hour); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// and a value of the hour that is open now, which must stay open
	speed, _ := telemetry.DefaultCatalog.Lookup("speed")
	now := time.Now().Truncate(time.Millisecond)
	var speedID int64
	if err := db.QueryRow(`SELECT id FROM names WHERE name = ?`, speed.Name).Scan(&speedID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO signals (vehicle, name, time, val) VALUES (1, ?, ?, 42.5)`, speedID, now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	f.keep(1, "speed", now, 42.5)
	// and the latest values as rows per signal
	latestBefore := map[string][]telemetry.LatestRow{}
	if _, err := db.Exec(`CREATE TABLE latest (vehicle INTEGER NOT NULL, name INTEGER NOT NULL, time INTEGER NOT NULL, val ANY,
	PRIMARY KEY (vehicle, name)) WITHOUT ROWID;
CREATE TABLE latest_source (vehicle INTEGER NOT NULL, source BLOB NOT NULL, name INTEGER NOT NULL, time INTEGER NOT NULL, val ANY,
	PRIMARY KEY (vehicle, source, name)) WITHOUT ROWID;`); err != nil {
		t.Fatal(err)
	}
	for vehicle := uint64(1); vehicle <= 2; vehicle++ {
		src := common.BigToAddress(new(big.Int).SetUint64(vehicle))
		for _, source := range [][]byte{nil, src.Bytes()} {
			ns, err := readNewest(ctx, db, vehicle, source)
			if err != nil || len(ns) == 0 {
				t.Fatalf("vehicle %d has no latest values (%v)", vehicle, err)
			}
			for _, n := range ns {
				q := `INSERT INTO latest (vehicle, name, time, val) VALUES (?, ?, ?, ?)`
				args := []any{vehicle, n.name, n.t, n.v}
				if source != nil {
					q, args = `INSERT INTO latest_source (vehicle, source, name, time, val) VALUES (?, ?, ?, ?, ?)`, []any{vehicle, source, n.name, n.t, n.v}
				}
				if _, err := db.Exec(q, args...); err != nil {
					t.Fatal(err)
				}
			}
			var rows []telemetry.LatestRow
			if source == nil {
				rows, err = f.tel.Latest(ctx, vehicle, 0)
			} else {
				rows, err = f.tel.LatestFrom(ctx, vehicle, src, 0)
			}
			if err != nil {
				t.Fatal(err)
			}
			latestBefore[fmt.Sprint(vehicle, source)] = rows
		}
	}
	if _, err := db.Exec(`DROP TABLE open_values; DROP TABLE open_hours; DROP TABLE latest_values; DROP TABLE latest_sources;
UPDATE meta SET value = 1 WHERE key = 'chunk_version'`); err != nil {
		t.Fatal(err)
	}
	if rollups {
		if _, err := db.Exec(`CREATE TABLE rollup (vehicle INTEGER NOT NULL, name INTEGER NOT NULL, level INTEGER NOT NULL, unit INTEGER NOT NULL,
	cnt INTEGER NOT NULL, total REAL, lo ANY, hi ANY, ft INTEGER NOT NULL, fv ANY, lt INTEGER NOT NULL, lv ANY, PRIMARY KEY (vehicle, name, level, unit)) WITHOUT ROWID;
CREATE TABLE stale (vehicle INTEGER NOT NULL, name INTEGER NOT NULL, since INTEGER NOT NULL, until INTEGER NOT NULL, PRIMARY KEY (vehicle, name)) WITHOUT ROWID;
CREATE TABLE activity (vehicle INTEGER NOT NULL, level INTEGER NOT NULL, unit INTEGER NOT NULL, cnt INTEGER NOT NULL, sigs INTEGER NOT NULL,
	mins INTEGER NOT NULL, lowcnt INTEGER NOT NULL, lowsigs INTEGER NOT NULL, PRIMARY KEY (vehicle, level, unit)) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('rollup_version', 2);
DELETE FROM meta WHERE key = 'chunk_version';`); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.tel.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(f.path) // on the real clock: the fixture's hours are closed, now's is not
	if rows, chunked, _ := f.counts(); rows != 1 || chunked != f.total()-1 {
		t.Fatalf("after the upgrade: %d values in rows and %d in chunks, want 1 and %d", rows, chunked, f.total()-1)
	}
	var left int
	if err := f.tel.SignalsDB().QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('rollup', 'stale', 'activity', 'signals', 'unsealed', 'latest', 'latest_source')`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d old tables left (%v)", left, err)
	}
	for vehicle := uint64(1); vehicle <= 2; vehicle++ {
		src := common.BigToAddress(new(big.Int).SetUint64(vehicle))
		for _, source := range [][]byte{nil, src.Bytes()} {
			var rows []telemetry.LatestRow
			var err error
			if source == nil {
				rows, err = f.tel.Latest(ctx, vehicle, 0)
			} else {
				rows, err = f.tel.LatestFrom(ctx, vehicle, src, 0)
			}
			if want := latestBefore[fmt.Sprint(vehicle, source)]; err != nil || fmt.Sprint(rows) != fmt.Sprint(want) {
				t.Fatalf("the latest values of vehicle %d (source %x) after the upgrade: %v (%v), want %v", vehicle, source, rows, err, want)
			}
		}
	}
	var got []any
	s := sig{vehicle: 1, name: speedID, signal: speed.Name, kind: speed.Kind}
	if err := eachValue(ctx, f.tel.SignalsDB(), s, now.UnixMilli(), now.UnixMilli()+1, func(p series.Point) error {
		got = append(got, p.V)
		return nil
	}); err != nil || len(got) != 1 || got[0] != 42.5 {
		t.Fatalf("the open value after the upgrade: %v (%v), want [42.5]", got, err)
	}
	f.compare(40)
}

// TestLatestIsNeverStaleAfterAnIndexCommit reads a vehicle's latest values through the cache between
// writes, indexing and a reindex, and compares each answer with the table's.
func TestLatestIsNeverStaleAfterAnIndexCommit(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 3)
	check := func(when string) {
		t.Helper()
		got, err := f.tel.Latest(ctx, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		want, err := QueryLatest(ctx, f.tel.SignalsDB(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || len(want) == 0 {
			t.Fatalf("%s: the cache has %v, the table %v", when, got, want)
		}
	}
	for i := range 5 {
		f.write(time.Duration(i)*time.Hour, time.Hour, 50)
		if _, err := f.tel.Index(ctx); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("after write %d", i))
		check(fmt.Sprintf("after write %d, cached", i))
	}
	if _, err := f.tel.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	check("after reindex")
}

// TestIndexingAfterAnErasureBringsNoErasedValueBack: the indexer keeps the latest-value rows it wrote
// (latestRows) and merges the next values into them without reading them back. The newest values of a
// vehicle erased, then older values indexed: the latest values are the older ones, per vehicle and per
// source — none of the erased ones merged back in from what the indexer kept.
func TestIndexingAfterAnErasureBringsNoErasedValueBack(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 5)
	f.write(0, time.Hour, 50)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	f.erase(telemetry.DeleteJob{Key: telemetry.ErasureJob(1, 0), Vehicle: 1, From: f.base.UnixMilli(), To: f.base.Add(time.Hour).UnixMilli()})
	f.write(-2*time.Hour, 30*time.Minute, 5)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	src := common.BigToAddress(big.NewInt(1))
	for _, read := range []struct {
		name   string
		latest func() ([]telemetry.LatestRow, error)
	}{
		{"per vehicle", func() ([]telemetry.LatestRow, error) { return QueryLatest(ctx, f.tel.SignalsDB(), 1) }},
		{"per source", func() ([]telemetry.LatestRow, error) { return f.tel.LatestFrom(ctx, 1, src, math.MinInt64) }},
	} {
		rows, err := read.latest()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 4 {
			t.Fatalf("%s: %d latest values, want the 4 signals written after the erasure", read.name, len(rows))
		}
		for _, r := range rows {
			if r.Time >= f.base.UnixMilli() {
				t.Fatalf("%s: the latest %s is at %d, in the erased range from %d", read.name, r.Name, r.Time, f.base.UnixMilli())
			}
		}
	}
}

// TestEventsRoundTripCompressedOrNot stores small and large events (which are compressed), reads each
// back byte for byte, and checks that a duplicate of a compressed event is recognised as one.
func TestEventsRoundTripCompressedOrNot(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 4)
	src := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	var recs []*telemetry.Record
	for i, samples := range []int{1, 30, 45} {
		var sigs []telemetry.EventSignal
		at := f.base.Add(time.Duration(i) * time.Hour)
		for s := range samples {
			ts := at.Add(time.Duration(s) * time.Second)
			sigs = append(sigs, telemetry.EventSignal{Name: "speed", Timestamp: ts, Value: float64(s)},
				telemetry.EventSignal{Name: "powertrainTransmissionTravelledDistance", Timestamp: ts, Value: 1000 + float64(s)/10})
		}
		ev, err := telemetry.NewEvent(src, 1, fmt.Sprint("e", i), at, sigs)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &telemetry.Record{Source: src, ID: fmt.Sprint("e", i), VehicleID: 1, Time: at.UnixMilli(), Event: ev})
	}
	if st, err := f.tel.Write(ctx, recs); err != nil || st[0] != telemetry.StatusAccepted || st[2] != telemetry.StatusAccepted {
		t.Fatal(st, err)
	}
	compressed := 0
	for _, r := range recs {
		var stored []byte
		if err := f.tel.DB().QueryRow(`SELECT event FROM records WHERE id = ?`, r.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if len(stored) < len(r.Event) {
			compressed++
		}
		ev, err := DecodeEvent(stored)
		if err != nil || string(ev) != string(r.Event) {
			t.Fatalf("%s: stored %d bytes, read back %d, want %d (%v)", r.ID, len(stored), len(ev), len(r.Event), err)
		}
	}
	if compressed != 2 {
		t.Fatalf("%d of the events are stored compressed, want the two large ones", compressed)
	}
	if st, err := f.tel.Write(ctx, recs[2:]); err != nil || st[0] != telemetry.StatusDuplicate {
		t.Fatalf("the same large event again: %v %v", st, err)
	}
	other := *recs[2]
	other.Event = append([]byte(nil), other.Event...)
	other.Event[len(other.Event)-3] = '9'
	if st, err := f.tel.Write(ctx, []*telemetry.Record{&other}); err != nil || st[0] != telemetry.StatusConflict {
		t.Fatalf("other bytes under the same id: %v %v", st, err)
	}
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	rows, chunked, _ := f.counts()
	values := rows + chunked
	if values != 2*(1+30+45) {
		t.Fatalf("%d values indexed from the compressed events, want %d", values, 2*(1+30+45))
	}
}

// TestReadsWhileSealingCountEveryValueOnce reads a day of values again and again while Seal moves them,
// hour by hour, from rows into chunks: each read sees them in one state or the other, never both or
// neither.
func TestReadsWhileSealingCountEveryValueOnce(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 5)
	f.now = f.base
	f.write(0, 24*time.Hour, 2000)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	want := float64(len(f.ref[refKey{1, "speed"}]))
	a := telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber, From: f.base.UnixMilli(), Step: 24 * time.Hour.Milliseconds(),
		Lo: f.base.UnixMilli(), Hi: f.base.Add(24 * time.Hour).UnixMilli(), Aggs: []string{telemetry.AggCount}}
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for reads := 0; ; reads++ {
			select {
			case <-done:
				return
			default:
			}
			var got float64
			if err := f.tel.Aggregate(ctx, a, func(_ int64, _ string, v any) { got = v.(float64) }); err != nil {
				errs <- err
				return
			}
			if got != want {
				errs <- fmt.Errorf("read %d counted %v values, want %v", reads, got, want)
				return
			}
		}
	}()
	for h := 1; h <= 25; h++ {
		f.now = f.base.Add(time.Duration(h)*time.Hour + SealGrace)
		if _, err := f.tel.Seal(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if rows, _, _ := f.counts(); rows != 0 {
		t.Fatalf("%d rows left after sealing every hour", rows)
	}
}

// TestErasedChunksLeaveNoBytesInTheFile erases a range of values kept in chunks — one chunk inside it,
// one straddling its end — and checks that neither chunk's bytes are left in signals.db afterwards.
func TestErasedChunksLeaveNoBytesInTheFile(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 6)
	f.write(0, 6*time.Hour, 3000)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	blob := func(hour time.Duration) []byte {
		t.Helper()
		var b []byte
		if err := f.tel.SignalsDB().QueryRow(`SELECT d.data FROM chunk_data d JOIN names n ON n.id = d.name
WHERE d.vehicle = 1 AND n.name = 'currentLocationCoordinates' AND d.start >= ? AND d.start < ?`,
			f.base.Add(hour).UnixMilli(), f.base.Add(hour+time.Hour).UnixMilli()).Scan(&b); err != nil {
			t.Fatal(err)
		}
		if len(b) < 100 {
			t.Fatalf("a chunk of %d bytes is too short to look for", len(b))
		}
		return b
	}
	inside, straddling := blob(2*time.Hour), blob(3*time.Hour)
	job := telemetry.DeleteJob{Key: telemetry.ErasureJob(1, 0), Vehicle: 1, From: f.base.Add(2 * time.Hour).UnixMilli(),
		To: f.base.Add(3*time.Hour + 30*time.Minute).UnixMilli()}
	f.erase(job)
	if _, err := f.tel.SignalsDB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(filepath.Dir(f.path), SignalsFile))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"inside the range": inside, "straddling its end": straddling} {
		for i := 0; i+48 <= len(b); i += 48 { // a blob spans overflow pages: look for pieces of it
			if bytes.Contains(file, b[i:i+48]) {
				t.Errorf("bytes %d to %d of the chunk %s are still in the file", i, i+48, name)
				break
			}
		}
	}
	if rows, chunked, _ := f.counts(); rows != 0 || chunked == 0 {
		t.Fatalf("%d rows and %d values in chunks left", rows, chunked)
	}
}

// TestIndexingSeveralChunksOfRecords indexes more records than one indexing transaction takes
// (IndexChunk), the next chunk parsed while the one before is written, and checks every value.
func TestIndexingSeveralChunksOfRecords(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 7)
	f.now = f.base.Add(12 * time.Hour)
	f.write(0, 24*time.Hour, IndexChunk) // IndexChunk records of each of two vehicles: two chunks
	n, err := f.tel.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2*IndexChunk {
		t.Fatalf("indexed %d records, want %d", n, 2*IndexChunk)
	}
	if rows, chunked, _ := f.counts(); rows == 0 || chunked == 0 || rows+chunked != f.total() {
		t.Fatalf("%d values in rows and %d in chunks, want some of each and %d in all", rows, chunked, f.total())
	}
	f.compare(20)
}

// A write wakes the indexer: with a tick of an hour, what is written is in the latest values soon (it
// waited for the tick before, up to a second in a node).
func TestAWriteWakesTheIndexer(t *testing.T) {
	f := newHistoryFixture(t, 5)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.tel.RunIndexer(ctx, time.Hour, slog.New(slog.DiscardHandler)); close(done) }()
	defer func() { cancel(); <-done }()
	for i := range 3 {
		f.write(time.Duration(i)*time.Hour, time.Hour, 5)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			lag, err := f.tel.Lag(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if lag == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("write %d: %d records not indexed after 10 s", i, lag)
			}
		}
	}
}
