package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Log is the append-only Merkle log the sequencer writes. *tlog.Log implements it.
type Log interface {
	// Append adds entries at the end of the log. When it returns without error the entries and a signed
	// checkpoint covering them MUST be durable. When it returns an error the log MUST be as before the
	// call for its readers (Size unchanged, no checkpoint covering any of the entries served), and the
	// next Append MUST either store its entries at the same indexes or fail again: the sequencer undoes
	// the batch and tries the next one (a full disk, a database restarting). A log whose storage can stop
	// answering (a database) MUST give up when ctx is done, so that the sequencer fails the batch rather
	// than hangs; the sequencer's ctx is not cancelled by its own stop, so that a batch in flight is
	// finished.
	Append(ctx context.Context, entries [][]byte) (first int64, checkpoint []byte, err error)
	// Size returns the number of committed entries.
	Size() int64
}

// Store keeps the replayed state as a queryable read model. It is a cache of the log: it need not be
// durable at once (a store that lags the log is caught up by replay when the node starts), but Save MUST
// be atomic, so that a stored Size always matches the stored entities.
type Store interface {
	// Load returns the stored state as a full snapshot; an empty store returns Size 0.
	Load(ctx context.Context) (Changes, error)
	// Save upserts the changed entities and records the new size.
	Save(ctx context.Context, c Changes) error
	// Reset deletes everything, before a rebuild from the log.
	Reset(ctx context.Context) error
}

// MaxBatch is the largest number of transactions the sequencer appends in one group commit.
const MaxBatch = 4096

// ErrStopped is returned for submissions after the sequencer stopped.
var ErrStopped = errors.New("sequencer stopped")

// ErrUnavailable is returned (wrapped, with the log's error) for a submission whose batch the log failed
// to store: nothing of it was appended or applied, and submitting it again is safe. The sequencer goes on
// with the next batch.
var ErrUnavailable = errors.New("the log couldn't store the transactions")

// Outcome is the fate of one submitted transaction: an entry index with the checkpoint that commits it, or
// a refusal.
type Outcome struct {
	Index      int64
	Result     Result
	Entry      []byte // the encoded entry
	TreeSize   int64  // size of the tree Checkpoint commits to
	Checkpoint []byte // signed checkpoint whose tree contains Index
	Err        error  // an *Error when a rule refused the transaction
}

type submission struct {
	txs     []*Tx
	signers [][]common.Address
	out     []Outcome
	err     error // the whole submission failed (ErrUnavailable); out is then meaningless
	done    chan struct{}
}

// Sequencer validates transactions against the state and appends them to the log in order, one goroutine
// (Run) doing both. Appends are batched: whatever arrived while the previous batch was being written is
// validated and written next with one fsync, so throughput grows with load while every caller still waits
// for durability.
type Sequencer struct {
	domain *Domain
	log    Log
	store  Store
	now    func() time.Time
	logger *slog.Logger

	in    chan *submission
	saves chan Changes

	batches, appended atomic.Int64 // group commits and entries appended, for Stats
	failed            atomic.Int64 // batches the log failed to store, for Stats
	appendNanos       atomic.Int64 // time spent in Log.Append

	mu      sync.RWMutex // guards state; held for writing while a batch is applied, and to show or undo it
	state   *State
	stopped chan struct{}
}

// SequencerOptions configures a Sequencer; the zero value of each field picks its default.
type SequencerOptions struct {
	Now    func() time.Time // clock for accept times; default time.Now
	Logger *slog.Logger     // default slog.Default()
	// Progress, if set, is called while the state is replayed at start.
	Progress func(applied, total int64)
}

