package webhook

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// sender posts deliveries over HTTP/1.1 connections it keeps between attempts, each used by one attempt
// at a time. The attempt writes its request and reads the answer on its own goroutine: net/http's
// transport hands every request to a writing and a reading goroutine of the connection and back, which
// cost a delivery as much as the signature. What it keeps of the transport's behaviour: the guard's
// dialer (the address connected to is checked), TLS with the system's roots, no proxy, no redirect
// followed (a 3xx is the answer), one deadline for the whole attempt, keep-alive unless the endpoint
// says otherwise, idle connections closed after senderIdle. A kept connection the endpoint closed
// meanwhile fails before any byte of an answer: the request is sent again once on a new connection
// (with the same webhook-id, which at-least-once delivery allows), as the transport does with a request
// it may replay.
type sender struct {
	dial func(ctx context.Context, network, address string) (net.Conn, error)
	// tls is the base configuration of TLS connections (ServerName is set per host); nil: the defaults.
	tls *tls.Config
	// perHost and total bound the idle connections kept.
	perHost, total int

	mu    sync.Mutex // guards idle, count, swept and targets
	idle  map[string][]*senderConn
	count int
	swept time.Time
	// targets are the URLs parsed (the webhooks' URLs, read only), so that an attempt does not parse
	// its URL again; emptied when it holds maxTargets.
	targets map[string]*url.URL
}

// maxTargets bounds the parsed URLs a sender keeps.
const maxTargets = 4096

// parse returns raw parsed, from the sender's URLs when it parsed raw before. The URL returned is shared:
// read only.
func (s *sender) parse(raw string) (*url.URL, error) {
	s.mu.Lock()
	u := s.targets[raw]
	s.mu.Unlock()
	if u != nil {
		return u, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.targets) >= maxTargets {
		clear(s.targets)
	}
	s.targets[raw] = u
	s.mu.Unlock()
	return u, nil
}

// senderIdle is how long an idle connection is kept.
const senderIdle = 90 * time.Second

// senderConn is a kept connection to one endpoint (scheme://host:port).
type senderConn struct {
	key  string
	conn net.Conn
	br   *bufio.Reader
	buf  []byte // the request being written
	used time.Time
}

func newSender(p Policy, timeout time.Duration, perHost int) *sender {
	return &sender{dial: p.dialer(timeout).DialContext, perHost: perHost, total: max(256, perHost), idle: map[string][]*senderConn{},
		targets: map[string]*url.URL{}}
}

// answerRequest stands for the request an answer is read for: a POST (ReadResponse reads the method
// only).
var answerRequest = &http.Request{Method: http.MethodPost}

// post sends body to target with the header lines headers appends (each "Name: value\r\n"; Host and
// Content-Length are the sender's) and returns the answer's status code and its Retry-After header. The
// attempt ends by deadline.
func (s *sender) post(ctx context.Context, target *url.URL, headers func([]byte) []byte, body []byte, deadline time.Time) (int, string, error) {
	key, err := endpointKey(target)
	if err != nil {
		return 0, "", err
	}
	for try := 0; ; try++ {
		var c *senderConn
		reused := false
		if try == 0 { // a second try takes a new connection: the kept ones may have been closed alike
			c, reused = s.take(key)
		}
		if c == nil {
			if c, err = s.connect(ctx, key, target, deadline); err != nil {
				return 0, "", err
			}
		}
		if err := c.conn.SetDeadline(deadline); err != nil {
			c.conn.Close()
			return 0, "", err
		}
		// A context that ends (the engine stopping) ends the attempt as the deadline would.
		stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
		code, retryAfter, keep, err := c.roundTrip(target, headers, body)
		if !stop() {
			keep = false // the deadline was moved: the connection may be half used
		}
		if err == nil {
			if keep {
				s.put(c)
			} else {
				c.conn.Close()
			}
			return code, retryAfter, nil
		}
		c.conn.Close()
		var unanswered *errUnanswered
		if reused && try == 0 && errors.As(err, &unanswered) && !isTimeout(err) && ctx.Err() == nil {
			continue // the endpoint closed the kept connection: once more on a new one
		}
		return 0, "", err
	}
}

