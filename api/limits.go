package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/glovebox/glovebox/internal/connlimit"
)

// CodeTooManyConnections is the code of the answer written on a connection refused because its address
// holds too many already (HTTP 429; the connection is then closed).
const CodeTooManyConnections = "too_many_connections"

// CodeOverCapacity is the code of the answer written on a connection refused because the node holds
// ServerLimits.MaxConns connections already, each with a request being handled (HTTP 503; the connection
// is then closed).
const CodeOverCapacity = "over_capacity"

// ServerLimits are the limits of a public node's HTTP server: how long a client may take to send a
// request, how long an idle keep-alive connection stays open, and how many connections one client
// address and all clients may hold at once. A zero field means no limit.
type ServerLimits struct {
	// HeaderTimeout bounds the time to read a request's headers.
	HeaderTimeout time.Duration
	// ReadTimeout bounds the time to read a whole request, headers and body, from its first byte: a
	// client that announces a large Content-Length and trickles the body is cut off when it runs out.
	ReadTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive connection waits for its next request.
	IdleTimeout time.Duration
	// MaxConnsPerAddress bounds the connections one client address (an IPv4 address, or an IPv6 /64)
	// holds at once; a connection over it is answered 429 too_many_connections and closed.
	MaxConnsPerAddress int
	// MaxConns bounds the connections of all clients together. At it, a new connection takes the place of
	// the one idle longest — a keep-alive connection between requests, or one that has not sent a byte
	// yet — which is closed; when every one is in the middle of a request it is answered 503
	// over_capacity and closed.
	MaxConns int
	// MinBodyRate is the bytes per second a large body (over SmallBody, holding a share of BodyMemory) must
	// keep arriving at once BodyGrace has passed since the node began to read it: at every moment after
	// that, what has arrived is at least MinBodyRate times the time since the grace began. A body that
	// falls behind is answered 408 too_slow and its connection closed, its share given back: holding memory
	// costs a client the bandwidth of sending it, not only an open connection. The request's ReadTimeout
	// still bounds the whole. Only for servers made by NewHTTPServer.
	MinBodyRate int64
	// BodyGrace is the time a large body may take before MinBodyRate applies (slow starts, small bodies).
	BodyGrace time.Duration
}

// DefaultServerLimits are the limits `glovebox serve` starts with (each has a flag).
var DefaultServerLimits = ServerLimits{
	HeaderTimeout: 10 * time.Second,
	// A batch of 1,000 events is at most 16 MiB: 60 s lets it through at 280 KiB/s.
	ReadTimeout:        60 * time.Second,
	IdleTimeout:        120 * time.Second,
	MaxConnsPerAddress: 256,
	// An idle keep-alive connection holds about 22 KB of the node's memory (docs/api.md): 8,192 hold
	// about 180 MB.
	MaxConns: 8192,
	// 2 Mbit/s, as the broker's mqtt.MinPacketRate: a 16 MiB batch is sent in 74 s at it, so ReadTimeout is
	// what bounds the largest; a client on a slower link sends smaller batches (a body of at most 64 KiB is
	// never paced, one of 2.5 MiB passes at 1 Mbit/s).
	MinBodyRate: 256 << 10,
	BodyGrace:   10 * time.Second,
}

// NewHTTPServer returns an http.Server for h with the timeouts of l. Serve it on LimitListener(ln, l) to
// cap the connections too: the server tells that listener which connections are idle (new, or between
// requests).
func NewHTTPServer(h http.Handler, l ServerLimits) *http.Server {
	if l.MinBodyRate > 0 {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength >= 0 && r.ContentLength <= SmallBody {
				inner.ServeHTTP(w, r) // never paced (readBody)
				return
			}
			p := pacing{rate: l.MinBodyRate, grace: l.BodyGrace}
			if l.ReadTimeout > 0 {
				// The server's own deadline runs from the request's first byte, a little earlier.
				p.until = time.Now().Add(l.ReadTimeout)
			}
			inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), pacingKey{}, p)))
		})
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: l.HeaderTimeout, ReadTimeout: l.ReadTimeout, IdleTimeout: l.IdleTimeout,
		// A connection that has not sent a byte of a request yet (new) or is between requests (idle) may be
		// closed to make room; one in the middle of a request may not.
		ConnState: func(c net.Conn, s http.ConnState) { connlimit.Idle(c, s == http.StateNew || s == http.StateIdle) }}
}

// LimitListener returns ln with at most l.MaxConnsPerAddress connections open at once from each client
// address (connlimit.Address: IPv6 clients by their /64) and l.MaxConns from all (connlimit.Listener). A
// connection over its address's cap is answered with an HTTP 429 too_many_connections, one over the total
// with none idle (NewHTTPServer marks them) a 503 over_capacity, and closed at once; Accept goes on to the
// next one. Without either cap it returns ln.
func LimitListener(ln net.Listener, l ServerLimits) net.Listener {
	return connlimit.Listener(ln, connlimit.Caps{PerAddress: l.MaxConnsPerAddress, Total: l.MaxConns}, func(c net.Conn, why connlimit.Refusal) {
		answer := refusedAnswer
		if why == connlimit.OverTotal {
			answer = overCapacityAnswer
		}
		// Small enough for the socket's send buffer: the write does not wait for the client.
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(answer)
	})
}

var (
	refusedAnswer      = closingAnswer(http.StatusTooManyRequests, CodeTooManyConnections, "too many connections from this address: close some and retry")
	overCapacityAnswer = closingAnswer(http.StatusServiceUnavailable, CodeOverCapacity, "the node holds as many connections as it serves at once: retry later")
)

// closingAnswer is a whole HTTP response with the error body of code, closing the connection.
func closingAnswer(status int, code, msg string) []byte {
	body, _ := json.Marshal(ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}