// OpenSequencer loads the read model, replays the log entries it lacks (checking every signature and
// rule), and returns a sequencer ready to Run. entries reads the log.
func OpenSequencer(ctx context.Context, d *Domain, log Log, entries EntrySource, store Store, opts SequencerOptions) (*Sequencer, error) {
	q := &Sequencer{domain: d, log: log, store: store, now: opts.Now, logger: opts.Logger,
		in: make(chan *submission, 1024), saves: make(chan Changes, 64), stopped: make(chan struct{})}
	if q.now == nil {
		q.now = time.Now
	}
	if q.logger == nil {
		q.logger = slog.Default()
	}
	// A read model that does not load (a row that does not decode) or restore is a cache gone bad: it is
	// rebuilt from the log, as a missing one is.
	var st *State
	snap, err := store.Load(ctx)
	if err == nil {
		st, err = Restore(snap)
	}
	if err == nil && st.Size() > log.Size() {
		err = fmt.Errorf("read model has %d entries, the log only %d", st.Size(), log.Size())
	}
	if err != nil {
		q.logger.Warn("rebuilding the read model from the log", "reason", err)
		if err := store.Reset(ctx); err != nil {
			return nil, fmt.Errorf("couldn't reset the read model: %w", err)
		}
		st = NewState()
	}
	st.TrackChanges()
	total := log.Size()
	if st.Size() < total {
		q.logger.Info("replaying the log into the read model", "from", st.Size(), "to", total)
		var progress func(int64)
		if opts.Progress != nil {
			progress = func(n int64) { opts.Progress(n, total) }
		}
		if err := Replay(ctx, d, st, total, entries, progress); err != nil {
			return nil, fmt.Errorf("couldn't replay the log: %w", err)
		}
		if err := store.Save(ctx, st.TakeChanges()); err != nil {
			return nil, fmt.Errorf("couldn't save the replayed state: %w", err)
		}
	}
	q.state = st
	return q, nil
}

// Domain returns the EIP-712 domain the sequencer checks signatures in.
func (q *Sequencer) Domain() *Domain { return q.domain }

// Read calls f with the current state under a read lock. f must not keep references into the state.
func (q *Sequencer) Read(f func(*State)) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	f(q.state)
}

// Submit queues transactions, whose signers the caller recovered with Domain.Signers, and waits until each
// is durable in the log or refused. The transactions of one call get consecutive entries in order (refused
// ones are skipped).
func (q *Sequencer) Submit(ctx context.Context, txs []*Tx, signers [][]common.Address) ([]Outcome, error) {
	s := &submission{txs: txs, signers: signers, out: make([]Outcome, len(txs)), done: make(chan struct{})}
	select {
	case q.in <- s:
	case <-q.stopped:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-s.done:
	case <-q.stopped:
		// Run finishes the batch it took before closing stopped, so a submission not done by then was
		// never taken.
		select {
		case <-s.done:
		default:
			return nil, ErrStopped
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.out, nil
}

// Run sequences submissions until ctx is done. A batch the log fails to store is undone and answered
// with ErrUnavailable, and Run goes on with the next one. Run also owns the goroutine that saves the read
// model, and waits for it to finish before returning. It returns an error only when the log and the state
// disagree, which no retry can mend.
func (q *Sequencer) Run(ctx context.Context) error {
	saveDone := make(chan struct{})
	go q.saveLoop(saveDone)
	defer func() {
		close(q.saves)
		<-saveDone
	}()
	defer close(q.stopped)
	batch := make([]*submission, 0, 64)
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-q.in:
			batch = append(batch[:0], s)
		}
		n := len(batch[0].txs)
	drain:
		for n < MaxBatch {
			select {
			case s := <-q.in:
				batch = append(batch, s)
				n += len(s.txs)
			default:
				break drain
			}
		}
		if err := q.commit(context.WithoutCancel(ctx), batch); err != nil {
			q.logger.Error("sequencer stopped: the log and the state disagree", "err", err)
			return err
		}
	}
}

