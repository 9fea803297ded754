package webhook

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// endpoint is a test server that counts the connections it accepted and records what it was sent.
type endpoint struct {
	*httptest.Server
	conns atomic.Int32
	mu    sync.Mutex
	got   []*http.Request
	bods  []string
}

func newEndpoint(t *testing.T, tlsToo bool, h http.HandlerFunc) *endpoint {
	ep := &endpoint{}
	ep.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ep.mu.Lock()
		ep.got, ep.bods = append(ep.got, r), append(ep.bods, string(b))
		ep.mu.Unlock()
		h(w, r)
	}))
	ep.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ep.conns.Add(1)
		}
	}
	if tlsToo {
		ep.StartTLS()
	} else {
		ep.Start()
	}
	t.Cleanup(ep.Close)
	return ep
}

func testSender(t *testing.T, ep *endpoint, p Policy) *sender {
	s := newSender(p, 5*time.Second, 4)
	if ep.TLS != nil {
		s.tls = &tls.Config{RootCAs: ep.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	}
	t.Cleanup(s.closeIdle)
	return s
}

func mustURL(t *testing.T, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testHeader(b []byte) []byte {
	return append(b, "Content-Type: application/cloudevents+json\r\n"+canonicalID+": msg_1\r\n"...)
}

// The sender posts over kept connections: the request arrives whole (method, path and query, host,
// headers, body), over HTTP and HTTPS, and a second attempt reuses the first's connection.
func TestTheSenderPostsOverAKeptConnection(t *testing.T) {
	for _, tlsToo := range []bool{false, true} {
		ep := newEndpoint(t, tlsToo, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusAccepted)
		})
		s := testSender(t, ep, Policy{AllowPrivate: true})
		target := mustURL(t, ep.URL+"/hooks/a%20b?x=1&y=2")
		for i := range 2 {
			code, retryAfter, err := s.post(context.Background(), target, testHeader, []byte(`{"n":1}`), time.Now().Add(5*time.Second))
			if err != nil || code != http.StatusAccepted || retryAfter != "7" {
				t.Fatalf("tls %v, post %d: %d %q %v", tlsToo, i, code, retryAfter, err)
			}
		}
		if n := ep.conns.Load(); n != 1 {
			t.Errorf("tls %v: %d connections for two posts, want 1", tlsToo, n)
		}
		r, body := ep.got[1], ep.bods[1]
		if r.Method != http.MethodPost || r.URL.RequestURI() != "/hooks/a%20b?x=1&y=2" || r.Host != target.Host || body != `{"n":1}` ||
			r.Header.Get("webhook-id") != "msg_1" || r.Header.Get("Content-Type") != "application/cloudevents+json" || r.ContentLength != 7 {
			t.Errorf("tls %v: the endpoint got %s %s host %s, headers %v, body %q", tlsToo, r.Method, r.URL.RequestURI(), r.Host, r.Header, body)
		}
	}
}

// What the sender does with answers and connections, case by case.
func TestTheSenderKeepsOnlyConnectionsItMayUseAgain(t *testing.T) {
	big := strings.Repeat("x", maxDrain+1)
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		between   func(ep *endpoint) // after the first post
		wantCode  int
		wantConns int32 // after two posts
	}{
		{"an empty answer keeps it", func(w http.ResponseWriter, r *http.Request) {}, nil, 200, 1},
		{"a body up to 64 KiB is read and keeps it", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big[1:]) }, nil, 200, 1},
		{"a longer body closes it", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) }, nil, 200, 2},
		{"Connection: close closes it", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Connection", "close") }, nil, 200, 2},
		{"a redirect is the answer, not followed", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }, nil, 302, 1},
		{"an informational answer is skipped", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusTeapot)
		}, nil, http.StatusTeapot, 1},
		{"a kept connection the endpoint closed is replaced, the message sent again", func(w http.ResponseWriter, r *http.Request) {},
			func(ep *endpoint) { ep.CloseClientConnections() }, 200, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := newEndpoint(t, false, tt.handler)
			s := testSender(t, ep, Policy{AllowPrivate: true})
			for i := range 2 {
				code, _, err := s.post(context.Background(), mustURL(t, ep.URL+"/"), testHeader, []byte("{}"), time.Now().Add(5*time.Second))
				if err != nil || code != tt.wantCode {
					t.Fatalf("post %d: %d %v, want %d", i, code, err, tt.wantCode)
				}
				if i == 0 && tt.between != nil {
					tt.between(ep)
					time.Sleep(20 * time.Millisecond) // the close reaches the kept connection
				}
			}
			if n := ep.conns.Load(); n != tt.wantConns {
				t.Errorf("%d connections for two posts, want %d", n, tt.wantConns)
			}
			ep.mu.Lock()
			defer ep.mu.Unlock()
			if len(ep.got) != 2 {
				t.Errorf("the endpoint got %d requests, want 2", len(ep.got))
			}
		})
	}
}

// The guard judges the address connected to; a slow endpoint ends the attempt at its deadline; a
// context that ends ends it too.
func TestTheSenderRefusesPrivateAddressesAndStopsAtTheDeadline(t *testing.T) {
	release := make(chan struct{})
	ep := newEndpoint(t, false, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	port := ep.URL[strings.LastIndex(ep.URL, ":")+1:]
	for _, raw := range []string{"http://localhost:" + port + "/", ep.URL + "/"} {
		_, _, err := testSender(t, ep, Policy{}).post(context.Background(), mustURL(t, raw), testHeader, nil, time.Now().Add(5*time.Second))
		if !refused(err) {
			t.Errorf("%s: %v, want refused", raw, err)
		}
	}
	if ep.conns.Load() != 0 {
		t.Fatalf("the endpoint was reached")
	}
	s := testSender(t, ep, Policy{AllowPrivate: true})
	start := time.Now()
	if _, _, err := s.post(context.Background(), mustURL(t, ep.URL+"/"), testHeader, nil, start.Add(200*time.Millisecond)); !isTimeout(err) {
		t.Errorf("a slow endpoint: %v, want a timeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, _, err := s.post(ctx, mustURL(t, ep.URL+"/"), testHeader, nil, time.Now().Add(5*time.Second)); err == nil {
		t.Errorf("a cancelled attempt succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the attempts took %s", d)
	}
}

// When the endpoint closed every kept connection, the message is sent again on a new connection, not on
// another kept one closed alike.
func TestTheSenderSendsAgainOnANewConnectionWhenEveryKeptOneWasClosed(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(2)
	ep := newEndpoint(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(canonicalID) == "msg_1" {
			arrived.Done()
			arrived.Wait() // both first posts in flight at once: two connections
		}
	})
	s := testSender(t, ep, Policy{AllowPrivate: true})
	target := mustURL(t, ep.URL+"/")
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if code, _, err := s.post(context.Background(), target, testHeader, nil, time.Now().Add(5*time.Second)); err != nil || code != 200 {
				t.Errorf("a first post: %d %v", code, err)
			}
		})
	}
	wg.Wait()
	if n := len(s.idle[mustKey(t, target)]); n != 2 {
		t.Fatalf("%d connections kept, want 2", n)
	}
	ep.CloseClientConnections()
	time.Sleep(20 * time.Millisecond)
	other := func(b []byte) []byte { return append(b, canonicalID+": msg_2\r\n"...) }
	if code, _, err := s.post(context.Background(), target, other, nil, time.Now().Add(5*time.Second)); err != nil || code != 200 {
		t.Fatalf("the post after the endpoint closed both connections: %d %v", code, err)
	}
	if n := ep.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

func mustKey(t *testing.T, u *url.URL) string {
	k, err := endpointKey(u)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
