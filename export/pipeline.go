package export

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/glovebox/glovebox/telemetry"
)

// chunk is a run of records in the archive's order and what a worker made of them: the bytes of up to two
// members (a, b) and how many lines.
type chunk struct {
	recs []*telemetry.StoredRecord
	a, b []byte
	n    int64
	err  error
	done chan struct{}
}

// chunkRecords is the number of records a worker turns into bytes at a time: at 1 Hz with 30 samples of
// 10 signals to a record, about 5,000 CSV rows (under 1 MB with their NDJSON lines).
const chunkRecords = 16

// errStopped ends the reading of records after an emit failed.
var errStopped = errors.New("export: stopped")

// inOrder reads the archive's records in order, has one worker per core turn each run of chunkRecords of
// them into bytes (work), and calls emit with every chunk in the records' order, on the calling goroutine.
// Parsing and formatting run on every core while emit (which feeds a member's compressor) runs on one. At
// most 3 chunks a worker (and two more) are in flight, so memory does not grow with the archive.
func (a *archive) inOrder(work func(c *chunk), emit func(c *chunk) error) error {
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *chunk, workers)
	order := make(chan *chunk, 2*workers)
	free := make(chan *chunk, 3*workers+2)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				work(c)
				close(c.done)
			}
		}()
	}
	var stopped atomic.Bool
	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(jobs)
		next := func() *chunk {
			var c *chunk
			select {
			case c = <-free:
				c.recs, c.a, c.b, c.n, c.err = c.recs[:0], c.a[:0], c.b[:0], 0, nil
			default:
				c = &chunk{recs: make([]*telemetry.StoredRecord, 0, chunkRecords)}
			}
			c.done = make(chan struct{})
			return c
		}
		cur := next()
		send := func() {
			jobs <- cur
			order <- cur
			cur = next()
		}
		err := a.eachRecord(func(r *telemetry.StoredRecord) error {
			if stopped.Load() {
				return errStopped
			}
			if cur.recs = append(cur.recs, r); len(cur.recs) == chunkRecords {
				send()
			}
			return nil
		})
		if err == nil && len(cur.recs) > 0 {
			send()
		}
		readErr <- err
	}()
	var err error
	for c := range order {
		<-c.done
		if err == nil {
			if err = c.err; err == nil {
				err = emit(c)
			}
			if err != nil {
				stopped.Store(true)
			}
		}
		clear(c.recs) // the records' memory goes as soon as they are written
		select {
		case free <- c:
		default:
		}
	}
	wg.Wait()
	if rerr := <-readErr; err == nil && !errors.Is(rerr, errStopped) {
		err = rerr
	}
	return err
}
