package graphql_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api/graphql"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// TestFastPathAnswersAsGqlgen sends the same requests, from every kind of caller, to a handler with the
// fast path and to one without, and demands the same status, content type, body bytes and access-log
// entries — and that the fast path answered the requests it is meant to take, and only those.
func TestFastPathAnswersAsGqlgen(t *testing.T) {
	s := newSeries(t)
	// A string that JSON escapes (json.Marshal escapes <, >, & and U+2028 in HTML-safe output).
	at := s.t0.Add(250 * time.Second)
	s.post(t, testnode.Record(t, s.sdev, s.vehicle, "escape", at,
		telemetry.EventSignal{Name: "powertrainType", Timestamp: at, Value: "Tesla <Model 3> & more\u2028"}))
	if _, err := s.n.Telemetry.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.now = s.t0.Add(10 * time.Minute) // one clock for both handlers, so access entries compare equal
	s.mu.Unlock()
	var entries []accesslog.Entry
	cfg := graphql.Config{State: s.n.Sequencer.Read, Telemetry: s.n.Telemetry, Now: s.clock,
		Record: func(e accesslog.Entry) { entries = append(entries, e) }}
	fast := graphql.NewHandler(cfg)
	cfg.DisableFastPath = true
	slow := graphql.NewHandler(cfg)

	reader := s.n.App(t, s.owner)
	s.n.Grant(t, s.owner, s.vehicle, reader.Address, time.Now().Add(48*time.Hour).Unix(), ledger.PermSignals)
	approx := s.n.App(t, s.owner)
	s.n.Grant(t, s.owner, s.vehicle, approx.Address, time.Now().Add(48*time.Hour).Unix(), ledger.PermLocationApproximate)
	stranger := testnode.NewKey(t)
	callers := map[string]common.Address{"owner": s.owner.Address, "reader": reader.Address, "approx": approx.Address,
		"stranger": stranger.Address, "nobody": {}}

	when := func(sec int) string { return rfc(s.t0.Add(time.Duration(sec) * time.Second)) }
	minute := rfc(s.t0.Truncate(time.Minute))
	type request struct {
		name      string
		body      string // the JSON body; a plain query when it does not start with {"
		fast      bool   // whether the fast path must take it (for the owner)
		accept    string
		operation string
	}
	q := func(format string, args ...any) string {
		b, _ := json.Marshal(map[string]any{"query": fmt.Sprintf(format, args...)})
		return string(b)
	}
	withVars := func(query string, vars map[string]any) string {
		b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		return string(b)
	}
	id := s.vehicle
	requests := []request{
		{name: "numbers, strings, booleans under aliases", fast: true, body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) {
			timestamp maxSpeed: speed(agg: MAX) avgSpeed: speed(agg: AVG) speed(agg: MIN) first: speed(agg: FIRST) last: speed(agg: LAST)
			med: speed(agg: MED) rnd: speed(agg: RAND) powertrainType(agg: TOP) u: powertrainType(agg: UNIQUE) isIgnitionOn(agg: AVG)
			currentLocationAltitude(agg: MAX) } }`, id, when(0), when(300))},
		{name: "aligned to the minute: the roll-ups", fast: true, body: q(`{ signals(tokenId: %d, interval: "2m", from: %q, to: %q) {
			timestamp speed(agg: AVG) a: speed(agg: MAX) f: powertrainType(agg: FIRST) l: powertrainType(agg: LAST) } }`, id, minute, when(600))},
		{name: "an alias for signals and for timestamp", fast: true, body: q(`{ h: signals(tokenId: %d, interval: "30s", from: %q, to: %q) {
			ts: timestamp s: speed(agg: AVG) } }`, id, when(0), when(300))},
		{name: "variables", fast: true, body: withVars(`query Q($id: Int!, $from: Time!, $to: Time!, $agg: FloatAggregation!) {
			signals(tokenId: $id, interval: "1m", from: $from, to: $to) { timestamp speed(agg: $agg) } }`,
			map[string]any{"id": id, "from": when(0), "to": when(300), "agg": "MAX"})},
		{name: "no buckets", fast: true, body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { timestamp speed(agg: AVG) } }`,
			id, when(1000), when(2000))},
		{name: "a bad interval", fast: true, body: q(`{ signals(tokenId: %d, interval: "5 minutes", from: %q, to: %q) { speed(agg: AVG) } }`, id, when(0), when(300))},
		{name: "too many buckets", fast: true, body: q(`{ signals(tokenId: %d, interval: "1s", from: %q, to: %q) { speed(agg: AVG) } }`, id, when(0), when(20000))},
		{name: "a negative tokenId", fast: true, body: q(`{ signals(tokenId: -1, interval: "1m", from: %q, to: %q) { speed(agg: AVG) } }`, when(0), when(300))},
		{name: "no such vehicle", fast: true, body: q(`{ signals(tokenId: 999, interval: "1m", from: %q, to: %q) { speed(agg: AVG) } }`, when(0), when(300))},
		{name: "only timestamps", fast: true, body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { timestamp } }`, id, when(0), when(300))},
		{name: "UNIQUE: a JSON array inside a string, quotes escaped", fast: true, body: q(`{ signals(tokenId: %d, interval: "1h", from: %q, to: %q) { u: powertrainType(agg: UNIQUE) } }`,
			id, when(0), when(300))},
		{name: "a string with <, > and & (HTML-escaped by json.Marshal)", fast: true, body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { l: powertrainType(agg: LAST) } }`,
			id, when(240), when(300))},
		{name: "the same bucket without it: written directly", fast: true, body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { l: powertrainType(agg: LAST) } }`,
			id, when(60), when(120))},
		{name: "operationName matching", fast: true, body: func() string {
			b, _ := json.Marshal(map[string]any{"operationName": "Chart", "query": fmt.Sprintf(
				`query Chart { signals(tokenId: %d, interval: "1m", from: %q, to: %q) { speed(agg: AVG) } }`, id, when(0), when(300))})
			return string(b)
		}()},
		// What the fast path leaves to gqlgen.
		{name: "a location field", body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { currentLocationCoordinates(agg: LAST) { latitude } } }`, id, when(0), when(300))},
		{name: "approximate location", body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { currentLocationApproximateCoordinates(agg: FIRST) { latitude longitude } } }`, id, when(0), when(300))},
		{name: "__typename", body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { __typename speed(agg: AVG) } }`, id, when(0), when(300))},
		{name: "a fragment", body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { ...F } } fragment F on SignalAggregations { speed(agg: AVG) }`, id, when(0), when(300))},
		{name: "@include", body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { speed(agg: AVG) @include(if: true) } }`, id, when(0), when(300))},
		{name: "two root fields", body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { speed(agg: AVG) } __typename }`, id, when(0), when(300))},
		{name: "a filter", body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q, filter: {source: "0x01"}) { speed(agg: AVG) } }`, id, when(0), when(300))},
		{name: "invalid GraphQL", body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { speed(agg: NOPE) } }`, id, when(0), when(300))},
		{name: "a variable of the wrong type", body: withVars(`query Q($id: Int!) { signals(tokenId: $id, interval: "1m", from: "2026-01-01T00:00:00Z", to: "2026-01-01T01:00:00Z") { speed(agg: AVG) } }`,
			map[string]any{"id": "one"})},
		{name: "another operationName", body: func() string {
			b, _ := json.Marshal(map[string]any{"operationName": "Other", "query": fmt.Sprintf(
				`query Chart { signals(tokenId: %d, interval: "1m", from: %q, to: %q) { speed(agg: AVG) } }`, id, when(0), when(300))})
			return string(b)
		}()},
		{name: "an Accept gqlgen answers differently", accept: "application/graphql-response+json", body: q(`{ signals(tokenId: %d, interval: "1m", from: %q, to: %q) { speed(agg: AVG) } }`, id, when(0), when(300))},
		{name: "not JSON", body: `{"query": `},
	}
	send := func(h http.Handler, caller common.Address, r request) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(r.body))
		req.Header.Set("Content-Type", "application/json")
		if r.accept != "" {
			req.Header.Set("Accept", r.accept)
		}
		req = req.WithContext(graphql.WithCaller(req.Context(), caller))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	names := make([]string, 0, len(callers))
	for n := range callers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, r := range requests {
		for _, who := range names {
			caller := callers[who]
			t.Run(r.name+"/"+who, func(t *testing.T) {
				entries = nil
				before := graphql.FastPathServed.Load()
				a := send(fast, caller, r)
				took := graphql.FastPathServed.Load() > before
				fastEntries := entries
				entries = nil
				b := send(slow, caller, r)
				if a.Code != b.Code || a.Header().Get("Content-Type") != b.Header().Get("Content-Type") || a.Body.String() != b.Body.String() {
					t.Fatalf("fast path: %d %s\n%s\ngqlgen: %d %s\n%s", a.Code, a.Header().Get("Content-Type"), a.Body, b.Code, b.Header().Get("Content-Type"), b.Body)
				}
				if !slices.EqualFunc(fastEntries, entries, func(x, y accesslog.Entry) bool {
					return fmt.Sprint(x) == fmt.Sprint(y)
				}) {
					t.Fatalf("access entries differ:\nfast path: %+v\ngqlgen:    %+v", fastEntries, entries)
				}
				if took != r.fast {
					t.Fatalf("the fast path took it: %v, want %v (answer %s)", took, r.fast, a.Body)
				}
			})
		}
	}
}
