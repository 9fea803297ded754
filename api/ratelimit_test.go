package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/internal/testnode"
)

// limited serves a handler that answers 200 behind l, keyed by client address.
func limited(l *api.RateLimiter) http.Handler {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	return l.Wrap(ok, api.CallerKey(nil))
}

func hit(h http.Handler, method, path, remote string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRateLimitRefusesABurstOverTheLimit(t *testing.T) {
	clock := &atomicTime{t: time.Unix(1_800_000_000, 0)}
	l := api.NewRateLimiter(api.RateLimitConfig{Rate: 10, Burst: 5, Now: clock.get})
	h := limited(l)
	for i := 0; i < 5; i++ {
		if rec := hit(h, "GET", "/v1/vehicles/1", "192.0.2.1:1234"); rec.Code != 200 {
			t.Fatalf("request %d of the burst: %d", i, rec.Code)
		}
	}
	rec := hit(h, "GET", "/v1/vehicles/1", "192.0.2.1:1235") // another port, the same caller
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("over the burst: %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	var rest api.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &rest); err != nil || rest.Error.Code != "rate_limited" || rest.Error.Message == "" {
		t.Fatalf("REST body %s (%v)", rec.Body, err)
	}
	if rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("content type %q", rec.Header().Get("Content-Type"))
	}
	// /graphql answers in the GraphQL shape.
	rec = hit(h, "POST", "/graphql", "192.0.2.1:1236")
	var gql struct {
		Data   any `json:"data"`
		Errors []struct {
			Message    string
			Extensions map[string]any
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &gql); err != nil || rec.Code != 429 || len(gql.Errors) != 1 ||
		gql.Errors[0].Extensions["code"] != "RATE_LIMITED" || gql.Errors[0].Message == "" || gql.Data != nil {
		t.Fatalf("GraphQL body %d %s (%v)", rec.Code, rec.Body, err)
	}
	// The shape can be forced.
	forced := l.WrapShape(http.NotFoundHandler(), api.CallerKey(nil), api.ShapeGraphQL)
	if rec := hit(forced, "GET", "/v1/node", "192.0.2.1:1"); rec.Code != 429 || !json.Valid(rec.Body.Bytes()) ||
		!strings.Contains(rec.Body.String(), `"RATE_LIMITED"`) {
		t.Fatalf("forced GraphQL shape: %d %s", rec.Code, rec.Body)
	}

	// Another caller has its own bucket, as does an IPv6 network.
	for _, remote := range []string{"192.0.2.2:1234", "[2001:db8::1]:80"} {
		for i := 0; i < 5; i++ {
			if rec := hit(h, "GET", "/v1/node", remote); rec.Code != 200 {
				t.Fatalf("%s, request %d: %d", remote, i, rec.Code)
			}
		}
	}
	// Hosts of one /64 share a bucket.
	if rec := hit(h, "GET", "/v1/node", "[2001:db8::2]:80"); rec.Code != 429 {
		t.Fatalf("the same /64: %d", rec.Code)
	}
}

func TestRateLimitRefillsOverTime(t *testing.T) {
	clock := &atomicTime{t: time.Unix(1_800_000_000, 0)}
	l := api.NewRateLimiter(api.RateLimitConfig{Rate: 4, Burst: 2, Now: clock.get})
	allow := func() bool { ok, _ := l.Allow("k"); return ok }
	if !allow() || !allow() || allow() {
		t.Fatal("a burst of 2 should pass and the third be refused")
	}
	if _, wait := l.Allow("k"); wait != 250*time.Millisecond {
		t.Fatalf("retry after %v, want 250ms", wait)
	}
	clock.add(100 * time.Millisecond)
	if ok, wait := l.Allow("k"); ok || wait != 150*time.Millisecond {
		t.Fatalf("after 100 ms: %v %v", ok, wait)
	}
	clock.add(150 * time.Millisecond)
	if !allow() || allow() {
		t.Fatal("after 250 ms exactly one token should have come back")
	}
	clock.add(time.Hour) // refills to the burst, no more
	if !allow() || !allow() || allow() {
		t.Fatal("an idle bucket must hold Burst tokens, no more")
	}
	// Refused requests take no token: a caller retrying too early is not pushed further back.
	clock.add(250 * time.Millisecond)
	for range 10 {
		l.Allow("other")
	}
	if !allow() {
		t.Fatal("the token that came back should be there")
	}
}

func TestRateLimitMemoryIsBounded(t *testing.T) {
	clock := &atomicTime{t: time.Unix(1_800_000_000, 0)}
	l := api.NewRateLimiter(api.RateLimitConfig{Rate: 50, Burst: 100, MaxKeys: 1000, Now: clock.get})
	for i := 0; i < 50_000; i++ {
		if ok, _ := l.Allow(fmt.Sprint("caller-", i)); !ok {
			t.Fatalf("a new caller %d was refused", i)
		}
		if i%1000 == 0 {
			clock.add(time.Millisecond)
		}
	}
	if n := l.Len(); n > 1000 {
		t.Fatalf("%d callers tracked, at most 1000 allowed", n)
	}
	// An active caller is kept: it is never the oldest for long.
	for i := 0; i < 150; i++ {
		l.Allow("busy")
	}
	// Idle buckets (full again) are forgotten at the next sweep.
	clock.add(3 * time.Second)
	l.Allow("late")
	if n := l.Len(); n != 1 {
		t.Fatalf("%d callers tracked after every other went idle, want 1", n)
	}
}

// TestRateLimitKeysBySignedInAccount: a signed-in caller is limited per account, wherever it connects
// from; others per address.
func TestRateLimitKeysBySignedInAccount(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	tok := signIn(t, n, owner)
	key := api.CallerKey(n.Auth)
	req := httptest.NewRequest("POST", "/graphql", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	if got := key(req); got != "ip:192.0.2.7" {
		t.Fatalf("anonymous key %q", got)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if got := key(req); got != "account:"+owner.Address.Hex() {
		t.Fatalf("signed-in key %q", got)
	}
	req.Header.Set("Authorization", "Bearer "+tok+"x") // a bad token counts as anonymous
	if got := key(req); got != "ip:192.0.2.7" {
		t.Fatalf("bad-token key %q", got)
	}
}

func TestRateLimitForgetsEachBucketWhenItIsFullAgain(t *testing.T) {
	clock := &atomicTime{t: time.Unix(1_800_000_000, 0)}
	l := api.NewRateLimiter(api.RateLimitConfig{Rate: 10, Burst: 10, Now: clock.get})
	l.AllowN("a", 10) // empty: full again after 1 s
	l.AllowN("b", 5)  // full again after 0.5 s
	l.AllowN("c", 1)  // full again after 0.1 s
	for _, c := range []struct {
		after time.Duration
		want  int // callers tracked, counting the one asking
	}{
		{50 * time.Millisecond, 4},
		{100 * time.Millisecond, 3}, // c is full again; the one asking took a token
		{500 * time.Millisecond, 2},
		{time.Second, 1},
	} {
		clock.set(time.Unix(1_800_000_000, 0).Add(c.after))
		l.Allow(fmt.Sprint("probe-", c.after))
		if n := l.Len(); n != c.want && n != c.want+1 {
			t.Fatalf("after %v: %d callers tracked, want %d (plus the earlier probe if not yet full)", c.after, n, c.want)
		}
	}
	// The first caller is forgotten: it comes back with a whole burst.
	if ok, _ := l.AllowN("a", 10); !ok {
		t.Fatal("a caller whose bucket refilled has less than a burst")
	}
}

// BenchmarkRateLimiter measures a request's cost with n callers tracked, at a million requests a second
// of the limiter's clock, each caller asking every n µs, more than its rate (so none is forgotten): the
// mean cost per request, and the slowest request (max-ns), must not grow with n.
func BenchmarkRateLimiter(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint("callers=", n), func(b *testing.B) {
			start := time.Unix(1_800_000_000, 0)
			clock := &atomicTime{t: start}
			l := api.NewRateLimiter(api.RateLimitConfig{Rate: 1, Burst: 2, MaxKeys: 2 * n, Now: clock.get})
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprint("caller-", i)
				clock.set(start.Add(time.Duration(i-n) * time.Microsecond))
				l.AllowN(keys[i], 2)
			}
			var slowest time.Duration
			b.ResetTimer()
			for i := range b.N {
				clock.set(start.Add(time.Duration(i) * time.Microsecond))
				t0 := time.Now()
				l.Allow(keys[i%n])
				slowest = max(slowest, time.Since(t0))
			}
			b.ReportMetric(float64(slowest.Nanoseconds()), "max-ns")
			if l.Len() != n {
				b.Fatalf("%d callers tracked, want %d", l.Len(), n)
			}
		})
	}
}
