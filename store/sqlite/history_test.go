package sqlite

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
)

// historyFixture writes random telemetry of two vehicles straight into a Telemetry store (the store
// does not check signatures; ingest does) and answers aggregations both ways.
type historyFixture struct {
	t    *testing.T
	tel  *Telemetry
	rng  *rand.Rand
	seq  int
	base time.Time
}

var historySignals = []struct {
	name string
	aggs []string
}{
	{"speed", []string{telemetry.AggAvg, telemetry.AggMin, telemetry.AggMax, telemetry.AggFirst, telemetry.AggLast, telemetry.AggMedian, telemetry.AggRand}},
	{"isIgnitionOn", []string{telemetry.AggAvg, telemetry.AggMin, telemetry.AggMax, telemetry.AggFirst, telemetry.AggLast}},
	{"powertrainType", []string{telemetry.AggFirst, telemetry.AggLast, telemetry.AggTop, telemetry.AggUnique, telemetry.AggRand}},
	{"currentLocationCoordinates", []string{telemetry.AggFirst, telemetry.AggLast, telemetry.AggMean, telemetry.AggRand}},
}

func newHistoryFixture(t *testing.T, seed uint64) *historyFixture {
	tel, err := OpenTelemetry(filepath.Join(t.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Close() })
	return &historyFixture{t: t, tel: tel, rng: rand.New(rand.NewPCG(seed, 7)),
		base: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
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
			types := []string{"ELECTRIC", "COMBUSTION", "HYBRID"}
			ev, err := telemetry.NewEvent(src, vehicle, strconv.Itoa(f.seq), at, []telemetry.EventSignal{
				{Name: "speed", Timestamp: at, Value: math.Round(f.rng.Float64()*1200) / 10},
				{Name: "isIgnitionOn", Timestamp: at, Value: f.rng.IntN(2) == 1},
				{Name: "powertrainType", Timestamp: at, Value: types[f.rng.IntN(3)]},
				{Name: "currentLocationCoordinates", Timestamp: at, Value: telemetry.Location{
					Latitude: 38 + f.rng.Float64(), Longitude: -9 + f.rng.Float64(), HDOP: 1}},
			})
			if err != nil {
				f.t.Fatal(err)
			}
			recs = append(recs, &telemetry.Record{Source: src, ID: strconv.Itoa(f.seq), VehicleID: vehicle,
				Time: at.UnixMilli(), Received: at.UnixMilli(), Event: ev})
		}
	}
	if _, err := f.tel.Write(context.Background(), recs); err != nil {
		f.t.Fatal(err)
	}
}

