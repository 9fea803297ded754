package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

// TestAPassOfABackfillEndsBeforeTheHourTheNextContinues lists where backfillCut ends a pass: before
// the tail of records in their vehicle's last closed hour, never at nothing.
func TestAPassOfABackfillEndsBeforeTheHourTheNextContinues(t *testing.T) {
	const h = series.HourMs
	rec := func(vehicle uint64, times ...int64) storedRecord {
		r := &telemetry.Record{}
		for _, at := range times {
			r.Values = append(r.Values, telemetry.Value{Time: at})
		}
		return storedRecord{vehicle: vehicle, r: r}
	}
	unparsed := storedRecord{vehicle: 1}
	for _, tc := range []struct {
		name   string
		recs   []storedRecord
		closed int64
		want   int
	}{
		{"the records of the last hour go to the next pass", []storedRecord{rec(1, 10), rec(1, 20), rec(1, h+5), rec(1, h+9)}, 10 * h, 2},
		{"a pass inside one hour is not cut", []storedRecord{rec(1, 10), rec(1, 20), rec(1, 30)}, 10 * h, 3},
		{"an open last hour is not held back", []storedRecord{rec(1, 10), rec(1, h+5), rec(1, h+9)}, h, 3},
		{"each vehicle's last hour is held back", []storedRecord{rec(1, 10), rec(1, h+5), rec(2, 30), rec(2, 40)}, 10 * h, 1},
		{"a record with values in two hours ends the tail", []storedRecord{rec(1, 10), rec(1, 20, h+1), rec(1, h+9)}, 10 * h, 2},
		{"records without values go with the tail", []storedRecord{rec(1, 10), rec(1, h+9), unparsed, rec(1)}, 10 * h, 1},
		{"the last record's hour is the one held back", []storedRecord{rec(1, 10), rec(1, h+9), rec(1, 20)}, 10 * h, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := backfillCut(tc.recs, tc.closed); got != tc.want {
				t.Fatalf("cut at %d, want %d", got, tc.want)
			}
		})
	}
}

// TestPassesEndingAtHoursWriteTheSameChunks writes the same backfill (closed hours, the records in time
// order, more than IndexChunk of them) into two stores: one indexes it at the end, in passes that end
// before an hour the next pass continues; the other after every write, in passes that rewrite the hour
// they end in. Their chunks must be the same bytes, and the values those the fixture wrote.
func TestPassesEndingAtHoursWriteTheSameChunks(t *testing.T) {
	// 4 hours in steps of 10 minutes
	indexedAtEndAsEachWrite(t, 11, 24, func(f *historyFixture, step int) int {
		f.write(time.Duration(step)*10*time.Minute, 10*time.Minute, 150)
		return 2 * 150
	})
}

