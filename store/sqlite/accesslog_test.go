package sqlite_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/store/sqlite"
)

// TestTheAccessLogKeepsEveryEntryAcrossRestarts records through the batching recorder, closes, reopens
// and pages through the entries newest first.
func TestTheAccessLogKeepsEveryEntryAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.db")
	store, err := sqlite.OpenAccessLog(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := accesslog.NewRecorder(store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	app := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for i := 0; i < 250; i++ {
		rec.Record(accesslog.Entry{Time: t0.Add(time.Duration(i) * time.Second), Vehicle: uint64(1 + i%2), Caller: app,
			Query: "signalsLatest", Permissions: []string{"signals"}, Values: i, Outcome: "ok",
			From: t0, To: t0.Add(time.Hour)})
	}
	cancel()
	<-done // Run writes what is queued before it returns
	store.Close()

	store, err = sqlite.OpenAccessLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var all []accesslog.Entry
	for before := int64(0); ; {
		page, err := store.List(context.Background(), 1, before, 40)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		before = page[len(page)-1].Seq
	}
	if len(all) != 125 {
		t.Fatalf("%d entries for vehicle 1, want 125", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq >= all[i-1].Seq || all[i].Time.After(all[i-1].Time) {
			t.Fatalf("not newest first at %d", i)
		}
	}
	e := all[0]
	if e.Caller != app || e.Query != "signalsLatest" || len(e.Permissions) != 1 || e.Values != 248 || !e.From.Equal(t0) || e.Vehicle != 1 {
		t.Fatalf("newest entry %+v", e)
	}
}

// failedAccessLog returns an access log whose database is closed: every Append fails, as on a full or
// broken disk.
func failedAccessLog(t *testing.T) *sqlite.AccessLog {
	t.Helper()
	store, err := sqlite.OpenAccessLog(filepath.Join(t.TempDir(), "access.db"))
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	return store
}

func TestTheRecorderHoldsABoundedNumberOfEntriesWhileItsStoreFails(t *testing.T) {
	rec := accesslog.NewRecorderOptions(failedAccessLog(t), accesslog.RecorderOptions{
		Logger: slog.New(slog.DiscardHandler), Queue: 64, Pending: 100})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	const n = 5000
	for i := range n {
		rec.Record(accesslog.Entry{Vehicle: 1, Query: "signalsLatest", Values: i, Outcome: "ok"})
		if h := rec.Held(); h > 100 {
			t.Fatalf("the recorder holds %d entries; want at most Pending, 100", h)
		}
	}
	cancel()
	<-done
	if got := rec.Dropped(); got != n {
		t.Fatalf("%d entries counted as dropped; want all %d (the store never took one)", got, n)
	}
}

// recorderOnAStore returns a recorder with a queue of queue entries writing to a new access log.
func recorderOnAStore(t *testing.T, queue int) (*sqlite.AccessLog, *accesslog.Recorder) {
	t.Helper()
	store, err := sqlite.OpenAccessLog(filepath.Join(t.TempDir(), "access.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store, accesslog.NewRecorderOptions(store, accesslog.RecorderOptions{Logger: slog.New(slog.DiscardHandler), Queue: queue})
}

func TestTheRecorderNeverBlocks(t *testing.T) {
	store, rec := recorderOnAStore(t, 8)
	t.Run("Record drops what does not fit while the writer is not running", func(t *testing.T) {
		for i := range 20 {
			rec.Record(accesslog.Entry{Vehicle: 1, Query: "signalsLatest", Values: i, Outcome: "ok"})
		}
		if got := rec.Dropped(); got != 12 {
			t.Fatalf("%d dropped; want 12 (20 into a queue of 8)", got)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	cancel()
	<-done
	t.Run("Run writes the queued entries before it returns", func(t *testing.T) {
		got, err := store.List(context.Background(), 1, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 8 {
			t.Fatalf("%d entries written; want the 8 queued", len(got))
		}
	})
	t.Run("Record after Run stopped returns at once and counts the entry dropped", func(t *testing.T) {
		// Without the bound this would block forever once the queue is full.
		for i := range 100 {
			rec.Record(accesslog.Entry{Vehicle: 1, Query: "signalsLatest", Values: i, Outcome: "ok"})
		}
		if got := rec.Dropped(); got != 12+100 {
			t.Fatalf("%d dropped; want 112", got)
		}
	})
}

// TestEveryEntryRecordedConcurrentlyIsWrittenOrCounted: eight goroutines record while the writer runs and
// then stops; every entry is either in the store or counted as dropped, and none is written twice.
func TestEveryEntryRecordedConcurrentlyIsWrittenOrCounted(t *testing.T) {
	store, rec := recorderOnAStore(t, 512)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	const writers, each = 8, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec.Record(accesslog.Entry{Vehicle: uint64(1 + w), Query: "signalsLatest", Values: i, Outcome: "ok"})
			}
		})
	}
	wg.Wait()
	cancel()
	<-done
	written := 0
	for w := range writers {
		got, err := store.List(context.Background(), uint64(1+w), 0, 2*each)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for _, e := range got {
			if seen[e.Values] {
				t.Fatalf("vehicle %d: entry %d written twice", 1+w, e.Values)
			}
			seen[e.Values] = true
		}
		written += len(got)
	}
	if total := written + int(rec.Dropped()); total != writers*each {
		t.Fatalf("%d written and %d dropped; want %d in all", written, rec.Dropped(), writers*each)
	}
	t.Logf("%d written, %d dropped", written, rec.Dropped())
}
