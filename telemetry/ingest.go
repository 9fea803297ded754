package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glovebox/glovebox/ledger"
)

// Store keeps verified records.
type Store interface {
	// Write stores records in one transaction and returns one status per record: StatusAccepted for a
	// record whose (source, id) was new, StatusDuplicate when that (source, id) is stored with the same
	// bytes (also when it appears twice in recs), StatusConflict with other bytes. When Write returns
	// without error, every accepted record MUST be durable (on disk, fsynced).
	Write(ctx context.Context, recs []*Record) ([]Status, error)
}

// StateReader gives read access to the ledger's current state (ledger.Sequencer.Read).
type StateReader func(f func(*ledger.State))

// MaxWriteBatch is the most records one store transaction takes.
const MaxWriteBatch = 4096

// WriteSpacing is the least time between the starts of two durable writes (unless a write is full, of
// MaxWriteBatch records): a write takes what arrived in at least that time. Under many small requests (a
// device posting one record at a time) a write otherwise took what one write's time let arrive, 7 or 8
// records, and its fixed cost (a transaction, a sync) was most of a record's cost beyond the signature;
// with 2 ms between starts a write takes about 50 and the node acknowledges a sixth to a fifth more records
// a second (docs/telemetry.md, "Storage"). A request that finds the writer idle for longer is written at
// once: a lone device waits for no one.
const WriteSpacing = 2 * time.Millisecond

// ErrStopped is returned for ingests after the writer stopped.
var ErrStopped = errors.New("ingest writer stopped")

// Ingester verifies submissions and writes them through one writer goroutine (Run) that groups whatever
// arrived meanwhile into one durable transaction, so each acknowledgement still waits for the disk while
// the disk is synced once per group.
type Ingester struct {
	cat    *Catalog
	state  StateReader
	store  Store
	now    func() time.Time
	logger *slog.Logger

	in      chan *writeJob
	slots   chan struct{} // bounds concurrent signature recoveries to the cores
	stopped chan struct{}

	accepted func([]*Record) // IngesterOptions.Accepted

	written, batches atomic.Int64
}

type writeJob struct {
	recs []*Record
	out  []Status
	err  error
	done chan struct{}
}

// IngesterOptions configures an Ingester; zero fields take defaults.
type IngesterOptions struct {
	Now    func() time.Time // the node's clock; default time.Now
	Logger *slog.Logger
	// Accepted, if set, is called by the writer after each durable write with the records it accepted
	// (new, not duplicates or conflicts), before their submitters are answered: webhook and subscription
	// triggers hear of each record once it is stored. It must not keep the writer long.
	Accepted func([]*Record)
}

// NewIngester returns an ingester verifying against the catalogue and the ledger state.
func NewIngester(cat *Catalog, state StateReader, store Store, opts IngesterOptions) *Ingester {
	in := &Ingester{cat: cat, state: state, store: store, now: opts.Now, logger: opts.Logger,
		in: make(chan *writeJob, 1024), slots: make(chan struct{}, runtime.NumCPU()), stopped: make(chan struct{}),
		accepted: opts.Accepted}
	if in.now == nil {
		in.now = time.Now
	}
	if in.logger == nil {
		in.logger = slog.Default()
	}
	return in
}

// Catalog returns the catalogue records are checked against.
func (in *Ingester) Catalog() *Catalog { return in.cat }

