package sqlite_test

import (
	"context"
	"path/filepath"
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
