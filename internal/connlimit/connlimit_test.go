package connlimit_test

import (
	"errors"
	"io"
	"net"
	"slices"
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
	l := connlimit.Listener(ln, connlimit.Caps{PerAddress: 2}, func(c net.Conn, why connlimit.Refusal) {
		if why != connlimit.OverAddress {
			t.Errorf("refused for %d, want OverAddress", why)
		}
		refused.Add(1)
		io.WriteString(c, "busy")
	})
	defer l.Close()
	accepted := acceptAll(l)
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
	if got := connlimit.Listener(ln, connlimit.Caps{}, nil); got != ln {
		t.Fatalf("Listener(ln, Caps{}) = %T, want ln itself", got)
	}
}

// acceptAll accepts l's connections into the channel it returns, closed when Accept fails.
func acceptAll(l net.Listener) <-chan net.Conn {
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
	return accepted
}

// dialFrom dials addr from the loopback address 127.0.0.n: each a client address of its own.
func dialFrom(t *testing.T, addr string, n byte) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, n)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestListenerCapsConnectionsInAll: clients of as many addresses as they like hold at most Total
// connections at once. Over it a new connection takes the place of the one idle longest, else is refused
// as OverTotal; a connection active again, closed or already made room for is no longer idle.
func TestListenerCapsConnectionsInAll(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refusals []connlimit.Refusal
	refused := make(chan struct{}, 8)
	l := connlimit.Listener(ln, connlimit.Caps{PerAddress: 2, Total: 3}, func(c net.Conn, why connlimit.Refusal) {
		refusals = append(refusals, why)
		refused <- struct{}{}
	})
	defer l.Close()
	accepted := acceptAll(l)
	accept := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			t.Cleanup(func() { c.Close() })
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("a connection was not accepted")
			return nil
		}
	}
	refusal := func() {
		t.Helper()
		select {
		case <-refused:
		case <-time.After(5 * time.Second):
			t.Fatal("a connection was neither accepted nor refused")
		}
	}
	addr := ln.Addr().String()
	// Three addresses fill the cap; none is over its own.
	a, b := dialFrom(t, addr, 11), dialFrom(t, addr, 12)
	dialFrom(t, addr, 13)
	sa, sb, sc := accept(), accept(), accept()
	// None idle: a fourth address is refused as over the total.
	d := dialFrom(t, addr, 14)
	refusal()
	if !closedByPeer(t, d, 5*time.Second) {
		t.Fatal("a connection over the total was kept")
	}
	// b, then a, go idle: the next connection takes b's place (idle longest), the one after a's.
	connlimit.Idle(sb, true)
	connlimit.Idle(sa, true)
	e := dialFrom(t, addr, 15)
	accept()
	if !closedByPeer(t, b, 5*time.Second) {
		t.Fatal("the connection idle longest was not closed to make room")
	}
	if closedByPeer(t, a, 300*time.Millisecond) {
		t.Fatal("a connection idle for less time was closed")
	}
	// a is active again: no connection is idle, the next one is refused.
	connlimit.Idle(sa, false)
	dialFrom(t, addr, 16)
	refusal()
	// Marking what was closed to make room idle again changes nothing; a closed connection frees its
	// place and, marked idle after, is not counted twice.
	connlimit.Idle(sb, true)
	sc.Close()
	connlimit.Idle(sc, true)
	f := dialFrom(t, addr, 17)
	accept()
	dialFrom(t, addr, 18)
	refusal()
	for _, cn := range []net.Conn{a, e, f} {
		if closedByPeer(t, cn, 100*time.Millisecond) {
			t.Fatal("a connection under the cap was closed")
		}
	}
	if want := []connlimit.Refusal{connlimit.OverTotal, connlimit.OverTotal, connlimit.OverTotal}; !slices.Equal(refusals, want) {
		t.Fatalf("refusals %v, want %v", refusals, want)
	}
}

// TestListenerCountsAnAddressOverItsOwnCapFirst: a connection over both caps is refused as over its
// address's, and does not take an idle connection's place.
func TestListenerCountsAnAddressOverItsOwnCapFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	why := make(chan connlimit.Refusal, 1)
	l := connlimit.Listener(ln, connlimit.Caps{PerAddress: 1, Total: 1}, func(c net.Conn, r connlimit.Refusal) { why <- r })
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			connlimit.Idle(c, true)
		}
	}()
	a := dialFrom(t, ln.Addr().String(), 21)
	dialFrom(t, ln.Addr().String(), 21)
	select {
	case r := <-why:
		if r != connlimit.OverAddress {
			t.Fatalf("refused as %d, want OverAddress", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second connection of an address at its cap was not refused")
	}
	if closedByPeer(t, a, 300*time.Millisecond) {
		t.Fatal("the idle connection was closed for one its own address may not have")
	}
}
