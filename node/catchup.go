package node

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// ReceiptCatchUpInterval is the least time between two catch-ups with the log made for receipts asked of
// a process that has not followed that far (GET /v1/transactions/{index} beyond its tree size).
const ReceiptCatchUpInterval = 50 * time.Millisecond

// receiptCatchUpTimeout bounds one such catch-up: a hung database does not keep the waiting requests.
const receiptCatchUpTimeout = 5 * time.Second

// catchUps shares catch-ups with the log among the requests that need one. Every request waits for a
// catch-up that starts after it arrived, so that a client that wrote through another process reads its
// own write; requests arriving together share one, and two start at least interval apart. However many
// requests ask for receipts beyond the log (anyone may, without signing in), the database sees at most one
// catch-up per interval from them, and the state's lock is taken at most as often.
type catchUps struct {
	interval time.Duration
	run      func(context.Context) error // the catch-up

	// rounds counts the rounds started and not finished; Cluster.Close waits for them.
	rounds sync.WaitGroup

	mu    sync.Mutex // guards next and last
	next  *catchUp   // the round that requests arriving now wait for, not started yet; nil when none
	last  time.Time  // when the last round started
	count atomic.Int64
}

type catchUp struct {
	done chan struct{}
	err  error
}

// wait waits until a catch-up that started after the call has finished, or ctx is done.
func (c *catchUps) wait(ctx context.Context) error {
	c.mu.Lock()
	r := c.next
	if r == nil {
		r = &catchUp{done: make(chan struct{})}
		c.next = r
		delay := time.Until(c.last.Add(c.interval))
		c.rounds.Add(1)
		go c.start(r, delay)
	}
	c.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start runs round r after delay; requests that arrive once it started wait for the next round.
func (c *catchUps) start(r *catchUp, delay time.Duration) {
	defer c.rounds.Done()
	if delay > 0 {
		time.Sleep(delay)
	}
	c.mu.Lock()
	c.next, c.last = nil, time.Now()
	c.mu.Unlock()
	c.count.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), receiptCatchUpTimeout)
	defer cancel()
	r.err = c.run(ctx)
	close(r.done)
}
