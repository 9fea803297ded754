package api

import (
	"net/http"

	"golang.org/x/sync/semaphore"
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
