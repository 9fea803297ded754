package postgres_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

// TestChunksOfUpToAPageStayInTheirRowAfterMigration0014 seals, on a database as the build before
// migration 0014 left it, an hour of 10 minutes of noise at 1 Hz (a chunk of a few KB, which that build
// moved to TOAST) and a whole hour at 1 Hz (a chunk larger than a page, even compressed), migrates, and
// checks that the answers stay byte-identical, that every partition of chunk_data (and one created after)
// keeps data and slots with STORAGE MAIN, that the same two hours sealed after the migration put only the
// larger chunk in TOAST with the same answers, and that VACUUM FULL moves the older chunk of a few KB into
// its row with the answers unchanged.
func TestChunksOfUpToAPageStayInTheirRowAfterMigration0014(t *testing.T) {
	ctx := context.Background()
	pool := migratedBefore(t, 14)
	s := postgres.NewTelemetry(pool)
	write := func(id string, from, seconds int64) {
		t.Helper()
		if _, err := s.Write(ctx, speeds(t, id, every(from, 1000, from+seconds*1000), noise)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SealAll(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// toasted is the number of values in the TOAST tables of chunk_data's partitions.
	toasted := func() int {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT c.reltoastrelid::regclass::text FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
			WHERE i.inhparent = 'chunk_data'::regclass AND c.reltoastrelid <> 0`)
		if err != nil {
			t.Fatal(err)
		}
		var toasts []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			toasts = append(toasts, name)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, toast := range toasts {
			var k int
			if err := pool.QueryRow(ctx, `SELECT COUNT(DISTINCT chunk_id) FROM `+toast).Scan(&k); err != nil {
				t.Fatal(err)
			}
			n += k
		}
		return n
	}
	// read answers an hour (from chunkT0 + h hours) hourly, in five-minute buckets (from the slots) and in
	// ten-minute buckets without roll-ups (decoding the chunk); buckets count from the hour.
	read := func(h int64) string {
		t.Helper()
		from := chunkT0 + h*hour
		var out string
		for _, q := range []struct {
			step     int64
			noRollup bool
		}{{hour, false}, {5 * 60_000, false}, {10 * 60_000, true}} {
			a := telemetry.Aggregation{Vehicle: 7, Signal: "speed", Kind: telemetry.KindNumber, From: from, Step: q.step, Lo: from, Hi: from + hour,
				NoRollup: q.noRollup, Aggs: []string{telemetry.AggFirst, telemetry.AggLast, telemetry.AggMin, telemetry.AggMax, telemetry.AggAvg, telemetry.AggCount}}
			got, err := answer(func(put func(int64, string, any)) error { return s.Aggregate(ctx, a, put) })
			if err != nil {
				t.Fatal(err)
			}
			out += got + "| "
		}
		return out
	}
	// sizes tells the size class of each chunk's data, by hour.
	sizes := func() string {
		t.Helper()
		var got string
		rows, err := pool.Query(ctx, `SELECT (start - $1) / $2, CASE WHEN octet_length(data) < 2048 THEN 'under 2 KB'
			WHEN octet_length(data) < 7168 THEN '2–7 KB' WHEN octet_length(data) > 8192 THEN 'over 8 KB' ELSE '7–8 KB' END
			FROM chunk_data ORDER BY start`, chunkT0, hour)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var h int64
			var class string
			if err := rows.Scan(&h, &class); err != nil {
				t.Fatal(err)
			}
			got += fmt.Sprintf("hour %d: %s; ", h, class)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	storage := func() string {
		t.Helper()
		var got string
		if err := pool.QueryRow(ctx, `SELECT string_agg(c.relname || '.' || a.attname || '=' || a.attstorage::text, ' ' ORDER BY c.relname, a.attname)
			FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			WHERE a.attname IN ('data', 'slots') AND (c.oid = 'chunk_data'::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'chunk_data'::regclass))`).
			Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}

	write("a", 0, 600)     // hour 0
	write("b", hour, 3600) // hour 1
	if got, want := sizes(), "hour 0: 2–7 KB; hour 1: over 8 KB; "; got != want {
		t.Fatalf("chunks: %s, want %s", got, want)
	}
	if got, want := storage(), "chunk_data.data=e chunk_data.slots=e chunk_data_p202611.data=e chunk_data_p202611.slots=e"; got != want {
		t.Fatalf("before 0014: %s, want %s", got, want)
	}
	if n := toasted(); n != 2 {
		t.Fatalf("before 0014: %d chunks in TOAST, want both", n)
	}
	before := []string{read(0), read(1)}

	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if got, want := storage(), "chunk_data.data=m chunk_data.slots=m chunk_data_p202611.data=m chunk_data_p202611.slots=m"; got != want {
		t.Fatalf("after 0014: %s, want %s", got, want)
	}
	if got := []string{read(0), read(1)}; fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("after 0014: %q, want %q", got, before)
	}
	// The same values two hours later (noise repeats every hour), sealed by this build.
	write("c", 2*hour, 600)
	write("d", 3*hour, 3600)
	if n := toasted(); n != 3 {
		t.Fatalf("after 0014: %d chunks in TOAST, want the two before and the new one larger than a page", n)
	}
	if got := []string{read(2), read(3)}; fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("sealed after 0014: %q, want %q", got, before)
	}
	if _, err := pool.Exec(ctx, `VACUUM FULL chunk_data`); err != nil {
		t.Fatal(err)
	}
	if n := toasted(); n != 2 {
		t.Fatalf("after VACUUM FULL: %d chunks in TOAST, want the two larger than a page", n)
	}
	for h := range int64(4) {
		if got := read(h); got != before[h%2] {
			t.Fatalf("hour %d after VACUUM FULL: %s, want %s", h, got, before[h%2])
		}
	}
	// A month's partitions created after the migration take the storage from their parent.
	write("e", 30*24*hour, 60)
	if got, want := storage(), "chunk_data.data=m chunk_data.slots=m chunk_data_p202611.data=m chunk_data_p202611.slots=m chunk_data_p202612.data=m chunk_data_p202612.slots=m"; got != want {
		t.Fatalf("a partition created after 0014: %s, want %s", got, want)
	}
}

// noise is a speed between 0 and 100 whose float bits look random, the same in every hour: an
// incompressible chunk, about 8 bytes a value.
func noise(ms int64) float64 {
	x := math.Sin(float64(series.Hour(ms)-ms)/1000) * 43758.5453
	return 100 * (x - math.Floor(x))
}
