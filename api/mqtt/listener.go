package mqtt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
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

// PacketMemory bounds the memory of the packets the broker holds at once: from the moment a packet's
// fixed header announces its length until its connection asks for the next packet (the broker reads and
// handles a connection's packets one at a time, and allocates two copies of each: a packet of n bytes
// counts 2n). A packet over it waits, its bytes unread, until earlier ones are handled.
const PacketMemory = 128 << 20

// PacketMemoryPerAddress bounds what the connections of one client address (an IPv4 address, an IPv6
// /64) hold of PacketMemory by default (Config.MemoryPerAddress, `glovebox serve --memory-per-address`,
// whose default is api.BodyMemoryPerAddress, the same): one publish of the largest payload, whose count
// (twice 16 MiB) is capped at the share — it waits for the whole share — or many smaller ones.
const PacketMemoryPerAddress = 20 << 20

// SmallPacket is the largest packet that is not counted against PacketMemory: a connection holds one
// packet at a time, so small ones are bounded by the connections, and they must never wait behind a
// large one (the budget lets waiters in in order): a keep-alive ping, a CONNECT, a publish of a few
// hundred records go straight through.
const SmallPacket = 64 << 10

// MinPacketRate is the slowest a packet larger than SmallPacket may arrive once its memory is taken: once
// the connect timeout has passed since then, what has arrived of its body must be at least this many
// bytes a second since that moment (a 16 MiB publish: 74 s at the least), or the connection is closed,
// so that a client can't hold its share by trickling: holding memory costs the bandwidth of sending it.
const MinPacketRate = 256 << 10 // bytes a second

// errFirstPacket fails the read of a first packet that announces more than MaxConnectPacket bytes;
// errLength one whose remaining length runs past four bytes; errGuardClosed a read waiting for its
// packet's memory when the connection closes.
var (
	errFirstPacket = errors.New("mqtt: the first packet announces more than MaxConnectPacket bytes")
	errLength      = errors.New("mqtt: a packet's remaining length is longer than four bytes")
	errGuardClosed = errors.New("mqtt: the connection closed while its packet waited for memory")
)

// guardedListener hands the broker connections whose packets are counted against a memory budget and
// that must send a CONNECT of at most MaxConnectPacket bytes within the connect timeout.
type guardedListener struct {
	net.Listener
	timeout time.Duration
	memory  *connlimit.Budget

	mu       sync.Mutex
	stopped  bool // stop was called: Accept hands over nothing more
	starting int  // connections handed over that the broker has not read from yet
}

// listen listens on addr for connections, at most caps of them at once (connlimit; one over a cap is
// closed at once: a broker's connections are never idle in the HTTP sense), each guarded (guardedConn),
// an address holding at most share of PacketMemory (< 0: no share per address).
func listen(addr string, caps connlimit.Caps, share int64, timeout time.Duration) (*guardedListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mqtt: couldn't listen on %s: %w", addr, err)
	}
	return &guardedListener{Listener: connlimit.Listener(ln, caps, nil), timeout: timeout,
		memory: connlimit.NewBudget(PacketMemory, share)}, nil
}

func (l *guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		c.Close()
		return nil, net.ErrClosed
	}
	l.starting++
	l.mu.Unlock()
	// The broker replaces this deadline with the client's keep-alive once it has read the CONNECT.
	c.SetReadDeadline(time.Now().Add(l.timeout))
	g := newGuardedConn(c, l.memory, l.timeout)
	g.started = sync.OnceFunc(func() {
		l.mu.Lock()
		l.starting--
		l.mu.Unlock()
	})
	return g, nil
}

// stop closes the listener and waits (at most wait) until the broker has begun to read every connection
// it was handed, or that connection was closed. The broker counts a connection as its own only once its
// goroutine runs (mochi's attachClient adds it to a WaitGroup there, before its first read), so its Close
// waiting for its connections would race with one accepted just before; after stop none is left to.
func (l *guardedListener) stop(wait time.Duration) {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.Listener.Close()
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		l.mu.Lock()
		n := l.starting
		l.mu.Unlock()
		if n == 0 {
			return
		}
	}
}

