package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
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

// indexedAtEndAsEachWrite writes the same records into two fixtures of seed, by write(f, i) for each step
// i (it returns how many records it wrote), one indexed after every write, the other once at the end:
// that one must index every record into chunks, the same bytes as the other's, holding the values written.
func indexedAtEndAsEachWrite(t *testing.T, seed uint64, steps int, write func(f *historyFixture, step int) int) {
	t.Helper()
	ctx := context.Background()
	atEnd, eachWrite := newHistoryFixture(t, seed), newHistoryFixture(t, seed)
	want := 0
	for _, f := range []*historyFixture{atEnd, eachWrite} {
		for step := range steps {
			n := write(f, step)
			if f == atEnd {
				want += n
				continue
			}
			if _, err := f.tel.Index(ctx); err != nil {
				t.Fatal(err)
			}
		}
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
	tel, err := OpenTelemetry(filepath.Join(t.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close()
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
