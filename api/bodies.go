package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

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
// sending 16 MiB each held 4 GiB (docs/api.md). Bodies beyond what the node works on at once
// (BodyBytesInFlight) only wait, so the bound is no larger than throughput needs: at 128 MiB, batches of
// 1,000 records from 64 connections held 93 MB of bodies waiting and the node at 10,000 vehicles peaked
// at 410 MB; at 32 MiB, 294 MB at the same rate, the bodies beyond it waiting unread in the kernel's
// socket buffers (docs/api.md).
const BodyMemory = 32 << 20

// BodyMemoryPerAddress is what one client address (an IPv4 address, an IPv6 /64) holds of BodyMemory at
// once by default (Budgets.MemoryPerAddress, `glovebox serve --memory-per-address`; without Budgets this
// bound holds): one of the largest event batches and some, or a dozen batches of 1,000 records. Its
// requests over it wait for its own earlier ones, so that one address can't take the whole budget.
const BodyMemoryPerAddress = 20 << 20

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
	var src io.Reader = r.Body
	var pb *pacedBody
	if p, paced := r.Context().Value(pacingKey{}).(pacing); paced && (n < 0 || n > SmallBody) {
		pb = &pacedBody{r: r.Body, rc: http.NewResponseController(w), p: p, start: time.Now()}
		src = pb
	}
	if n >= 0 {
		body = make([]byte, n) // one allocation of the declared size, which the read can't outgrow
		_, err = io.ReadFull(src, body)
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, io.NopCloser(src), limit))
	}
	if err != nil {
		release()
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			tooLarge()
		case errors.Is(err, os.ErrDeadlineExceeded):
			writeErr(w, CodeTooSlow, "the body did not arrive in time: a body over 64 KiB must keep arriving at the node's minimum rate once its grace has passed (docs/api.md)")
		default:
			writeErr(w, string(ledger.CodeMalformed), "couldn't read the body")
		}
		return nil, nil, false // a deadline that passed stays: the connection is closed, not read on
	}
	if pb != nil {
		pb.done()
	}
	return body, release, true
}

// pacing is what NewHTTPServer tells readBody of ServerLimits.MinBodyRate, BodyGrace and ReadTimeout.
type pacing struct {
	rate  int64
	grace time.Duration
	until time.Time // the request's ReadTimeout, zero for none
}

type pacingKey struct{}

// pacedBody reads a large body at ServerLimits.MinBodyRate: before each read it sets the connection's
// read deadline to the moment by which the next byte is due — the grace, then a second per rate bytes
// of what has arrived — never later than the request's ReadTimeout.
type pacedBody struct {
	r     io.Reader
	rc    *http.ResponseController
	p     pacing
	start time.Time
	read  int64
}

func (b *pacedBody) Read(buf []byte) (int, error) {
	if b.rc != nil {
		due := b.start.Add(b.p.grace + time.Duration(float64(b.read+1)/float64(b.p.rate)*float64(time.Second)))
		if !b.p.until.IsZero() && due.After(b.p.until) {
			due = b.p.until
		}
		if b.rc.SetReadDeadline(due) != nil {
			b.rc = nil // a writer without a connection (tests): read unpaced
		}
	}
	n, err := b.r.Read(buf)
	b.read += int64(n)
	return n, err
}

// done puts the request's own deadline back once the body is read, for the server's reads that follow
// (it watches the connection for the client going away while the request is handled).
func (b *pacedBody) done() {
	if b.rc != nil {
		b.rc.SetReadDeadline(b.p.until)
	}
}

// memoryShare is what one client address may hold of BodyMemory under b (≤ 0: no share per address):
// BodyMemoryPerAddress without budgets.
func memoryShare(b *Budgets) int64 {
	if b == nil {
		return BodyMemoryPerAddress
	}
	return b.MemoryPerAddress
}
