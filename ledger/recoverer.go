package ledger

import (
	"sync"

	"github.com/ethereum/go-ethereum/common"
)

// RecoverBatch is the most transactions a Recoverer worker takes off its queue at once.
const RecoverBatch = 32

// Recoverer recovers the signers of transactions submitted from many goroutines on a few worker
// goroutines, at most one per core. Recovery is a cgo call of about 50 µs: each goroutine that makes one
// loses its processor to another thread while in C and must win one back afterwards, so hundreds of
// request goroutines each recovering their own signature keep the run queue long and the sequencer (which
// must wake as soon as an fsync ends) waiting behind them. With a Recoverer, callers wait on a channel (not
// runnable) while a few workers take queued transactions in batches and recover them one after another.
//
// Workers start when work arrives and end when the queue is empty, so a Recoverer needs no closing.
type Recoverer struct {
	d       *Domain
	workers int

	mu      sync.Mutex // guards queue and running
	queue   []*recoverJob
	running int
	jobs    sync.Pool
}

type recoverJob struct {
	tx      *Tx
	signers []common.Address
	err     error
	done    chan struct{}
}

// NewRecoverer returns a Recoverer for domain d running at most workers workers (at least one).
func NewRecoverer(d *Domain, workers int) *Recoverer {
	r := &Recoverer{d: d, workers: max(1, workers)}
	r.jobs.New = func() any { return &recoverJob{done: make(chan struct{}, 1)} }
	return r
}

// Signers returns what d.Signers(tx) returns, computed by one of the workers.
func (r *Recoverer) Signers(tx *Tx) ([]common.Address, error) {
	j := r.jobs.Get().(*recoverJob)
	j.tx = tx
	r.mu.Lock()
	r.queue = append(r.queue, j)
	start := r.running < r.workers
	if start {
		r.running++
	}
	r.mu.Unlock()
	if start {
		go r.work()
	}
	<-j.done
	signers, err := j.signers, j.err
	*j = recoverJob{done: j.done}
	r.jobs.Put(j)
	return signers, err
}

// SignersOf recovers the signers of every transaction of txs on the workers, as Signers would one by one:
// signers[i] and errs[i] get what Signers(txs[i]) returns. A nil transaction is skipped.
func (r *Recoverer) SignersOf(txs []*Tx, signers [][]common.Address, errs []error) {
	jobs := make([]*recoverJob, len(txs))
	done := make(chan struct{}, len(txs))
	r.mu.Lock()
	queued := 0
	for i, tx := range txs {
		if tx != nil {
			jobs[i] = &recoverJob{tx: tx, done: done}
			r.queue = append(r.queue, jobs[i])
			queued++
		}
	}
	start := min(r.workers-r.running, queued)
	r.running += start
	r.mu.Unlock()
	for range start {
		go r.work()
	}
	for range queued {
		<-done
	}
	for i, j := range jobs {
		if j != nil {
			signers[i], errs[i] = j.signers, j.err
		}
	}
}

// work recovers queued transactions, a batch at a time, until the queue is empty.
func (r *Recoverer) work() {
	var batch [RecoverBatch]*recoverJob
	for {
		r.mu.Lock()
		// A share of the queue, so that the other workers find work too.
		n := copy(batch[:min(RecoverBatch, (len(r.queue)+r.workers-1)/r.workers)], r.queue)
		if n == 0 {
			r.running--
			r.mu.Unlock()
			return
		}
		rest := copy(r.queue, r.queue[n:])
		clear(r.queue[rest:])
		r.queue = r.queue[:rest]
		r.mu.Unlock()
		for _, j := range batch[:n] {
			j.signers, j.err = r.d.Signers(j.tx)
			j.done <- struct{}{}
		}
	}
}
