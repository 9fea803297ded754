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
// costs the query path a channel send. Memory is bounded: at most Queue entries wait and at most Pending
// are held for retry; whatever does not fit, and whatever is recorded once Run stopped, is dropped and
// counted (Dropped), and the writer logs the count.
type Recorder struct {
	store   Store
	in      chan Entry
	logger  *slog.Logger
	pending int

	mu      sync.RWMutex // guards stopped; Record holds it for reading around its (non-blocking) send
	stopped bool         // set by Run on its way out, before the last drain

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
	return &Recorder{store: store, in: make(chan Entry, opts.Queue), logger: opts.Logger, pending: opts.Pending}
}

// Record queues an entry. It never blocks: when the queue is full, or Run has stopped, the entry is
// dropped and counted.
func (r *Recorder) Record(e Entry) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.stopped {
		r.dropped.Add(1)
		return
	}
	select {
	case r.in <- e:
	default:
		r.dropped.Add(1)
	}
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
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case e := <-r.in:
			add(e)
			if len(batch) >= 1024 && !failing { // a failing store is retried on the tick only
				flush()
			}
		case <-tick.C:
			flush()
			report()
		case <-ctx.Done():
			r.mu.Lock()
			r.stopped = true // no Record sends after this: the drain below sees every queued entry
			r.mu.Unlock()
		drain:
			for {
				select {
				case e := <-r.in:
					add(e)
				default:
					break drain
				}
			}
			flush()
			r.dropped.Add(int64(len(batch))) // the store failed to the end
			r.held.Store(0)
			report()
			return
		}
	}
}
