package telemetry_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// startsStore notes when each write starts and how many records it takes.
type startsStore struct {
	telemetry.Store
	mu     sync.Mutex
	starts []time.Time
	sizes  []int
}

func (s *startsStore) Write(ctx context.Context, recs []*telemetry.Record) ([]telemetry.Status, error) {
	s.mu.Lock()
	s.starts, s.sizes = append(s.starts, time.Now()), append(s.sizes, len(recs))
	s.mu.Unlock()
	return s.Store.Write(ctx, recs)
}

// TestSmallRequestsShareDurableWrites: sixteen devices, each sending a record at a time and the next once
// the last is acknowledged, as a fleet posting one record per request does. The writer used to write what
// one write's time let arrive, a record or two each; now its writes start WriteSpacing apart at least, so
// however fast the store, the run makes no more writes than its time allows and every record is stored
// once and acknowledged.
func TestSmallRequestsShareDurableWrites(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	const devices, each = 16, 40
	store := &startsStore{Store: n.Telemetry}
	in := telemetry.NewIngester(telemetry.DefaultCatalog, n.Sequencer.Read, store, telemetry.IngesterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- in.Run(ctx) }()
	defer func() { cancel(); <-done }()

	vids := make([]uint64, devices)
	devs := make([]testnode.Key, devices)
	for d := range devices {
		vids[d] = n.Vehicle(t, owner)
		devs[d] = n.PairedDevice(t, owner, vids[d], ledger.KindHardware)
	}
	time.Sleep(2 * each * time.Millisecond) // records a millisecond apart, after the pairings and before now
	base := time.Now().Add(-each * time.Millisecond)
	subs := make([][]telemetry.Submission, devices)
	for d := range devices {
		for i := range each {
			subs[d] = append(subs[d], testnode.Record(t, devs[d], vids[d], fmt.Sprintf("small-%d", i), base.Add(time.Duration(i)*time.Millisecond)))
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, devices)
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range subs[d] {
				if r := in.Ingest(ctx, []telemetry.Submission{s}); r[0].Status != telemetry.StatusAccepted {
					errs <- fmt.Errorf("device %d: %s %s", d, r[0].Status, r[0].Message)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	total := 0
	for _, k := range store.sizes {
		total += k
	}
	if total != devices*each {
		t.Fatalf("the writes took %d records, want %d", total, devices*each)
	}
	// Each write starts WriteSpacing after the one before at least (the writer's clock is read just before
	// the store's, so the store may see a gap a little short of it: the count is what is bound).
	if most := int(elapsed/telemetry.WriteSpacing) + 1; len(store.starts) > most {
		t.Fatalf("%d writes in %s: more than one per %s (%d)", len(store.starts), elapsed, telemetry.WriteSpacing, most)
	}
	t.Logf("%d records in %d writes in %s", total, len(store.starts), elapsed)
}