// answers runs a's aggregations and returns them keyed "bucket/agg".
func (f *historyFixture) answers(a telemetry.Aggregation) map[string]any {
	out := map[string]any{}
	err := NewHistory(f.tel.SignalsDB()).Aggregate(context.Background(), a, func(b int64, agg string, v any) {
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

// fold answers a with telemetry.FoldHistory over the values read from the signals table.
func (f *historyFixture) fold(a telemetry.Aggregation) map[string]any {
	out := map[string]any{}
	db := f.tel.SignalsDB()
	scan := func(yield func(t int64, v any) error) error {
		rows, err := db.Query(`SELECT s.time, s.val FROM signals s JOIN names n ON n.id = s.name WHERE s.vehicle = ? AND n.name = ? AND s.time >= ? AND s.time < ? ORDER BY s.time`,
			a.Vehicle, a.Signal, a.Lo, a.Hi)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t int64
			var v any
			if err := rows.Scan(&t, &v); err != nil {
				return err
			}
			if err := yield(t, v); err != nil {
				return err
			}
		}
		return rows.Err()
	}
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

// sameAnswer compares two answers, numbers to within rounding (sums in another order).
func sameAnswer(g, w any) bool {
	if gf, ok := g.(float64); ok {
		wf, ok := w.(float64)
		return ok && math.Abs(gf-wf) <= 1e-9*math.Max(1, math.Abs(wf))
	}
	return g == w
}

// compare checks that random windows get the same answers from the roll-ups as from the values alone,
// and returns how many of the windows could use the roll-ups.
func (f *historyFixture) compare(windows int) (rolled int) {
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
			got := f.answers(a)
			a.NoRollup = true
			want := f.answers(a)
			folded := f.fold(a)
			if fmt.Sprint(len(folded)) != fmt.Sprint(len(want)) {
				f.t.Fatalf("window %d %s: %d answers from telemetry.FoldHistory, %d from the store", i, s.name, len(folded), len(want))
			}
			for k, w := range want {
				if !sameAnswer(folded[k], w) {
					f.t.Fatalf("window %d %s %s (%+v): %v from telemetry.FoldHistory, %v from the store", i, s.name, k, a, folded[k], w)
				}
			}
			if len(got) != len(want) {
				f.t.Fatalf("window %d %s: %d answers from the roll-ups, %d from the values", i, s.name, len(got), len(want))
			}
			for k, w := range want {
				g := got[k]
				if gf, ok := g.(float64); ok {
					if wf := w.(float64); math.Abs(gf-wf) > 1e-9*math.Max(1, math.Abs(wf)) {
						f.t.Fatalf("window %d %s %s (%+v): %v from the roll-ups, %v from the values", i, s.name, k, a, g, w)
					}
					continue
				}
				if g != w {
					f.t.Fatalf("window %d %s %s (%+v): %v from the roll-ups, %v from the values", i, s.name, k, a, g, w)
				}
			}
			a.NoRollup = false
			segs, err := (&aggQuery{h: NewHistory(f.tel.SignalsDB()), a: a}).segments(context.Background())
			if err != nil {
				f.t.Fatal(err)
			}
			for _, sg := range segs {
				if sg.level >= 0 {
					rolled++
					break
				}
			}
		}
	}
	return rolled
}

// TestRollupsAnswerAsTheValuesDo writes telemetry in phases — live, backfilled into rolled-up hours,
// indexed but not rolled, rolled — and after each compares hundreds of random queries (bucket widths,
// alignments, owner eras starting mid-range) answered with roll-ups against the values alone.
func TestRollupsAnswerAsTheValuesDo(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 1)
	f.write(0, 48*time.Hour, 3000)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	f.compare(40) // everything stale: all from the values
	if _, err := f.tel.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	var stale, rows int
	f.tel.SignalsDB().QueryRow(`SELECT (SELECT COUNT(*) FROM stale), (SELECT COUNT(*) FROM rollup)`).Scan(&stale, &rows)
	if stale != 0 || rows == 0 {
		t.Fatalf("after a roll: %d stale spans, %d roll-up rows", stale, rows)
	}
	if n := f.compare(60); n == 0 {
		t.Fatal("no query used the roll-ups")
	}
	// Backfill into the rolled-up past and newer values, indexed but not rolled: the stale spans must be
	// read from the values.
	f.write(10*time.Hour, 3*time.Hour, 500)
	f.write(47*time.Hour, 4*time.Hour, 500)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	f.compare(60)
	if _, err := f.tel.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	f.compare(60)
	// Reindex rebuilds the same roll-ups.
	var before string
	f.tel.SignalsDB().QueryRow(`SELECT group_concat(vehicle||name||level||unit||cnt||total||quote(lo)||quote(hi)||ft||quote(fv)||lt||quote(lv), ';') FROM rollup`).Scan(&before)
	if _, err := f.tel.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	var after string
	f.tel.SignalsDB().QueryRow(`SELECT group_concat(vehicle||name||level||unit||cnt||total||quote(lo)||quote(hi)||ft||quote(fv)||lt||quote(lv), ';') FROM rollup`).Scan(&after)
	if before != after || before == "" {
		t.Fatalf("reindex changed the roll-ups (%d bytes before, %d after)", len(before), len(after))
	}
}

// TestOpeningASignalsFileWithoutRollupsRollsItUp checks the upgrade of a signals file made before
// roll-ups: every vehicle and signal is marked stale, and the first roll computes them.
func TestOpeningASignalsFileWithoutRollupsRollsItUp(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 2)
	f.write(0, 24*time.Hour, 500)
	if _, err := f.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	db := f.tel.SignalsDB()
	if _, err := db.Exec(`DELETE FROM rollup; DELETE FROM stale; DELETE FROM meta WHERE key = 'rollup_version'`); err != nil {
		t.Fatal(err)
	}
	if err := migrateRollups(ctx, f.tel); err != nil {
		t.Fatal(err)
	}
	var stale int
	db.QueryRow(`SELECT COUNT(*) FROM stale`).Scan(&stale)
	if stale != 2*len(historySignals) {
		t.Fatalf("%d stale spans after the upgrade, want %d", stale, 2*len(historySignals))
	}
	if _, err := f.tel.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.compare(40); n == 0 {
		t.Fatal("no query used the roll-ups")
	}
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
	var values int
	f.tel.SignalsDB().QueryRow(`SELECT COUNT(*) FROM signals WHERE vehicle = 1`).Scan(&values)
	if values != 2*(1+30+45) {
		t.Fatalf("%d values indexed from the compressed events, want %d", values, 2*(1+30+45))
	}
}