// Verify checks one submission completely: wire format, catalogue, signature by the record's source, and
// that the source was paired to the subject at the record's time and at every signal's timestamp. A
// record that parsed is returned with the error too, so that results can name its id and source.
func (in *Ingester) Verify(s *Submission) (*Record, error) {
	now := in.now().UnixMilli()
	r, err := in.cat.Parse(s, now)
	if err != nil {
		return nil, err
	}
	in.slots <- struct{}{}
	signer, err := s.Signer()
	<-in.slots
	if err != nil {
		return r, fail(StatusBadSignature, "%v", err)
	}
	if signer != r.Source {
		return r, fail(StatusBadSignature, "signed by %s, not by the source %s", signer.Hex(), r.Source.Hex())
	}
	copy(r.Signature[:], s.Signature)
	if r.Signature[64] < 2 {
		r.Signature[64] += 27
	}
	var p ledger.Pairing
	var ok bool
	in.state(func(st *ledger.State) { p, ok = st.PairingAt(r.Source, r.VehicleID, r.Time) })
	if !ok {
		return r, fail(StatusNotPaired, "%s was not paired to vehicle %d at %s", r.Source.Hex(), r.VehicleID,
			time.UnixMilli(r.Time).UTC().Format(time.RFC3339Nano))
	}
	for _, v := range r.Values {
		if v.Time < p.FromTime || (p.ToIndex >= 0 && v.Time >= p.ToTime) {
			return r, fail(StatusNotPaired, "%s: timestamp %s is outside the pairing in force at the record's time",
				v.Signal.Name, time.UnixMilli(v.Time).UTC().Format(time.RFC3339Nano))
		}
	}
	for _, e := range r.Events {
		if e.Time < p.FromTime || (p.ToIndex >= 0 && e.Time >= p.ToTime) {
			return r, fail(StatusNotPaired, "%s: timestamp %s is outside the pairing in force at the record's time",
				e.Name, time.UnixMilli(e.Time).UTC().Format(time.RFC3339Nano))
		}
	}
	r.Pairing = p
	r.Received = now
	return r, nil
}

// Ingest verifies the submissions (on all cores for a batch), writes the good ones durably, and returns
// one result per submission. A bad record never blocks the good ones.
func (in *Ingester) Ingest(ctx context.Context, subs []Submission) []Result {
	results := make([]Result, len(subs))
	recs := make([]*Record, len(subs))
	verify := func(i int) {
		r, err := in.Verify(&subs[i])
		if err != nil {
			var f *failure
			if !errors.As(err, &f) {
				f = fail(StatusMalformed, "%v", err)
			}
			results[i] = Result{Status: f.status, Message: f.msg}
			if r != nil {
				results[i].ID, results[i].Source = r.ID, r.Source.Hex()
			}
			return
		}
		recs[i] = r
		results[i].ID, results[i].Source = r.ID, r.Source.Hex()
	}
	if len(subs) < 16 {
		for i := range subs {
			verify(i)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < min(runtime.NumCPU(), len(subs)); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1) - 1); i < len(subs); i = int(next.Add(1) - 1) {
					verify(i)
				}
			}()
		}
		wg.Wait()
	}
	in.holdAhead(ctx, recs, results, verify)
	var good []*Record
	var pos []int
	for i, r := range recs {
		if r != nil {
			good, pos = append(good, r), append(pos, i)
		}
	}
	if len(good) == 0 {
		return results
	}
	job := &writeJob{recs: good, done: make(chan struct{})}
	select {
	case in.in <- job:
	case <-in.stopped:
		job.err = ErrStopped
		close(job.done)
	case <-ctx.Done():
		job.err = ctx.Err()
		close(job.done)
	}
	select {
	case <-job.done:
	case <-in.stopped:
		// The writer returns only after finishing the batch it took, so a job not done by then was never
		// taken: it is not stored.
		select {
		case <-job.done:
		default:
			job.err = ErrStopped
		}
	}
	for j, i := range pos {
		if job.err != nil {
			results[i].Status, results[i].Message = StatusUnavailable, "not stored: "+job.err.Error()
			continue
		}
		results[i].Status = job.out[j]
		if job.out[j] == StatusConflict {
			results[i].Message = "a record with this source and id is stored with different bytes"
		}
	}
	return results
}

