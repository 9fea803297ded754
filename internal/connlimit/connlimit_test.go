package connlimit_test

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/connlimit"
)

func TestAddress(t *testing.T) {
	for _, c := range []struct{ remote, want string }{
		{"192.0.2.7:4711", "192.0.2.7"},
		{"192.0.2.7", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:443", "2001:db8:1:3::/64"},
		{"@abstract-socket", "@abstract-socket"},
		{"", ""},
	} {
		if got := connlimit.Address(c.remote); got != c.want {
			t.Errorf("Address(%q) = %q, want %q", c.remote, got, c.want)
		}
	}
}

// closedByPeer reports whether the server side closed c within d: a read ends with EOF (or a reset)
// before the deadline instead of timing out.
func closedByPeer(t *testing.T, c net.Conn, d time.Duration) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.ReadAll(c)
	if err == nil {
		return true // EOF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

func TestListenerCapsConnectionsPerAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	l := connlimit.Listener(ln, 2, func(c net.Conn) {
		refused.Add(1)
		io.WriteString(c, "busy")
	})
	defer l.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := dial(), dial()
	first, second := <-accepted, <-accepted
	c := dial()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, _ := io.ReadAll(c); string(got) != "busy" {
		t.Fatalf("the third connection read %q, want the refusal and the end", got)
	}
	if closedByPeer(t, a, 300*time.Millisecond) || closedByPeer(t, b, 300*time.Millisecond) {
		t.Fatal("a connection under the cap was closed")
	}
	if n := refused.Load(); n != 1 {
		t.Fatalf("refused %d connections, want 1", n)
	}
	// Closing an accepted connection (twice: counted once) frees its place.
	first.Close()
	first.Close()
	d := dial()
	select {
	case third := <-accepted:
		defer third.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a connection after one closed was not accepted")
	}
	if closedByPeer(t, d, 300*time.Millisecond) {
		t.Fatal("the connection that took the freed place was closed")
	}
	e := dial()
	if !closedByPeer(t, e, 5*time.Second) {
		t.Fatal("a connection over the cap again was kept")
	}
	second.Close()
}

func TestListenerWithoutCapIsTheListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := connlimit.Listener(ln, 0, nil); got != ln {
		t.Fatalf("Listener(ln, 0) = %T, want ln itself", got)
	}
}
