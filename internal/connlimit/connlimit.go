// Package connlimit bounds what one client address may hold of a node: how many connections it has
// open at once on a listener (Listener), and how much of a budget such as the memory of request bodies
// (Budget). The HTTP API and the MQTT broker share it, so that a public node's two doors keep the same
// rules (docs/api.md, "Limits of a public node").
//
// It imports nothing of the project: the HTTP API and the MQTT broker sit above it.
package connlimit

import (
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

// Listener returns ln with at most perAddress connections open at once from each client Address. A
// connection over the cap is handed to refuse (which may write a last answer; nil writes nothing) and
// closed; Accept goes on to the next one. perAddress ≤ 0 returns ln unchanged.
func Listener(ln net.Listener, perAddress int, refuse func(net.Conn)) net.Listener {
	if perAddress <= 0 {
		return ln
	}
	return &listener{Listener: ln, max: perAddress, refuse: refuse, open: map[string]int{}}
}

type listener struct {
	net.Listener
	max    int
	refuse func(net.Conn)

	mu   sync.Mutex
	open map[string]int // connections open per client address; an address with none has no entry
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := Address(c.RemoteAddr().String())
		l.mu.Lock()
		ok := l.open[key] < l.max
		if ok {
			l.open[key]++
		}
		l.mu.Unlock()
		if ok {
			return &conn{Conn: c, l: l, key: key}, nil
		}
		if l.refuse != nil {
			l.refuse(c)
		}
		c.Close()
	}
}

type conn struct {
	net.Conn
	l    *listener
	key  string
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.open[c.key]--; c.l.open[c.key] <= 0 {
			delete(c.l.open, c.key)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