// holdAhead waits until the node's clock has reached the latest time of every verified record dated
// ahead of it (at most MaxClockSkew), then verifies those records again, against the pairings as they are
// by then (see MaxClockSkew): a record whose pairing ended before its time is not_paired, not stored.
// When ctx ends first, the records still held are unavailable.
func (in *Ingester) holdAhead(ctx context.Context, recs []*Record, results []Result, verify func(int)) {
	var ahead []int
	var due int64
	now := in.now().UnixMilli()
	for i, r := range recs {
		if r != nil && r.Latest() > now {
			ahead = append(ahead, i)
			due = max(due, r.Latest())
		}
	}
	if len(ahead) == 0 {
		return
	}
	// The clock is the node's (a test's may run ahead of the real one); the wait is real time, bounded
	// by MaxClockSkew in case that clock stands still.
	limit := time.NewTimer(MaxClockSkew + time.Second)
	defer limit.Stop()
	for {
		wait := time.Duration(due-in.now().UnixMilli()+1) * time.Millisecond
		if wait <= 0 {
			break
		}
		step := time.NewTimer(wait)
		select {
		case <-step.C:
			continue
		case <-limit.C:
		case <-ctx.Done():
		}
		step.Stop()
		for _, i := range ahead {
			recs[i] = nil
			results[i].Status, results[i].Message = StatusUnavailable, "not stored: the record is dated ahead of the node's clock and the wait for it ended"
		}
		return
	}
	for _, i := range ahead {
		recs[i] = nil
		verify(i)
	}
}

// Run writes queued records until ctx is done, a write WriteSpacing at least after the start of the one
// before. A failed write fails its batch (those records are not acknowledged) and the writer goes on.
func (in *Ingester) Run(ctx context.Context) error {
	defer close(in.stopped)
	batch := make([]*writeJob, 0, 64)
	var last time.Time // when the last write started
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-in.in:
			batch = append(batch[:0], j)
		}
		n := len(batch[0].recs)
	drain:
		for n < MaxWriteBatch {
			select {
			case j := <-in.in:
				batch = append(batch, j)
				n += len(j.recs)
			default:
				break drain
			}
		}
		if wait := time.Until(last.Add(WriteSpacing)); wait > 0 && n < MaxWriteBatch {
			t := time.NewTimer(wait)
		gather:
			for n < MaxWriteBatch {
				select {
				case j := <-in.in:
					batch = append(batch, j)
					n += len(j.recs)
				case <-t.C:
					break gather
				case <-ctx.Done():
					break gather // the jobs taken are written all the same
				}
			}
			t.Stop()
		}
		last = time.Now()
		recs := make([]*Record, 0, n)
		for _, j := range batch {
			recs = append(recs, j.recs...)
		}
		out, err := in.store.Write(context.Background(), recs)
		if err == nil && len(out) != len(recs) {
			err = fmt.Errorf("store answered %d statuses for %d records", len(out), len(recs))
		}
		if err != nil {
			in.logger.Error("couldn't write telemetry", "records", len(recs), "err", err)
		} else {
			in.written.Add(int64(len(recs)))
			in.batches.Add(1)
			in.announce(recs, out)
		}
		k := 0
		for _, j := range batch {
			if err != nil {
				j.err = err
			} else {
				j.out = out[k : k+len(j.recs)]
			}
			k += len(j.recs)
			close(j.done)
		}
	}
}

// announce hands the accepted records of a durable write to IngesterOptions.Accepted.
func (in *Ingester) announce(recs []*Record, out []Status) {
	if in.accepted == nil {
		return
	}
	var acc []*Record
	for i, st := range out {
		if st == StatusAccepted {
			acc = append(acc, recs[i])
		}
	}
	if len(acc) > 0 {
		in.accepted(acc)
	}
}

// IngestStats counts the writer's work.
type IngestStats struct {
	Records, Batches int64
}

// Stats returns the writer's counters.
func (in *Ingester) Stats() IngestStats { return IngestStats{in.written.Load(), in.batches.Load()} }
