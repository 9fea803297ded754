package mqtt

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/glovebox/glovebox/internal/connlimit"
)

// chunkConn is a connection whose reads return its chunks one at a time (at most what the caller's
// buffer holds), then io.EOF.
type chunkConn struct {
	net.Conn
	chunks [][]byte
	closed bool
}

func (c *chunkConn) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

func (c *chunkConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1883}
}
func (c *chunkConn) Close() error { c.closed = true; return nil }

// referenceFrames splits b into packets as the broker reads them (a type byte, packets.DecodeLength,
// that many bytes) and returns where each complete packet ends, and whether the guard must refuse the
// stream: a first packet announcing more than MaxConnectPacket, or a length of more than four bytes.
func referenceFrames(b []byte) (ends []int, refuse bool) {
	off := 0
	for off < len(b) {
		r := bytes.NewReader(b[off+1:])
		n, bu, err := packets.DecodeLength(r)
		if len(ends) == 0 && off == 0 {
			// The guard refuses as soon as the bytes seen say too large, complete or not.
			var v uint32
			for i, x := range b[1:min(len(b), 5)] {
				v |= uint32(x&0x7f) << (7 * i)
				if v > MaxConnectPacket {
					return ends, true
				}
				if x&0x80 == 0 {
					break
				}
			}
		}
		if bu > 4 || (errors.Is(err, io.EOF) && len(b)-off-1 >= 4 && b[off+4]&0x80 != 0) {
			return ends, true
		}
		if err != nil {
			return ends, errors.Is(err, packets.ErrMalformedVariableByteInteger)
		}
		end := off + 1 + bu + n
		if end > len(b) {
			return ends, false
		}
		ends = append(ends, end)
		off = end
	}
	return ends, false
}

