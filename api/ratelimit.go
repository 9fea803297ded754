package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/internal/connlimit"
	"github.com/glovebox/glovebox/internal/expiry"
)

// Rate limiting: a token bucket per caller.
const (
	// CodeRateLimited is the REST error code of a refused request (HTTP 429).
	CodeRateLimited = "rate_limited"
	// GraphQLCodeRateLimited is the extensions.code of a refused GraphQL request (HTTP 429).
	GraphQLCodeRateLimited = "RATE_LIMITED"

	DefaultRateLimit   = 50      // requests per second per caller, sustained
	DefaultRateBurst   = 100     // requests a caller may send at once
	DefaultRateMaxKeys = 100_000 // callers remembered at once
)

// RateLimitConfig configures a RateLimiter; zero fields take the defaults.
type RateLimitConfig struct {
	Rate    float64          // tokens added per second to each caller's bucket (DefaultRateLimit)
	Burst   int              // a bucket's capacity (DefaultRateBurst)
	MaxKeys int              // callers tracked at once (DefaultRateMaxKeys); bounds the memory used
	Now     func() time.Time // the clock; time.Now by default
}

// RateLimiter holds a token bucket per caller key: each request takes one token, tokens come back at Rate
// per second up to Burst. A request finding its bucket empty is refused with 429 Too Many Requests and a
// Retry-After header.
//
// Memory is bounded and so is the work per request: a bucket that has refilled to Burst is the same as no
// bucket, so each bucket sits in a queue by the time it will be full again (internal/expiry), and a
// request forgets the buckets whose time came — O(log n) per request and per forgotten bucket, never a scan.
// If every one of MaxKeys callers is still active, a new caller evicts the bucket closest to full (which
// at worst gives that caller a fresh bucket). A RateLimiter is safe for concurrent use.
type RateLimiter struct {
	rate    float64
	burst   float64
	maxKeys int
	now     func() time.Time
	refill  time.Duration // time for an empty bucket to fill up

	mu      sync.Mutex // guards buckets and full
	buckets map[string]*bucket
	full    expiry.Queue[string] // the keys of buckets, by when each is full again
}

type bucket struct {
	tokens float64
	last   time.Time // when tokens was last brought up to date
}

// NewRateLimiter returns a RateLimiter for cfg.
func NewRateLimiter(cfg RateLimitConfig) *RateLimiter {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRateLimit
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultRateBurst
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultRateMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &RateLimiter{rate: cfg.Rate, burst: float64(cfg.Burst), maxKeys: cfg.MaxKeys, now: cfg.Now,
		buckets: make(map[string]*bucket)}
	l.refill = time.Duration(l.burst / l.rate * float64(time.Second))
	return l
}

// Allow takes a token from key's bucket. When there is none it returns false and how long until there is.
func (l *RateLimiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	return l.AllowN(key, 1)
}

// AllowN takes n tokens from key's bucket, all or none. When there are fewer it returns false and how
// long until there are n; n above the burst never passes (it waits a whole refill time).
func (l *RateLimiter) AllowN(key string, n int) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	// Forgetting a bucket that is full again changes nothing.
	l.full.Expire(now, func(k string) { delete(l.buckets, k) })
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			// The table is full of active callers: forget the one closest to full.
			if k, _, ok := l.full.Pop(); ok {
				delete(l.buckets, k)
			}
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	} else if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt.Seconds()*l.rate)
		b.last = now
	}
	need := float64(n)
	switch {
	case need > l.burst:
		ok, retryAfter = false, l.refill
	case b.tokens >= need:
		b.tokens -= need
		ok = true
	default:
		retryAfter = time.Duration((need - b.tokens) / l.rate * float64(time.Second))
	}
	l.full.Set(key, b.last.Add(time.Duration((l.burst-b.tokens)/l.rate*float64(time.Second))))
	return ok, retryAfter
}

// Len is the number of callers currently tracked.
func (l *RateLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// ErrorShape is how a refusal is written.
type ErrorShape int

const (
	// ShapeByPath writes ShapeGraphQL for /graphql and paths under it, ShapeREST elsewhere.
	ShapeByPath ErrorShape = iota
	// ShapeREST writes {"error":{"code":"rate_limited","message":"…"}}.
	ShapeREST
	// ShapeGraphQL writes {"errors":[{"message":"…","extensions":{"code":"RATE_LIMITED"}}]}.
	ShapeGraphQL
)

// Wrap limits next per caller: key names the caller of a request (see CallerKey); an empty key is not
// limited. Refusals are written in the shape the path calls for (ShapeByPath).
func (l *RateLimiter) Wrap(next http.Handler, key func(*http.Request) string) http.Handler {
	return l.WrapShape(next, key, ShapeByPath)
}

// WrapShape is Wrap with the shape of the refusals given.
func (l *RateLimiter) WrapShape(next http.Handler, key func(*http.Request) string, shape ErrorShape) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := key(r)
		if k == "" {
			next.ServeHTTP(w, r)
			return
		}
		ok, wait := l.Allow(k)
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		writeRateLimited(w, r, shape, wait)
	})
}

func writeRateLimited(w http.ResponseWriter, r *http.Request, shape ErrorShape, wait time.Duration) {
	writeRateLimitedMsg(w, r, shape, wait, "too many requests from this caller")
}

// writeRateLimitedMsg writes a 429 saying why and in how many whole seconds (Retry-After) to retry.
func writeRateLimitedMsg(w http.ResponseWriter, r *http.Request, shape ErrorShape, wait time.Duration, why string) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	msg := fmt.Sprintf("%s: retry in %d s", why, secs)
	if shape == ShapeByPath {
		shape = ShapeREST
		if r.URL.Path == "/graphql" || strings.HasPrefix(r.URL.Path, "/graphql/") {
			shape = ShapeGraphQL
		}
	}
	if shape == ShapeGraphQL {
		type gqlErr struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		}
		writeJSON(w, http.StatusTooManyRequests, struct {
			Errors []gqlErr `json:"errors"`
		}{[]gqlErr{{msg, map[string]any{"code": GraphQLCodeRateLimited}}}})
		return
	}
	writeJSON(w, http.StatusTooManyRequests, ErrorBody{Error: ErrorDetail{Code: CodeRateLimited, Message: msg}})
}

// CallerKey returns the key function Wrap needs: "account:" and the signed-in account when the request
// carries a valid bearer token of iss, else "ip:" and the client address (RemoteAddr; an IPv6 client is
// keyed by its /64, which one host usually holds whole). Behind a reverse proxy, use a key function that
// reads the address the proxy vouches for instead. iss may be nil (addresses only).
func CallerKey(iss *auth.Issuer) func(*http.Request) string {
	return func(r *http.Request) string {
		if iss != nil && r.Header.Get("Authorization") != "" {
			if c, err := iss.FromRequest(r); err == nil {
				return "account:" + c.Subject.Hex()
			}
		}
		return "ip:" + connlimit.Address(r.RemoteAddr)
	}
}

// AddressKey keys a request by its client address alone ("ip:" and connlimit.Address), whoever is signed in.
func AddressKey(r *http.Request) string { return "ip:" + connlimit.Address(r.RemoteAddr) }