// indexedAtEndAsEachWrite writes the same records into three fixtures of seed, by write(f, i) for each
// step i (it returns how many records it wrote): one indexed after every write, one as the indexer's
// loop indexes them (IndexWritten after every write, holding closed hours, then once more with nothing
// new, which writes what it holds), the third once at the end: that one must index every record into
// chunks, the same bytes as the others', holding the values written.
func indexedAtEndAsEachWrite(t *testing.T, seed uint64, steps int, write func(f *historyFixture, step int) int) {
	t.Helper()
	ctx := context.Background()
	atEnd, eachWrite, held := newHistoryFixture(t, seed), newHistoryFixture(t, seed), newHistoryFixture(t, seed)
	want := 0
	for _, f := range []*historyFixture{atEnd, eachWrite, held} {
		for step := range steps {
			n := write(f, step)
			switch f {
			case atEnd:
				want += n
			case eachWrite:
				if _, err := f.tel.Index(ctx); err != nil {
					t.Fatal(err)
				}
			case held:
				if _, err := f.tel.IndexWritten(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if n, err := held.tel.IndexWritten(ctx); err != nil || n != 0 {
		t.Fatalf("indexing nothing new: %d records, %v", n, err)
	}
	if lag, err := held.tel.Lag(ctx); err != nil || lag != 0 || held.tel.holding() {
		t.Fatalf("after writing what it held, the index lags by %d (%v), holding %v", lag, err, held.tel.holding())
	}
	if a, b := held.chunkTables(), eachWrite.chunkTables(); a != b {
		t.Fatalf("the chunks of the hours held differ:\n%.2000s\n%.2000s", a, b)
	}
	n, err := atEnd.tel.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("indexed %d records, want %d", n, want)
	}
	if a, b := atEnd.chunkTables(), eachWrite.chunkTables(); a != b {
		t.Fatalf("the chunks differ:\n%.2000s\n%.2000s", a, b)
	}
	if rows, chunked, _ := atEnd.counts(); rows != 0 || chunked != atEnd.total() {
		t.Fatalf("%d values in rows and %d in chunks, want %d in chunks", rows, chunked, atEnd.total())
	}
	atEnd.compare(20)
}

// TestAPassReadsTheEventsOfRecordsNotHandedParsed writes records handed parsed and unparsed in one
// write: the indexer reads the stored events of only the unparsed ones, and indexes all.
func TestAPassReadsTheEventsOfRecordsNotHandedParsed(t *testing.T) {
	ctx := context.Background()
	tel := openTempTelemetry(t)
	at := time.Now().Truncate(time.Millisecond)
	var recs []*telemetry.Record
	want := map[uint64]float64{}
	for vehicle := uint64(1); vehicle <= 40; vehicle++ {
		speed := float64(vehicle)
		var handed *float64
		if vehicle%3 != 0 { // handed parsed, with a value only the handoff can bring to the index
			handed = new(float64)
			*handed = speed + 1000
		}
		want[vehicle] = speed
		if handed != nil {
			want[vehicle] = *handed
		}
		recs = append(recs, speedRecord(t, vehicle, "r", at, speed, handed))
	}
	if _, err := tel.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if n, err := tel.Index(ctx); err != nil || n != len(recs) {
		t.Fatalf("indexed %d records (%v), want %d", n, err, len(recs))
	}
	for vehicle, speed := range want {
		wantLatestSpeed(t, tel, vehicle, speed)
	}
}

// TestPutNewestKeepsTheNewestValueOfEachSignal puts values into a pass's list of newest values, with
// the search hint anywhere: a value as new or newer replaces its signal's (one indexed later wins at an
// equal time), an older one does not, a signal not listed is added.
func TestPutNewestKeepsTheNewestValueOfEachSignal(t *testing.T) {
	list := func() []newest { return []newest{{1, 10, 1.0}, {2, 20, "a"}, {3, 30, 3.0}} }
	for _, tc := range []struct {
		name string
		put  newest
		want []newest
	}{
		{"a newer value replaces", newest{2, 25, "b"}, []newest{{1, 10, 1.0}, {2, 25, "b"}, {3, 30, 3.0}}},
		{"one at the same time replaces", newest{3, 30, 4.0}, []newest{{1, 10, 1.0}, {2, 20, "a"}, {3, 30, 4.0}}},
		{"an older one does not", newest{1, 9, 5.0}, []newest{{1, 10, 1.0}, {2, 20, "a"}, {3, 30, 3.0}}},
		{"a signal not listed is added", newest{7, 1, 6.0}, []newest{{1, 10, 1.0}, {2, 20, "a"}, {3, 30, 3.0}, {7, 1, 6.0}}},
	} {
		for hint := -1; hint < 3; hint++ {
			h := hint
			got := putNewest(list(), tc.put, &h)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("%s, hint %d: %v, want %v", tc.name, hint, got, tc.want)
			}
			if got[h].name != tc.put.name {
				t.Errorf("%s, hint %d: the hint is left at %d, the signal %d", tc.name, hint, h, got[h].name)
			}
		}
	}
}

// TestGrownPassesWriteTheSameChunks writes a backfill whose passes find no hour to end at (each hour
// holds more records than a pass, every value closed), so that Index grows its passes up to
// MaxBackfillChunk, into one store indexed at the end and one indexed after every write: their chunks must
// be the same bytes, and the values those the fixture wrote.
func TestGrownPassesWriteTheSameChunks(t *testing.T) {
	indexedAtEndAsEachWrite(t, 12, 3, func(f *historyFixture, hour int) int {
		f.write(time.Duration(hour)*time.Hour, time.Hour, 3*IndexChunk)
		return 2 * 3 * IndexChunk
	})
}

// TestAFleetsInterleavedBackfillIsHeldUntilEachHourEnds writes two vehicles' closed hours, their records
// interleaved in small writes as a fleet's uploads arrive, and indexes after each write as the indexer's
// loop does: an hour is written once its vehicle's records reach the next one, the index position stays
// before the first record of the hours held, and a store closed while holding (a crash) indexes those
// records again after it opens, into the same chunks as a store that held nothing.
func TestAFleetsInterleavedBackfillIsHeldUntilEachHourEnds(t *testing.T) {
	ctx := context.Background()
	crashed, straight := newHistoryFixture(t, 13), newHistoryFixture(t, 13)
	for _, f := range []*historyFixture{crashed, straight} {
		for step := range 12 { // 3 hours in steps of 15 minutes, 100 records of each vehicle a step
			f.write(time.Duration(step)*15*time.Minute, 15*time.Minute, 100)
			if f == straight {
				continue
			}
			if _, err := f.tel.IndexWritten(ctx); err != nil {
				t.Fatal(err)
			}
			lag, err := f.tel.Lag(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The hour of the step is held: the index lags by the records of it so far.
			if want := int64(2 * 100 * (step%4 + 1)); lag != want {
				t.Fatalf("step %d: the index lags by %d records, want %d", step, lag, want)
			}
			if _, chunked, _ := f.counts(); chunked != 4*2*400*(step/4) {
				t.Fatalf("step %d: %d values in chunks, want the %d of the hours before", step, chunked, 4*2*400*(step/4))
			}
		}
	}
	// The crash: the store closes holding the last hour, and opens again.
	if err := crashed.tel.Close(); err != nil {
		t.Fatal(err)
	}
	crashed.open(crashed.path)
	if n, err := crashed.tel.Index(ctx); err != nil || n != 2*400 {
		t.Fatalf("after the restart: indexed %d records (%v), want the last hour's %d", n, err, 2*400)
	}
	if _, err := straight.tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	if a, b := crashed.chunkTables(), straight.chunkTables(); a != b {
		t.Fatalf("the chunks differ:\n%.2000s\n%.2000s", a, b)
	}
	crashed.compare(20)
}

// TestAnErasureWritesTheHoursHeldFirst erases a range of a vehicle while the indexer holds an hour of it:
// the held values go into chunks first, where the erasure deletes them, and no value of the range is left.
func TestAnErasureWritesTheHoursHeldFirst(t *testing.T) {
	ctx := context.Background()
	f := newHistoryFixture(t, 14)
	f.write(0, time.Hour, 300)
	if _, err := f.tel.IndexWritten(ctx); err != nil {
		t.Fatal(err)
	}
	if !f.tel.holding() {
		t.Fatal("the indexer holds no hour")
	}
	job := telemetry.DeleteJob{Key: telemetry.ErasureJob(1, 0), Vehicle: 1, From: f.base.UnixMilli(), To: f.base.Add(time.Hour).UnixMilli()}
	f.erase(job)
	if _, err := f.tel.IndexWritten(ctx); err != nil {
		t.Fatal(err)
	}
	var left, other int
	if err := f.tel.SignalsDB().QueryRow(`SELECT COALESCE(SUM(cnt) FILTER (WHERE vehicle = 1), 0), COALESCE(SUM(cnt) FILTER (WHERE vehicle = 2), 0) FROM chunk_sums`).Scan(&left, &other); err != nil {
		t.Fatal(err)
	}
	if left != 0 || other == 0 {
		t.Fatalf("after the erasure vehicle 1 has %d values in chunks, vehicle 2 %d", left, other)
	}
}