// commit validates and applies a batch, appends the accepted entries, and answers every submission.
//
// Readers do not wait for the disk: the batch is applied to the live state once, under the write lock,
// with the undo journal recording what each thing it changed was before it; then the batch is sealed and
// the lock released, and while the entries are appended and synced readers see those pre-images — the
// state before the batch. Once the log has the batch, the journal is dropped and readers see it; if the
// append fails, the journal takes the batch back.
func (q *Sequencer) commit(ctx context.Context, batch []*submission) error {
	var entries [][]byte
	var accepted []*Outcome
	q.mu.Lock()
	q.state.mark()
	now := q.now().UnixMilli()
	if last := q.state.LastTime(); now < last {
		now = last // the clock went back: keep accept times monotonic
	}
	for _, s := range batch {
		for i, tx := range s.txs {
			o := &s.out[i]
			e := &Entry{AcceptTime: now, Tx: tx}
			raw, err := e.MarshalBinary()
			if err != nil {
				o.Err = err
				continue
			}
			if err := Admit(tx); err != nil {
				o.Err = err
				continue
			}
			res, err := q.state.Apply(e, s.signers[i], q.state.Size())
			if err != nil {
				o.Err = err
				continue
			}
			o.Index, o.Result, o.Entry = q.state.Size()-1, res, raw
			entries = append(entries, raw)
			accepted = append(accepted, o)
		}
	}
	if len(entries) == 0 {
		q.state.forget()
		q.mu.Unlock()
		for _, s := range batch {
			close(s.done)
		}
		return nil
	}
	q.state.seal()
	q.mu.Unlock()
	t0 := time.Now()
	first, cp, err := q.log.Append(ctx, entries)
	q.appendNanos.Add(int64(time.Since(t0)))
	mismatch := err == nil && first != accepted[0].Index // the log and the state disagree: no retry mends that
	q.mu.Lock()
	if err != nil || mismatch {
		q.state.rollback()
	} else {
		q.state.forget()
	}
	q.mu.Unlock()
	if mismatch {
		return fmt.Errorf("log appended at %d, state expected %d", first, accepted[0].Index)
	}
	if err != nil {
		// Nothing of the batch is in the log, and the state no longer holds it: fail every submission of
		// it. The next batch tries again.
		q.failed.Add(1)
		q.logger.Warn("the log couldn't store a batch; answered unavailable", "transactions", len(entries), "err", err)
		uerr := fmt.Errorf("%w: %w", ErrUnavailable, err)
		for _, s := range batch {
			s.err = uerr
			close(s.done)
		}
		return nil
	}
	q.batches.Add(1)
	q.appended.Add(int64(len(entries)))
	// Outside the lock: only this goroutine changes the state, and readers only read it; TakeChanges
	// reads the entities and resets what only this goroutine uses.
	q.saves <- q.state.TakeChanges() // a read model that falls behind never holds up readers
	size := first + int64(len(entries))
	for _, o := range accepted {
		o.Checkpoint, o.TreeSize = cp, size
	}
	for _, s := range batch {
		close(s.done)
	}
	return nil
}

// SequencerStats counts the sequencer's work since it opened.
type SequencerStats struct {
	Batches  int64         // group commits (log appends)
	Entries  int64         // entries appended
	AppendIn time.Duration // total time inside Log.Append (writes and fsyncs)
	Failed   int64         // appends that failed (their batches were undone and answered ErrUnavailable)
}

// Stats returns counters of the sequencer's work.
func (q *Sequencer) Stats() SequencerStats {
	return SequencerStats{q.batches.Load(), q.appended.Load(), time.Duration(q.appendNanos.Load()), q.failed.Load()}
}

// SaveInterval is the least time between two saves of the read model. Changes that arrive in between are
// merged and written together: the read model is a cache of the log (a start replays what it lacks), and
// one large save costs far less than many small ones.
const SaveInterval = 250 * time.Millisecond

// saveLoop writes read-model changes, merging whatever queued up while it waited or saved. A save that
// fails (a full disk) is kept, merged with what comes next and tried again a SaveInterval later, so that
// the read model catches up once the store takes writes again.
func (q *Sequencer) saveLoop(done chan struct{}) {
	defer close(done)
	var last time.Time
	var c Changes
	pending, open := false, true
	for open {
		if !pending {
			first, ok := <-q.saves
			if !ok {
				return
			}
			c, pending = first, true
		}
		wait := time.NewTimer(time.Until(last.Add(SaveInterval)))
	collect:
		for {
			select {
			case more, ok := <-q.saves:
				if !ok {
					open = false
					break collect
				}
				c.Merge(more)
			case <-wait.C:
				break collect
			}
		}
		wait.Stop()
		last = time.Now()
		if err := q.store.Save(context.Background(), c); err != nil {
			// The log is the truth: a read model that lags it is caught up by the next save, or by replay
			// at the next start.
			q.logger.Error("couldn't save the read model; will try again", "err", err)
			continue
		}
		c, pending = Changes{}, false
	}
}

// Merge appends later changes to c; entities listed later replace earlier ones when saved in order.
func (c *Changes) Merge(later Changes) {
	c.Size, c.LastTime, c.NextVehicle = later.Size, later.LastTime, later.NextVehicle
	c.Vehicles = append(c.Vehicles, later.Vehicles...)
	c.Devices = append(c.Devices, later.Devices...)
	c.Apps = append(c.Apps, later.Apps...)
	c.Nonces = append(c.Nonces, later.Nonces...)
}
