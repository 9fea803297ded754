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
	for i := 0; ; i++ {
		c := dial(t, n, "127.0.0.1")
		resp, _, err := roundTrip(c, bufio.NewReader(c), "/v1/node")
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if i == 100 {
			t.Fatalf("no room after a close: %v %v", err, resp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
