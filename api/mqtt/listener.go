package mqtt

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/glovebox/glovebox/internal/connlimit"
)

// DefaultConnectTimeout is how long a new connection may take to send its CONNECT packet whole, unless
// Config.ConnectTimeout says otherwise. After CONNECT the client's keep-alive rules the connection.
const DefaultConnectTimeout = 10 * time.Second

// MaxConnectPacket bounds a connection's first packet (its CONNECT), whose fixed header the broker would
// otherwise take at its word and allocate for: a CONNECT of a device is a few hundred bytes (a 42-byte
// user name, a login token, a client id), far from the 16 MiB a PUBLISH may carry.
const MaxConnectPacket = 8 << 10

// errFirstPacket fails the read of a first packet that announces more than MaxConnectPacket bytes or
// whose length is not a valid MQTT variable byte integer.
var errFirstPacket = errors.New("mqtt: the first packet is too large or malformed")

// guardedListener hands the broker connections that must send a CONNECT of at most MaxConnectPacket
// bytes within the connect timeout.
type guardedListener struct {
	net.Listener
	timeout time.Duration
}

// listen listens on addr for connections, at most perAddress at once from one client address
// (connlimit; 0: no cap; one over it is closed at once), each guarded until its CONNECT is read.
func listen(addr string, perAddress int, timeout time.Duration) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mqtt: couldn't listen on %s: %w", addr, err)
	}
	return &guardedListener{Listener: connlimit.Listener(ln, perAddress, nil), timeout: timeout}, nil
}

func (l *guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	// The broker replaces this deadline with the client's keep-alive once it has read the CONNECT.
	c.SetReadDeadline(time.Now().Add(l.timeout))
	return &guardedConn{Conn: c}, nil
}

// guardedConn checks the fixed header of the first packet as it is read: one byte of type and flags,
// then the remaining length in one to four bytes of seven bits each (MQTT 3.1.1 §2.2.3, MQTT 5 §1.5.5).
type guardedConn struct {
	net.Conn
	header int    // bytes of the first fixed header seen so far; -1 once it was checked
	length uint32 // the remaining length decoded so far
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.header >= 0 && n > 0 {
		done, ok := c.check(p[:n])
		if !ok {
			c.Conn.Close()
			return 0, errFirstPacket
		}
		if done {
			c.header = -1
		}
	}
	return n, err
}

// check reads more bytes of the first fixed header. It returns done once the remaining length is
// complete, and ok false as soon as the header announces more than MaxConnectPacket bytes or its
// length runs past four bytes.
func (c *guardedConn) check(b []byte) (done, ok bool) {
	for _, x := range b {
		c.header++
		if c.header == 1 {
			continue // the packet type and flags: the broker checks it is a CONNECT
		}
		c.length |= uint32(x&0x7f) << (7 * (c.header - 2))
		if c.length > MaxConnectPacket {
			return false, false
		}
		if x&0x80 == 0 {
			return true, true
		}
		if c.header == 5 {
			return false, false
		}
	}
	return false, true
}
