package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/glovebox/glovebox/internal/connlimit"
	"github.com/glovebox/glovebox/ledger"
)

// BodyBytesInFlight bounds the bytes of the request bodies to POST /v1/events the node works on at once:
// their records parsed, verified and waiting to be durable. A request over it waits, its body read, until
// earlier ones are answered (a body larger than the bound waits until it has it all). What a body becomes
// in memory (its submissions, their parsed values, the indexer's hand-off) is a few times its size:
// batches of 500 records from 32 connections held about 16,000 records at once, and the node at 10,000
// vehicles peaked at 330 MB; with this bound at 283–290 MB, at the same rate (docs/api.md).
const BodyBytesInFlight = 4 << 20

// bodyBudget is the semaphore of BodyBytesInFlight. A body is admitted once read, so a client that sends
// its body slowly holds only its own bytes, never the budget.
type bodyBudget struct {
	sem *semaphore.Weighted
	max int64
}

func newBodyBudget(max int64) *bodyBudget {
	return &bodyBudget{sem: semaphore.NewWeighted(max), max: max}
}

// admit waits until a body of n bytes fits (a body larger than the whole budget waits for all of it) and
// returns what gives its share back; ok is false when the client went away first.
func (b *bodyBudget) admit(r *http.Request, n int) (release func(), ok bool) {
	w := min(max(int64(n), 1), b.max)
	if err := b.sem.Acquire(r.Context(), w); err != nil {
		return nil, false
	}
	return func() { b.sem.Release(w) }, true
}

// BodyMemory bounds the bytes of the large request bodies, POST /v1/events (up to MaxEventBatchBody) and
// POST /v1/transactions (up to MaxBatchBody), the node holds at once: a body's share is taken before
// it is read, for the length its Content-Length declares (the route's limit for a body without one),
// and given back once it is answered. A request whose share does not fit waits, its body unread, until
// earlier ones are answered; a client that leaves while waiting is not answered. Without it, bodies were
// read whole first: 256 connections of one address sending 16 MiB each held 4 GiB (docs/api.md).
const BodyMemory = 128 << 20

// BodyMemoryPerAddress bounds what one client address (an IPv4 address, an IPv6 /64) holds of
// BodyMemory at once: two of the largest event batches. Its requests over it wait for its own earlier
// ones, so that one address can't take the whole budget.
const BodyMemoryPerAddress = 32 << 20

// memoryBudget is the semaphore of BodyMemory, with one of BodyMemoryPerAddress per client address
// that has a body in memory or waiting.
type memoryBudget struct {
	total      *semaphore.Weighted
	max, share int64

	mu    sync.Mutex
	addrs map[string]*addressShare
}

type addressShare struct {
	sem   *semaphore.Weighted
	users int // requests holding or waiting for this share; the entry goes at 0
}

func newMemoryBudget(max, perAddress int64) *memoryBudget {
	return &memoryBudget{total: semaphore.NewWeighted(max), max: max, share: min(perAddress, max), addrs: map[string]*addressShare{}}
}

// take waits until n bytes fit in the address's share and in the whole budget, and returns what gives
// them back; ok is false when ctx ended first. n is capped at each bound (a body larger than a bound
// waits for all of it).
func (m *memoryBudget) take(ctx context.Context, addr string, n int64) (release func(), ok bool) {
	m.mu.Lock()
	a := m.addrs[addr]
	if a == nil {
		a = &addressShare{sem: semaphore.NewWeighted(m.share)}
		m.addrs[addr] = a
	}
	a.users++
	m.mu.Unlock()
	leave := func() {
		m.mu.Lock()
		if a.users--; a.users == 0 {
			delete(m.addrs, addr)
		}
		m.mu.Unlock()
	}
	own, all := min(max(n, 1), m.share), min(max(n, 1), m.max)
	if a.sem.Acquire(ctx, own) != nil {
		leave()
		return nil, false
	}
	if m.total.Acquire(ctx, all) != nil {
		a.sem.Release(own)
		leave()
		return nil, false
	}
	return func() {
		m.total.Release(all)
		a.sem.Release(own)
		leave()
	}, true
}

// readBody reads the body of r, at most limit bytes, once it has its share of BodyMemory, and answers
// the request itself when it can't: too_large for a body over limit (declared or read), malformed for
// one that could not be read. ok false means the request was answered (or its client went away); else
// the caller answers it and then calls release.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), ok bool) {
	tooLarge := func() { writeErr(w, CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit)) }
	n := r.ContentLength
	if n > limit {
		tooLarge()
		return nil, nil, false
	}
	want := n
	if n < 0 {
		want = limit
	}
	release, ok = s.memory.take(r.Context(), connlimit.Address(r.RemoteAddr), want)
	if !ok {
		return nil, nil, false
	}
	var err error
	if n >= 0 {
		body = make([]byte, n) // one allocation of the declared size, which the read can't outgrow
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	if err != nil {
		release()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge()
		} else {
			writeErr(w, string(ledger.CodeMalformed), "couldn't read the body")
		}
		return nil, nil, false
	}
	return body, release, true
}
