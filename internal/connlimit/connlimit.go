// Package connlimit bounds what clients may hold of a node: how many connections one client address
// and all clients have open at once on a listener (Listener), and how much of a budget such as the memory
// of request bodies (Budget). The HTTP API and the MQTT broker share it, so that a public node's two doors
// keep the same rules (docs/api.md, "Limits of a public node").
//
// It imports nothing of the project: the HTTP API and the MQTT broker sit above it.
package connlimit

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
)

// Address returns the key a client is counted by: its IPv4 address, or the /64 of its IPv6 address (one
// host usually holds a whole /64). An IPv4-mapped IPv6 address counts as the IPv4 address; a remote
// address that is not an IP is its own key.
func Address(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Caps bound the connections a Listener holds open at once. A cap ≤ 0 is no cap.
type Caps struct {
	// PerAddress bounds the connections of one client Address.
	PerAddress int
	// Total bounds the connections of all clients: what keeps a client holding many addresses (a host
	// with a whole IPv6 /48, or a loopback's 127/8) from exhausting the node's memory and file descriptors.
	Total int
}

// Refusal is the cap a refused connection is over.
type Refusal int

const (
	// OverAddress: its client address holds Caps.PerAddress connections already.
	OverAddress Refusal = iota + 1
	// OverTotal: the listener holds Caps.Total connections already, none of them idle.
	OverTotal
)

// Listener returns ln holding at most caps of connections at once. At the total cap, a new connection
// takes the place of the connection idle longest, if one is (see Idle), which is closed; else it is
// refused. A refused connection is handed to refuse with the cap it is over (refuse may write a last
// answer; nil writes nothing) and closed; Accept goes on to the next one. Without caps Listener returns
// ln unchanged.
func Listener(ln net.Listener, caps Caps, refuse func(net.Conn, Refusal)) net.Listener {
	if caps.PerAddress <= 0 && caps.Total <= 0 {
		return ln
	}
	return &listener{Listener: ln, caps: caps, refuse: refuse, open: map[string]int{}}
}

type listener struct {
	net.Listener
	caps   Caps
	refuse func(net.Conn, Refusal)

	mu    sync.Mutex
	open  map[string]int // connections open per client address; an address with none has no entry
	total int            // connections open
	idle  list.List      // the idle connections (*conn), the longest idle first
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := Address(c.RemoteAddr().String())
		var why Refusal
		var evicted *conn
		l.mu.Lock()
		switch {
		case l.caps.PerAddress > 0 && l.open[key] >= l.caps.PerAddress:
			why = OverAddress
		case l.caps.Total > 0 && l.total >= l.caps.Total:
			if front := l.idle.Front(); front != nil {
				evicted = front.Value.(*conn)
				l.release(evicted)
			} else {
				why = OverTotal
			}
		}
		if why == 0 {
			l.open[key]++
			l.total++
		}
		l.mu.Unlock()
		if evicted != nil {
			evicted.Conn.Close()
		}
		if why == 0 {
			return &conn{Conn: c, l: l, key: key}, nil
		}
		if l.refuse != nil {
			l.refuse(c, why)
		}
		c.Close()
	}
}

// release stops counting c (once); l.mu is held.
func (l *listener) release(c *conn) {
	if c.released {
		return
	}
	c.released = true
	if l.open[c.key]--; l.open[c.key] <= 0 {
		delete(l.open, c.key)
	}
	l.total--
	if c.idle != nil {
		l.idle.Remove(c.idle)
		c.idle = nil
	}
}

// Idle tells the Listener that accepted c whether c is idle: a connection that waits for its client's
// next request, or its first, and may be closed without losing one being handled (HTTP: a connection
// that has not sent a whole request's headers yet, or a keep-alive connection between requests;
// net/http's ConnState says when). A connection is not idle until said to be. A c that no Listener with
// caps accepted is ignored.
func Idle(c net.Conn, idle bool) {
	lc, ok := c.(*conn)
	if !ok {
		return
	}
	l := lc.l
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case lc.released:
	case idle && lc.idle == nil:
		lc.idle = l.idle.PushBack(lc)
	case !idle && lc.idle != nil:
		l.idle.Remove(lc.idle)
		lc.idle = nil
	}
}

type conn struct {
	net.Conn
	l   *listener
	key string

	// Guarded by l.mu:
	released bool          // no longer counted: closed, or chosen to make room
	idle     *list.Element // its place among the idle connections; nil when not idle
}

func (c *conn) Close() error {
	c.l.mu.Lock()
	c.l.release(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
