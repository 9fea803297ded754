// Package accesslog keeps the access log: who other than its owner read what of each vehicle, when, with
// which permissions and with what outcome. It owns the entry type, the storage contract (Store, which
// store/sqlite and store/postgres implement and store/storetest checks) and the Recorder that batches
// entries to a store from the query path. It decides nothing (package access does) and must not import
// access, the API or any store: the arrows point down to it.
//
// It imports no other Glovebox package: the stores implement its Store, the API and the webhook engine
// write through its Recorder.
package accesslog

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Entry is one access to a vehicle's data by someone other than its owner: what was asked, what the
// answer used, and whether it was given.
type Entry struct {
	Seq         int64          `json:"seq"` // assigned by the store, increasing
	Time        time.Time      `json:"time"`
	Vehicle     uint64         `json:"vehicleId"`
	Caller      common.Address `json:"caller"`
	Query       string         `json:"query"`       // e.g. "signalsLatest", "GET /v1/…"
	Permissions []string       `json:"permissions"` // the permissions the answer used (or lacked)
	From        time.Time      `json:"from,omitzero"`
	To          time.Time      `json:"to,omitzero"`
	Values      int            `json:"values"`  // values returned
	Outcome     string         `json:"outcome"` // "ok", "forbidden", "not_found", …
}

// MarshalJSON writes the caller EIP-55 checksummed, as every address in the API.
func (e Entry) MarshalJSON() ([]byte, error) {
	type plain Entry
	return json.Marshal(struct {
		plain
		Caller string `json:"caller"`
	}{plain(e), e.Caller.Hex()})
}

// Store keeps access entries. Append MUST make the entries durable before it returns (the log is the
// owner's evidence) and MUST NOT change or drop earlier ones.
type Store interface {
	Append(ctx context.Context, entries []Entry) error
	// List returns the vehicle's entries newest first, those with Seq < before (0: from the newest), at
	// most limit.
	List(ctx context.Context, vehicle uint64, before int64, limit int) ([]Entry, error)
}

// Defaults of RecorderOptions.
const (
	DefaultQueue   = 65536 // entries waiting for the writer goroutine
	DefaultPending = 16384 // entries the writer holds for a store that refuses them
)

// RecorderOptions configures a Recorder; the zero value of each field picks its default.
type RecorderOptions struct {
	Logger *slog.Logger // default slog.Default()
	// Queue is how many entries may wait for the writer (default DefaultQueue). Record drops what does not
	// fit rather than wait, so that a slow or failed store never stalls the query path.
	Queue int
	// Pending is how many entries the writer keeps, to retry, while the store fails (default
	// DefaultPending); what arrives beyond it is dropped.
	Pending int
}

// Recorder batches access entries to a Store from one goroutine (Run), so that recording an access
// costs the query path an append under a lock. Memory is bounded: at most Queue entries wait and at most
// Pending are held for retry; whatever does not fit, and whatever is recorded once Run stopped, is
// dropped and counted (Dropped), and the writer logs the count. The queue takes memory as entries
// arrive, not up front: a channel of the default 65,536 entries was 11 MiB the garbage collector scanned
// at every cycle, however idle the node.
type Recorder struct {
	store   Store
	logger  *slog.Logger
	limit   int // Queue
	pending int

	mu      sync.Mutex
	queue   []Entry       // waiting for the writer, oldest first
	stopped bool          // set by Run on its way out, before the last drain
	wake    chan struct{} // signalled when the queue becomes non-empty

	dropped atomic.Int64 // entries dropped since NewRecorder
	held    atomic.Int64 // entries in the writer's batch, for Held
}

// NewRecorder returns a recorder writing to store with the default limits.
func NewRecorder(store Store, logger *slog.Logger) *Recorder {
	return NewRecorderOptions(store, RecorderOptions{Logger: logger})
}

// NewRecorderOptions returns a recorder writing to store.
func NewRecorderOptions(store Store, opts RecorderOptions) *Recorder {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Pending <= 0 {
		opts.Pending = DefaultPending
	}
	return &Recorder{store: store, logger: opts.Logger, limit: opts.Queue, pending: opts.Pending, wake: make(chan struct{}, 1)}
}

// Record queues an entry. It never blocks: when the queue is full, or Run has stopped, the entry is
// dropped and counted.
func (r *Recorder) Record(e Entry) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.mu.Lock()
	if r.stopped || len(r.queue) >= r.limit {
		r.mu.Unlock()
		r.dropped.Add(1)
		return
	}
	r.queue = append(r.queue, e)
	first := len(r.queue) == 1
	r.mu.Unlock()
	if first {
		select {
		case r.wake <- struct{}{}:
		default: // the writer is woken already
		}
	}
}

// take returns the queued entries and empties the queue, into spare's array when it is large enough.
func (r *Recorder) take(spare []Entry) []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.queue
	if cap(spare) > 4096 { // after a burst, don't keep its memory for ever
		spare = nil
	}
	r.queue = spare[:0]
	return out
}

// Dropped returns how many entries were dropped: recorded while the queue was full or after Run stopped,
// beyond Pending while the store failed, or still unwritten when Run stopped with the store failing.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Held returns how many entries the writer holds (written next, or retried while the store fails).
func (r *Recorder) Held() int { return int(r.held.Load()) }

// Run writes queued entries in batches until ctx is done, then writes what is left. It must be called
// once.
func (r *Recorder) Run(ctx context.Context) {
	batch := make([]Entry, 0, 1024)
	failing := false
	reported := int64(0)
	add := func(e Entry) {
		if len(batch) >= r.pending {
			r.dropped.Add(1)
			return
		}
		batch = append(batch, e)
		r.held.Store(int64(len(batch)))
	}
	flush := func() {
		if len(batch) == 0 {
			return
		}
		// Each write is one durable store call; the batch is bounded by Pending.
		for start := 0; start < len(batch); start += 1024 {
			chunk := batch[start:min(start+1024, len(batch))]
			if err := r.store.Append(context.Background(), chunk); err != nil {
				if !failing {
					r.logger.Error("couldn't write the access log; holding entries to retry", "entries", len(batch)-start, "err", err)
				}
				failing = true
				batch = batch[:copy(batch, batch[start:])] // kept: retried with the next flush
				r.held.Store(int64(len(batch)))
				return
			}
		}
		if failing {
			r.logger.Info("the access log is written again")
		}
		failing = false
		batch = batch[:0]
		r.held.Store(0)
	}
	report := func() {
		if d := r.dropped.Load(); d != reported {
			r.logger.Error("dropped access-log entries", "dropped", d-reported, "total", d)
			reported = d
		}
	}
	var spare []Entry
	drain := func() {
		got := r.take(spare)
		for _, e := range got {
			add(e)
			if len(batch) >= 1024 && !failing { // a failing store is retried on the tick only
				flush()
			}
		}
		clear(got) // drop the entries' strings for the collector
		spare = got
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.wake:
			drain()
		case <-tick.C:
			drain()
			flush()
			report()
		case <-ctx.Done():
			r.mu.Lock()
			r.stopped = true // no Record appends after this: the drain below sees every queued entry
			r.mu.Unlock()
			drain()
			flush()
			r.dropped.Add(int64(len(batch))) // the store failed to the end
			r.held.Store(0)
			report()
			return
		}
	}
}
