package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"

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
// it is read, for the length its Content-Length declares (the route's limit for a body without one;
// nothing for one of at most SmallBody), and given back once it is answered. A request whose share
// does not fit waits, its body unread, until earlier ones are answered; a client that leaves while
// waiting is not answered. Without it, bodies were read whole first: 256 connections of one address
// sending 16 MiB each held 4 GiB (docs/api.md).
const BodyMemory = 128 << 20

// BodyMemoryPerAddress is what one client address (an IPv4 address, an IPv6 /64) holds of BodyMemory at
// once by default (Budgets.MemoryPerAddress, `glovebox serve --memory-per-address`; without Budgets this
// bound holds): two of the largest event batches and some. Its requests over it wait for its own earlier
// ones, so that one address can't take the whole budget.
const BodyMemoryPerAddress = 40 << 20

// SmallBody is the largest body (by its Content-Length) not counted against BodyMemory: a connection
// sends one request at a time, so small bodies are bounded by the connections (at most 256 an address),
// and they must never wait behind a large one (the budget lets waiters in in order).
const SmallBody = 64 << 10

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
	release = func() {}
	if n < 0 || n > SmallBody {
		want := n
		if n < 0 {
			want = limit
		}
		if release, ok = s.memory.Take(r.Context(), connlimit.Address(r.RemoteAddr), want); !ok {
			return nil, nil, false
		}
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

// memoryShare is what one client address may hold of BodyMemory under b (≤ 0: no share per address):
// BodyMemoryPerAddress without budgets.
func memoryShare(b *Budgets) int64 {
	if b == nil {
		return BodyMemoryPerAddress
	}
	return b.MemoryPerAddress
}
