package api

import (
	"fmt"
	"net/http"
)

// Budgets are a public node's limits per client address (an IPv4 address, or an IPv6 /64), beside the
// per-caller RateLimit: however many fresh accounts or keys one address uses, it has one budget. Each
// limiter may be nil (no limit). A refusal is HTTP 429 rate_limited (GraphQL: RATE_LIMITED) with
// Retry-After, and stores nothing.
type Budgets struct {
	// Requests bounds the requests of each client address to the routes RateLimit bounds (GraphQL, sign-in,
	// OAuth, the access log, credentials), signed in or not.
	Requests *RateLimiter
	// Transactions bounds the transactions, not requests, each client address submits to POST
	// /v1/transactions: a batch of n takes n tokens, before any signature is recovered.
	Transactions *RateLimiter
	// Events bounds the records each client address submits to POST /v1/events: a batch of n takes n.
	Events *RateLimiter
	// MemoryPerAddress bounds the bytes of large request bodies each client address holds in memory at
	// once, of the node's BodyMemory (see BodyMemory); ≤ 0: no share per address, only the whole bound.
	MemoryPerAddress int64
}

// BudgetConfig sets the Budgets' rates (per second, sustained) and bursts. A rate ≤ 0 disables that
// budget; a burst below what one request may carry is raised to it, so that every valid request can pass.
type BudgetConfig struct {
	RequestRate      float64 // requests per second per address (burst twice as many)
	TransactionRate  float64 // transactions per second per address
	TransactionBurst int     // transactions one address may submit at once (at least MaxBatch)
	EventRate        float64 // records per second per address
	EventBurst       int     // records one address may submit at once (at least MaxEventBatch)
	MemoryPerAddress int64   // bytes of large request bodies one address may hold in memory at once
}

// DefaultBudgets are the budgets `glovebox serve` starts with (each has a flag). A fleet sending a batch
// of 1,000 records or registering 1,000 cars in one batch passes at once; a demo fleet of 1,000 vehicles
// on one address, each sending a record a second, stays under the event rate.
var DefaultBudgets = BudgetConfig{
	RequestRate:      200,
	TransactionRate:  20,
	TransactionBurst: 4000,
	EventRate:        5000,
	EventBurst:       20000,
	MemoryPerAddress: BodyMemoryPerAddress,
}

// NewBudgets returns the Budgets of c.
func NewBudgets(c BudgetConfig) *Budgets {
	b := &Budgets{MemoryPerAddress: c.MemoryPerAddress}
	if c.RequestRate > 0 {
		b.Requests = NewRateLimiter(RateLimitConfig{Rate: c.RequestRate, Burst: max(1, int(2*c.RequestRate))})
	}
	if c.TransactionRate > 0 {
		b.Transactions = NewRateLimiter(RateLimitConfig{Rate: c.TransactionRate, Burst: max(c.TransactionBurst, MaxBatch)})
	}
	if c.EventRate > 0 {
		b.Events = NewRateLimiter(RateLimitConfig{Rate: c.EventRate, Burst: max(c.EventBurst, MaxEventBatch)})
	}
	return b
}

// take takes n tokens of r's address from l (nil: no limit) and, when there are not enough, writes the
// 429 and returns false.
func take(w http.ResponseWriter, r *http.Request, l *RateLimiter, n int, what string) bool {
	if l == nil {
		return true
	}
	ok, wait := l.AllowN(AddressKey(r), n)
	if !ok {
		writeRateLimitedMsg(w, r, ShapeREST, wait, fmt.Sprintf("this address submitted too many %s", what))
	}
	return ok
}