// FuzzPacketFraming holds the guard to the broker's framing: for any bytes, arriving in any pieces and
// read with any buffer sizes, the reads hand over the same bytes in order, no read crosses the end of a
// packet, and the guard refuses exactly the streams it must (referenceFrames).
func FuzzPacketFraming(f *testing.F) {
	f.Add([]byte{0x10, 0x02, 0, 0, 0x30, 0x03, 1, 2, 3, 0xc0, 0x00}, []byte{3, 2, 5}, []byte{4, 1})
	f.Add([]byte{0x10, 0x80, 0x40}, []byte{1}, []byte{2})
	f.Add([]byte{0x10, 0x81, 0x40}, []byte{2}, []byte{1})
	f.Add([]byte{0x10, 0x00, 0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, []byte{9}, []byte{9})
	f.Add([]byte{0x10, 0x00, 0x30, 0xff, 0xff, 0xff, 0x7f}, []byte{1, 1, 1}, []byte{7})
	f.Fuzz(func(t *testing.T, b, pieces, reads []byte) {
		var chunks [][]byte
		rest := b
		for i := 0; len(rest) > 0; i++ {
			k := len(rest)
			if len(pieces) > 0 {
				k = min(len(rest), int(pieces[i%len(pieces)])%17+1)
			}
			chunks = append(chunks, append([]byte(nil), rest[:k]...))
			rest = rest[k:]
		}
		c := newGuardedConn(&chunkConn{chunks: chunks}, nil, 0)
		ends, refuse := referenceFrames(b)
		var got []byte
		var err error
		for i := 0; ; i++ {
			size := 64
			if len(reads) > 0 {
				size = int(reads[i%len(reads)])%19 + 1
			}
			p := make([]byte, size)
			var n int
			n, err = c.Read(p)
			start := len(got)
			got = append(got, p[:n]...)
			for _, e := range ends {
				if start < e && e < len(got) {
					t.Fatalf("% x: a read handed over bytes %d to %d, across the end of a packet at %d", b, start, len(got), e)
				}
			}
			if err != nil {
				break
			}
			if i > 10*len(b)+10 {
				t.Fatalf("% x: reads go on without end", b)
			}
		}
		if !bytes.Equal(got, b[:len(got)]) {
			t.Fatalf("% x: the reads handed over % x", b, got)
		}
		switch {
		case refuse && err == io.EOF:
			t.Fatalf("% x: the guard let a stream through that it must refuse", b)
		case !refuse && err != io.EOF:
			t.Fatalf("% x: refused (%v) after % x", b, err, got)
		case !refuse && len(got) != len(b):
			t.Fatalf("% x: only % x handed over", b, got)
		}
	})
}

// publishPacket returns a PUBLISH packet whose remaining length is n (≥ 4).
func publishPacket(n int) []byte {
	b := []byte{0x30}
	for m := n; ; {
		x := byte(m & 0x7f)
		if m >>= 7; m > 0 {
			b = append(b, x|0x80)
			continue
		}
		b = append(b, x)
		break
	}
	b = append(b, 0x00, 0x01, 't', 0x00)
	return append(b, make([]byte, n-4)...)
}

// TestPacketMemoryWaitsForTheHandledPacket: a packet whose memory does not fit waits, its bytes unread,
// until a connection of the address asks for its next packet (it has handled the one before) or closes;
// a packet of at most SmallPacket never waits.
func TestPacketMemoryWaitsForTheHandledPacket(t *testing.T) {
	const k = 1 << 10
	budget := connlimit.NewBudget(1000*k, 1000*k)
	a := newGuardedConn(&chunkConn{chunks: [][]byte{publishPacket(100 * k), publishPacket(100 * k)}}, budget, 0)
	b := newGuardedConn(&chunkConn{chunks: [][]byte{publishPacket(100 * k)}}, budget, 0)
	small := newGuardedConn(&chunkConn{chunks: [][]byte{{0x10, 0x00}, publishPacket(SmallPacket)}}, budget, 0)
	a.first, b.first = false, false // past their CONNECT
	read := func(c *guardedConn) <-chan int {
		done := make(chan int, 1)
		go func() {
			p := make([]byte, 1<<20)
			n, _ := c.Read(p)
			done <- n
		}()
		return done
	}
	whole := len(publishPacket(100 * k))
	if n := <-read(a); n != whole {
		t.Fatalf("a's first read: %d bytes, want its first packet, %d", n, whole)
	}
	// a holds 200 KiB of 1000; a packet of 388 KiB (776) fits beside it, b's 100 (200) then does not.
	big := newGuardedConn(&chunkConn{chunks: [][]byte{publishPacket(388 * k)}}, budget, 0)
	big.first = false
	if n := <-read(big); n != len(publishPacket(388*k)) {
		t.Fatalf("a packet that fits: %d bytes read", n)
	}
	waiting := read(b)
	select {
	case n := <-waiting:
		t.Fatalf("a packet over the budget was read (%d bytes)", n)
	case <-time.After(50 * time.Millisecond):
	}
	for _, want := range []int{2, len(publishPacket(SmallPacket))} {
		if n := <-read(small); n != want {
			t.Fatalf("a small packet waited or was cut: %d bytes read, want %d", n, want)
		}
	}
	// a asks for its next packet: it has handled the first, whose 200 KiB go back and to b, which waited
	// first; a's second packet now waits in turn.
	next := read(a)
	if n := <-waiting; n != whole {
		t.Fatalf("the waiting packet: %d bytes read once memory was free", n)
	}
	select {
	case n := <-next:
		t.Fatalf("a packet over the budget was read (%d bytes)", n)
	case <-time.After(50 * time.Millisecond):
	}
	big.Close() // closing gives its packet's memory back
	if n := <-next; n != whole {
		t.Fatalf("a's second packet: %d bytes read once memory was free", n)
	}
	for _, c := range []*guardedConn{a, b, small} {
		c.Close()
	}
	if release, ok := budget.Take(t.Context(), "x", 1000*k); !ok {
		t.Fatal("memory was not all given back")
	} else {
		release()
	}
}
