package connlimit

import (
	"context"
	"sync"

	"golang.org/x/sync/semaphore"
)

// Budget bounds a quantity (bytes in memory) that requests hold for a while: all of them together at
// most its total, the requests of one client Address at most its share, so that one address can't take
// the whole of it. A request over a bound waits, its own address's earlier requests first.
type Budget struct {
	total      *semaphore.Weighted
	max, share int64

	mu    sync.Mutex
	addrs map[string]*addressShare
}

type addressShare struct {
	sem   *semaphore.Weighted
	users int // requests holding or waiting for this share; the entry goes at 0
}

// NewBudget returns a Budget of total, of which one address holds at most perAddress (at most total;
// perAddress ≤ 0: no share per address, any address may wait for all of it).
func NewBudget(total, perAddress int64) *Budget {
	share := total
	if perAddress > 0 {
		share = min(perAddress, total)
	}
	return &Budget{total: semaphore.NewWeighted(total), max: total, share: share, addrs: map[string]*addressShare{}}
}

// Take waits until n fits in the share of addr (an Address) and in the total, and returns what gives it
// back; ok is false when ctx ended first, and then nothing is held. n is capped at each bound (a request
// larger than a bound waits for all of it), and counts at least 1.
func (b *Budget) Take(ctx context.Context, addr string, n int64) (release func(), ok bool) {
	b.mu.Lock()
	a := b.addrs[addr]
	if a == nil {
		a = &addressShare{sem: semaphore.NewWeighted(b.share)}
		b.addrs[addr] = a
	}
	a.users++
	b.mu.Unlock()
	leave := func() {
		b.mu.Lock()
		if a.users--; a.users == 0 {
			delete(b.addrs, addr)
		}
		b.mu.Unlock()
	}
	own, all := min(max(n, 1), b.share), min(max(n, 1), b.max)
	if a.sem.Acquire(ctx, own) != nil {
		leave()
		return nil, false
	}
	if b.total.Acquire(ctx, all) != nil {
		a.sem.Release(own)
		leave()
		return nil, false
	}
	return func() {
		b.total.Release(all)
		a.sem.Release(own)
		leave()
	}, true
}

// addresses returns how many addresses hold or wait for a share (for tests).
func (b *Budget) addresses() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.addrs)
}