// guardedConn follows the packets in the bytes the broker reads: each is a fixed header — a byte of type
// and flags, then the remaining length in one to four bytes of seven bits each (MQTT 3.1.1 §2.2.3,
// MQTT 5 §1.5.5) — and that many bytes. Before it hands over the byte that completes the header of a
// packet larger than SmallPacket, it takes the packet's memory (2 × its length) from the budget, waiting
// if need be; a read never hands over
// bytes past the end of a packet, so the broker's next read comes once it has handled that packet, and
// gives the memory back. Such a packet must then arrive at MinPacketRate at least. The first packet may
// announce at most MaxConnectPacket bytes.
type guardedConn struct {
	net.Conn
	memory  *connlimit.Budget // nil: no budget (the framing alone, in tests)
	timeout time.Duration     // the connect timeout, the base of a large packet's read deadline (0: none)
	addr    string            // the client address, for its share
	ctx     context.Context   // done when the connection closes
	cancel  context.CancelFunc

	first   bool      // the next header is the connection's first
	header  int       // bytes of the current fixed header seen so far
	length  uint32    // its remaining length so far
	body    int64     // bytes of the current packet still to come once its header is complete
	paced   time.Time // when the memory of the large packet being read was taken; zero for none
	size    int64     // that packet's length
	pending []byte    // bytes read past a packet's end, for the next reads
	rerr    error     // the read error that came with them

	mu      sync.Mutex
	release func() // gives back the memory of the packet being read or handled

	started func() // called at the first read or the close (guardedListener.stop waits for it); nil: none
}

func newGuardedConn(c net.Conn, memory *connlimit.Budget, timeout time.Duration) *guardedConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &guardedConn{Conn: c, memory: memory, timeout: timeout, addr: connlimit.Address(c.RemoteAddr().String()),
		ctx: ctx, cancel: cancel, first: true}
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if c.started != nil {
		c.started()
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.header == 0 && c.body == 0 {
		c.giveBack() // at a packet boundary: the broker has handled the packet before
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		k, err := c.frame(p[:n])
		if err != nil {
			c.Close()
			return 0, err
		}
		c.pending = c.pending[k:]
		return k, nil
	}
	if c.rerr != nil {
		return 0, c.rerr
	}
	if c.body > 0 && !c.paced.IsZero() {
		// The next byte is due by the grace plus a second per MinPacketRate bytes arrived. The broker
		// sets its keep-alive deadline again before it reads the next packet.
		arrived := c.size - c.body
		c.Conn.SetReadDeadline(c.paced.Add(c.timeout + time.Duration(float64(arrived+1)/MinPacketRate*float64(time.Second))))
	}
	n, err := c.Conn.Read(p)
	if n == 0 {
		return 0, err
	}
	k, ferr := c.frame(p[:n])
	if ferr != nil {
		c.Close()
		return 0, ferr
	}
	if k < n {
		c.pending = append(c.pending[:0], p[k:n]...)
		c.rerr = err
		return k, nil
	}
	return n, err
}

// frame follows the packets through b, the next bytes of the stream, and returns how many of them the
// broker may have now: all of them, or those up to the end of the first packet that ends in b.
func (c *guardedConn) frame(b []byte) (int, error) {
	for i := 0; i < len(b); {
		if c.body > 0 {
			k := min(c.body, int64(len(b)-i))
			c.body -= k
			i += int(k)
			if c.body == 0 {
				c.paced = time.Time{}
				return i, nil // the packet ends here
			}
			continue
		}
		x := b[i]
		i++
		c.header++
		if c.header == 1 {
			continue // the packet type and flags: the broker checks them
		}
		c.length |= uint32(x&0x7f) << (7 * (c.header - 2))
		if c.first && c.length > MaxConnectPacket {
			return 0, errFirstPacket
		}
		if x&0x80 != 0 {
			if c.header == 5 {
				return 0, errLength
			}
			continue
		}
		if c.length > SmallPacket {
			if err := c.take(2 * int64(c.length)); err != nil {
				return 0, err
			}
			if c.timeout > 0 {
				c.paced, c.size = time.Now(), int64(c.length)
				c.Conn.SetReadDeadline(c.paced.Add(c.timeout)) // for the broker's reads of bytes already here too
			}
		}
		c.first, c.body, c.header, c.length = false, int64(c.length), 0, 0
		if c.body == 0 {
			return i, nil // a packet of its header alone ends here
		}
	}
	return len(b), nil
}

// take waits for n bytes of the budget for the packet whose header is complete.
func (c *guardedConn) take(n int64) error {
	if c.memory == nil {
		return nil
	}
	release, ok := c.memory.Take(c.ctx, c.addr, n)
	if !ok {
		return errGuardClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil { // closed meanwhile: Close gave back what it saw, and this is not seen
		release()
		return errGuardClosed
	}
	c.release = release
	return nil
}

// giveBack returns the memory of the packet handled last, if it holds any.
func (c *guardedConn) giveBack() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.release != nil {
		c.release()
		c.release = nil
	}
}

// Close closes the connection and gives its packet's memory back (a read waiting for memory ends).
func (c *guardedConn) Close() error {
	if c.started != nil {
		c.started()
	}
	c.cancel()
	c.giveBack()
	return c.Conn.Close()
}
