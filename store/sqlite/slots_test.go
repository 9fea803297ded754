package sqlite

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

// denseSlots writes two hours dense enough for slot summaries (1,500 records per vehicle and hour, from
// 05:00) into a fixture whose clock has closed them, and indexes them.
func denseSlots(t *testing.T, seed uint64) *historyFixture {
	f := newHistoryFixture(t, seed)
	f.now = f.base.Add(30 * time.Hour)
	f.write(5*time.Hour, 2*time.Hour, 3000)
	if _, err := f.tel.Index(context.Background()); err != nil {
		t.Fatal(err)
	}
	var slotted int
	if err := f.tel.SignalsDB().QueryRow(`SELECT COUNT(*) FROM chunk_slots`).Scan(&slotted); err != nil {
		t.Fatal(err)
	}
	if slotted != 8 { // speed and isIgnitionOn of two vehicles in two hours
		t.Fatalf("%d chunks with slot summaries, want 8", slotted)
	}
	return f
}

// compareDense holds aggregations of the dense hours in buckets of many widths and alignments to
// telemetry.FoldHistory over the values written.
func (f *historyFixture) compareDense() {
	for _, step := range []time.Duration{time.Minute, 150 * time.Second, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, time.Hour} {
		for _, shift := range []time.Duration{0, 5 * time.Minute, time.Minute, 7 * time.Second} {
			for _, s := range historySignals {
				sig, _ := telemetry.DefaultCatalog.Lookup(s.name)
				from := f.base.Add(5*time.Hour - 30*time.Minute + shift)
				a := telemetry.Aggregation{Vehicle: 2, Signal: s.name, Kind: sig.Kind, From: from.UnixMilli(), Step: step.Milliseconds(),
					Lo: from.UnixMilli(), Hi: from.Add(3 * time.Hour).UnixMilli(), Aggs: s.aggs}
				want, got := f.fold(a), f.answers(a)
				if len(got) != len(want) {
					f.t.Fatalf("%s in %s buckets shifted %s: %d answers, want %d", s.name, step, shift, len(got), len(want))
				}
				for k, w := range want {
					if got[k] != w {
						f.t.Fatalf("%s in %s buckets shifted %s, %s: %v, want %v", s.name, step, shift, k, got[k], w)
					}
				}
			}
		}
	}
}

// compareDenseRuns holds the runs of the dense hours' speed (one class, slots taken whole, or many) to
// telemetry.FoldRuns over the values written.
func (f *historyFixture) compareDenseRuns() {
	lo := f.base.Add(4 * time.Hour).UnixMilli()
	for _, q := range []telemetry.RunsQuery{{Cuts: []float64{1000}}, {Cuts: []float64{1000}, MaxGap: 600_000}, {Cuts: []float64{1000}, MaxGap: 2000},
		{Cuts: []float64{60}}} {
		q.Vehicle, q.Signal, q.Lo, q.Hi = 1, "speed", lo, lo+4*series.HourMs
		want, err := telemetry.FoldRuns(q, func(yield func(t int64, v float64) error) error {
			return f.values(1, "speed", q.Lo, q.Hi, func(t int64, v any) error { return yield(t, v.(float64)) })
		})
		if err != nil {
			f.t.Fatal(err)
		}
		got, err := f.tel.Runs(context.Background(), q)
		if err != nil {
			f.t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			f.t.Fatalf("runs %+v: %d runs, want %d", q, len(got), len(want))
		}
	}
}

func TestSlotSummariesAnswerBucketsOfFiveMinutesExactly(t *testing.T) {
	f := denseSlots(t, 11)
	f.compareDense()
	f.compareDenseRuns()
	// Late values into the dense hours rewrite their chunks and slots.
	f.write(5*time.Hour+17*time.Minute, time.Minute, 40)
	if _, err := f.tel.Index(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.compareDense()
}

// corruptDense damages one of vehicle 2's speed chunks of 05:00: its data or its slot summaries.
func (f *historyFixture) corruptDense(table, col string) int64 {
	db := f.tel.SignalsDB()
	var start int64
	if err := db.QueryRow(`SELECT c.start FROM chunk_sums c JOIN names n ON n.id = c.name WHERE c.vehicle = 2 AND n.name = 'speed'
		AND c.start >= ? ORDER BY c.start LIMIT 1`, f.base.Add(5*time.Hour).UnixMilli()).Scan(&start); err != nil {
		f.t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE `+table+` SET `+col+` = substr(`+col+`, 1, length(`+col+`) / 2)
		WHERE vehicle = 2 AND name = (SELECT id FROM names WHERE name = 'speed') AND start = ?`, start); err != nil {
		f.t.Fatal(err)
	}
	return start
}

func TestBucketsOfFiveMinutesDoNotDecodeAChunkWithSlots(t *testing.T) {
	f := denseSlots(t, 12)
	start := f.corruptDense("chunk_data", "data")
	h := f.base.Add(5 * time.Hour).UnixMilli()
	agg := func(step, lo int64) error {
		a := telemetry.Aggregation{Vehicle: 2, Signal: "speed", Kind: telemetry.KindNumber, From: h, Step: step, Lo: lo, Hi: h + series.HourMs,
			Aggs: []string{telemetry.AggAvg, telemetry.AggMax, telemetry.AggFirst}}
		return f.tel.Aggregate(context.Background(), a, func(int64, string, any) {})
	}
	if err := agg(series.SlotMs, h); err != nil {
		t.Errorf("five-minute buckets decoded the chunk: %v", err)
	}
	if err := agg(2*series.SlotMs, h); err != nil {
		t.Errorf("ten-minute buckets decoded the chunk: %v", err)
	}
	for _, tc := range []struct {
		name     string
		step, lo int64
	}{{"buckets of a minute", 60_000, h}, {"a range that starts inside a slot", series.SlotMs, h + 1000}} {
		err := agg(tc.step, tc.lo)
		if err == nil || !strings.Contains(err.Error(), "speed of vehicle 2") || !strings.Contains(err.Error(), "from "+strconv.FormatInt(start, 10)) {
			t.Errorf("%s: %v, want an error naming the damaged chunk", tc.name, err)
		}
	}
}

func TestDamagedSlotSummariesAreAnErrorNamingTheChunk(t *testing.T) {
	f := denseSlots(t, 13)
	start := f.corruptDense("chunk_slots", "slots")
	h := f.base.Add(5 * time.Hour).UnixMilli()
	a := telemetry.Aggregation{Vehicle: 2, Signal: "speed", Kind: telemetry.KindNumber, From: h, Step: series.SlotMs, Lo: h, Hi: h + series.HourMs,
		Aggs: []string{telemetry.AggAvg}}
	err := f.tel.Aggregate(context.Background(), a, func(int64, string, any) {})
	if err == nil || !strings.Contains(err.Error(), "speed of vehicle 2") || !strings.Contains(err.Error(), "from "+strconv.FormatInt(start, 10)) {
		t.Fatalf("%v, want an error naming the chunk", err)
	}
}

func TestOpeningAFileWithoutSlotSummariesAddsThem(t *testing.T) {
	f := denseSlots(t, 14)
	before := f.chunkTables()
	if _, err := f.tel.SignalsDB().Exec(`DELETE FROM chunk_slots; DELETE FROM meta WHERE key = 'slots_version'`); err != nil {
		t.Fatal(err)
	}
	f.compareDense() // read by decoding
	if err := f.tel.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(f.path)
	if after := f.chunkTables(); after != before {
		t.Fatalf("the slot summaries added on opening differ from those written by indexing")
	}
	f.compareDense()
}
