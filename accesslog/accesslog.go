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

// Recorder batches access entries to a Store from one goroutine (Run), so that recording an access
// costs the query path a channel send.
type Recorder struct {
	store  Store
	in     chan Entry
	logger *slog.Logger
}

// NewRecorder returns a recorder writing to store.
func NewRecorder(store Store, logger *slog.Logger) *Recorder {
	if logger == nil {
		logger = slog.Default()
	}
	return &Recorder{store: store, in: make(chan Entry, 65536), logger: logger}
}

// Record queues an entry. It blocks only when the writer is far behind: entries are never dropped.
func (r *Recorder) Record(e Entry) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.in <- e
}

// Run writes queued entries in batches until ctx is done, then writes what is left.
func (r *Recorder) Run(ctx context.Context) {
	batch := make([]Entry, 0, 1024)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := r.store.Append(context.Background(), batch); err != nil {
			r.logger.Error("couldn't write the access log", "entries", len(batch), "err", err)
			return // kept in the batch: retried with the next flush
		}
		batch = batch[:0]
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case e := <-r.in:
			batch = append(batch, e)
			if len(batch) >= 1024 {
				flush()
			}
		case <-tick.C:
			flush()
		case <-ctx.Done():
			for {
				select {
				case e := <-r.in:
					batch = append(batch, e)
				default:
					flush()
					return
				}
			}
		}
	}
}