// endpointKey names the endpoint of target: scheme://host:port.
func endpointKey(target *url.URL) (string, error) {
	port := target.Port()
	switch target.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return "", fmt.Errorf("unsupported scheme %q", target.Scheme)
	}
	if target.Hostname() == "" {
		return "", errors.New("no host in the URL")
	}
	return target.Scheme + "://" + net.JoinHostPort(target.Hostname(), port), nil
}

// take returns a kept connection to key, and whether there was one.
func (s *sender) take(key string) (*senderConn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	l := s.idle[key]
	for len(l) > 0 {
		c := l[len(l)-1]
		l[len(l)-1] = nil
		l = l[:len(l)-1]
		s.count--
		if now.Sub(c.used) < senderIdle {
			s.idle[key] = l
			return c, true
		}
		c.conn.Close()
	}
	delete(s.idle, key)
	return nil, false
}

// put keeps c for a later attempt, unless as many are kept already; now and then it closes those idle
// for senderIdle.
func (s *sender) put(c *senderConn) {
	c.used = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.used.Sub(s.swept) > senderIdle/4 {
		s.swept = c.used
		for key, l := range s.idle {
			kept := l[:0]
			for _, k := range l {
				if c.used.Sub(k.used) < senderIdle {
					kept = append(kept, k)
				} else {
					k.conn.Close()
					s.count--
				}
			}
			clear(l[len(kept):])
			if len(kept) == 0 {
				delete(s.idle, key)
			} else {
				s.idle[key] = kept
			}
		}
	}
	if s.count >= s.total || len(s.idle[c.key]) >= s.perHost {
		c.conn.Close()
		return
	}
	s.idle[c.key] = append(s.idle[c.key], c)
	s.count++
}

// closeIdle closes every kept connection.
func (s *sender) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.idle {
		for _, c := range l {
			c.conn.Close()
		}
	}
	clear(s.idle)
	s.count = 0
}

// connect dials key (through the guard) and, for https, makes the TLS handshake, by deadline.
func (s *sender) connect(ctx context.Context, key string, target *url.URL, deadline time.Time) (*senderConn, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	address := key[len(target.Scheme)+len("://"):]
	conn, err := s.dial(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	if target.Scheme == "https" {
		cfg := &tls.Config{}
		if s.tls != nil {
			cfg = s.tls.Clone()
		}
		cfg.ServerName, cfg.NextProtos = target.Hostname(), []string{"http/1.1"}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	return &senderConn{key: key, conn: conn, br: bufio.NewReaderSize(conn, 4096)}, nil
}

// errUnanswered is a failure before any byte of an answer was read.
type errUnanswered struct{ err error }

func (e *errUnanswered) Error() string { return e.err.Error() }
func (e *errUnanswered) Unwrap() error { return e.err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// maxDrain is how much of an answer's body is read (and dropped) to keep its connection; a longer body
// closes it.
const maxDrain = 64 << 10

// roundTrip writes one request and reads its answer (by the connection's deadline): the status code, the
// Retry-After header and whether the connection may be used again.
func (c *senderConn) roundTrip(target *url.URL, headers func([]byte) []byte, body []byte) (int, string, bool, error) {
	b := c.buf[:0]
	b = append(b, "POST "...)
	b = append(b, target.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, target.Host...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	b = headers(b)
	b = append(b, "\r\n"...)
	b = append(b, body...)
	c.buf = b
	if _, err := c.conn.Write(b); err != nil {
		return 0, "", false, &errUnanswered{err}
	}
	if _, err := c.br.Peek(1); err != nil {
		return 0, "", false, &errUnanswered{err}
	}
	for {
		resp, err := http.ReadResponse(c.br, answerRequest)
		if err != nil {
			return 0, "", false, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // an informational answer (103 Early Hints): the final one follows
		}
		n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain+1))
		keep := err == nil && n <= maxDrain && !resp.Close && resp.StatusCode != http.StatusSwitchingProtocols
		resp.Body.Close()
		if keep {
			keep = c.conn.SetDeadline(time.Time{}) == nil
		}
		return resp.StatusCode, resp.Header.Get("Retry-After"), keep, nil
	}
}
