package attack

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/internal/testnode"
)

// dial opens a TCP connection to n from the loopback address local ("" for any).
func dial(t *testing.T, n *testnode.Node, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", strings.TrimPrefix(n.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByPeer reports whether the node closed c within d: a read ends (EOF or a reset) before the
// deadline instead of timing out. Whatever the node still sends is read and dropped.
func closedByPeer(t *testing.T, c net.Conn, d time.Duration) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// roundTrip sends a GET of path on c and reads the answer.
func roundTrip(c net.Conn, br *bufio.Reader, path string) (*http.Response, []byte, error) {
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: node\r\n\r\n", path); err != nil {
		return nil, nil, err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// TestATrickledBodyIsCutOff announces a large body and sends it a byte at a time: the node stops
// waiting when the read timeout runs out and closes the connection, rather than holding it (and its file
// descriptor) for as long as the client cares to trickle.
func TestATrickledBodyIsCutOff(t *testing.T) {
	limits := api.DefaultServerLimits
	limits.ReadTimeout = 2 * time.Second
	n := testnode.Start(t, testnode.Options{Limits: &limits})
	for _, path := range []string{"/v1/events", "/v1/transactions", "/graphql", "/oauth/token"} {
		t.Run(path, func(t *testing.T) {
			c := dial(t, n, "")
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n[", path)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			// Far longer than the timeout: without one, the node would still be reading.
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			start := time.Now()
			_, err := io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the node still held the connection after %s", time.Since(start))
			}
			t.Logf("closed after %s", time.Since(start))
		})
	}
}

// TestConnectionsPerAddressAreCapped opens as many connections from one address as the cap allows: the
// next one is answered too_many_connections and closed, another address is served throughout, and a
// connection closed makes room for a new one.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	limits := api.DefaultServerLimits
	limits.MaxConnsPerAddress = 4
	n := testnode.Start(t, testnode.Options{Limits: &limits})
	var held []net.Conn
	for i := range limits.MaxConnsPerAddress {
		c := dial(t, n, "127.0.0.1")
		if resp, body, err := roundTrip(c, bufio.NewReader(c), "/v1/node"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %s", i, err, body)
		}
		held = append(held, c)
	}
	over := dial(t, n, "127.0.0.1")
	resp, body, err := roundTrip(over, bufio.NewReader(over), "/v1/node")
	var e api.ErrorBody
	if err != nil || resp.StatusCode != http.StatusTooManyRequests || json.Unmarshal(body, &e) != nil || e.Error.Code != api.CodeTooManyConnections {
		t.Fatalf("the connection over the cap: %v %v %s", err, resp, body)
	}
	other := dial(t, n, "127.0.0.2")
	if resp, body, err := roundTrip(other, bufio.NewReader(other), "/v1/node"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("another address: %v %s", err, body)
	}
	held[0].Close()
	// The node learns of the close when its read of the connection ends: retry until it has.
	servedAgain(t, n, "a close", func(int) string { return "127.0.0.1" })
}

// servedAgain dials n from from(i), i = 0, 1, …, until a GET of /v1/node is answered 200: the node has room
// again after what frees it (named by after).
func servedAgain(t *testing.T, n *testnode.Node, after string, from func(i int) string) {
	t.Helper()
	for i := 0; ; i++ {
		c := dial(t, n, from(i))
		resp, _, err := roundTrip(c, bufio.NewReader(c), "/v1/node")
		if err == nil && resp.StatusCode == 200 {
			return
		}
		if i == 100 {
			t.Fatalf("no room after %s: %v %v", after, err, resp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConnectionsOfManyAddressesAreCapped floods the node from many client addresses (loopback's 127/8,
// as a host with an IPv6 /48 holds 65,536 /64s), each under its own cap. Before the total cap the node
// kept every one of them, and with it their memory and file descriptors: 19,500 idle keep-alive
// connections, each from an address of its own, held 495 MB and 19,534 of its 20,000 descriptors. Now it
// holds at most MaxConns: a new client takes the place of the connection idle longest (between requests,
// or silent, or stalled in its headers, since it connected) and is served; when every connection's
// request is being handled, a new one is answered 503 over_capacity and closed; once the read timeout has
// cut those off, the node serves again.
func TestConnectionsOfManyAddressesAreCapped(t *testing.T) {
	limits := api.DefaultServerLimits
	limits.MaxConns = 8
	limits.HeaderTimeout, limits.ReadTimeout = 2*time.Second, 2*time.Second
	n := testnode.Start(t, testnode.Options{Limits: &limits})
	addr := func(i int) string { return fmt.Sprintf("127.0.%d.%d", 1+i/200, 1+i%200) }
	// Twenty-four clients of as many addresses, one after the other, each keeping its connection open
	// after a request: each is served, and the node keeps the last ones only.
	var held []net.Conn
	for i := range 24 {
		c := dial(t, n, addr(i))
		if resp, body, err := roundTrip(c, bufio.NewReader(c), "/v1/node"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("client %d: %v %s", i, err, body)
		}
		held = append(held, c)
		if i == limits.MaxConns-1 {
			time.Sleep(200 * time.Millisecond) // the first ones are idle by now
		}
	}
	open := 0
	for i, c := range held {
		closed := closedByPeer(t, c, 200*time.Millisecond)
		if !closed {
			open++
		}
		if i < limits.MaxConns && !closed {
			t.Errorf("client %d, among the first idle, still has its connection", i)
		}
	}
	if open > limits.MaxConns {
		t.Fatalf("the node holds %d connections, over its cap of %d", open, limits.MaxConns)
	}
	// Eight clients connect and send nothing, as a flood of connections would: each takes the place of
	// one before it, and a client that then sends its request at once is served, the silent one it
	// arrived after closed to make room.
	var silent []net.Conn
	for i := range limits.MaxConns {
		silent = append(silent, dial(t, n, addr(50+i)))
	}
	time.Sleep(200 * time.Millisecond) // the node has accepted them all
	late := dial(t, n, addr(60))
	if resp, body, err := roundTrip(late, bufio.NewReader(late), "/v1/node"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a client after eight silent connections: %v %s", err, body)
	}
	if !closedByPeer(t, silent[0], 5*time.Second) {
		t.Fatal("the silent connection accepted first was not closed to make room")
	}
	// A client stalled in its headers is as silent: one more such client closes the first.
	stalled := dial(t, n, addr(70))
	if _, err := io.WriteString(stalled, "GET /v1/node HTTP/1.1\r\nHost: node\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	dial(t, n, addr(71))
	if !closedByPeer(t, stalled, 5*time.Second) {
		t.Fatal("the connection stalled in its headers was not closed to make room")
	}
	// Eight clients stop in the middle of their request's body: their requests are being handled, the
	// node is at its cap with none idle.
	for i := range limits.MaxConns {
		c := dial(t, n, addr(100+i))
		if _, err := io.WriteString(c, "POST /v1/events HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the node has read their headers: none is idle
	over := dial(t, n, addr(150))
	resp, body, err := roundTrip(over, bufio.NewReader(over), "/v1/node")
	var e api.ErrorBody
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Error.Code != api.CodeOverCapacity {
		t.Fatalf("a connection over the cap with none idle: %v %v %s", err, resp, body)
	}
	if !closedByPeer(t, over, 5*time.Second) {
		t.Fatal("the connection answered over_capacity was kept")
	}
	// The read timeout ends the stalled requests and frees their places.
	servedAgain(t, n, "the read timeout", func(i int) string { return addr(151 + i) })
}
