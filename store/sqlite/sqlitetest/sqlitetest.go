// Package sqlitetest holds helpers for the tests and benchmarks of store/sqlite and of what it wrote. It
// imports store/sqlite (for the file names) and the SQLite driver, and only tests import it.
package sqlitetest

import (
	"crypto/sha256"
	"database/sql"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the driver the stores use

	"github.com/glovebox/glovebox/store/sqlite"
)

// Derived tables of signals.db that Digest covers, each read in key order. The events table is left out:
// the speed deriver starts empty after a restart, so a crash may derive a run's events differently from
// a reindex (docs/columnar.md, "Held hours").
var derivedQueries = []string{
	`SELECT vehicle, name, start, end, cnt, xsum, lo, hi, fv, lv, minutes FROM chunk_sums ORDER BY vehicle, name, start`,
	`SELECT vehicle, name, start, data FROM chunk_data ORDER BY vehicle, name, start`,
	`SELECT vehicle, name, start, slots FROM chunk_slots ORDER BY vehicle, name, start`,
	`SELECT vehicle, hour, seq, cnt, vals FROM open_values ORDER BY vehicle, hour, seq`,
	`SELECT vehicle, vals FROM latest_values ORDER BY vehicle`,
	`SELECT vehicle, source, vals FROM latest_sources ORDER BY vehicle, source`,
}

// Digest returns a digest of the signal values derived in dir's signals.db (every chunk, its summary
// and slots, open-hour row and latest value) and the number of chunks. Two stores whose digests are
// equal answer every query on values alike.
func Digest(t testing.TB, dir string) (digest string, chunks int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.SignalsFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := sha256.New()
	for i, q := range derivedQueries {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, ptrs := make([]any, len(cols)), make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(h, "%d %v\n", i, vals)
			if i == 0 {
				chunks++
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		rows.Close()
	}
	return fmt.Sprintf("%x", h.Sum(nil)), chunks
}

// CPUTime is the CPU time the process has used (user and system, every thread): the indexing benchmarks
// report values per CPU second, which a loaded machine distorts less than values per second.
func CPUTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
