package mqtt

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// guardVerdict feeds b to a fresh guard in two reads, split at cut, and returns what it decided.
func guardVerdict(b []byte, cut int) (done, ok bool) {
	var c guardedConn
	for _, part := range [][]byte{b[:cut], b[cut:]} {
		if len(part) == 0 {
			continue
		}
		d, k := c.check(part)
		if !k {
			return false, false
		}
		if d {
			return true, true
		}
	}
	return false, true
}

// FuzzFirstPacketGuard holds the guard to the broker's own decoding of a fixed header's remaining
// length (packets.DecodeLength): a header the broker reads whole is let through exactly when its length
// is at most MaxConnectPacket in at most four bytes, however the bytes arrive.
func FuzzFirstPacketGuard(f *testing.F) {
	for _, s := range [][]byte{{0x10, 0x00}, {0x10, 0x7f}, {0x10, 0x80, 0x40}, {0x10, 0x81, 0x40}, {0x10, 0xff, 0xff, 0xff, 0x7f},
		{0x10, 0x80, 0x80, 0x80, 0x80, 0x00}, {0x10, 0x85}, {0x10}, {0x30, 0x05, 1, 2, 3}} {
		f.Add(s, 1)
	}
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		if len(b) == 0 {
			return
		}
		cut = min(max(cut, 0), len(b))
		done, ok := guardVerdict(b, cut)
		if d, k := guardVerdict(b, len(b)); d != done || k != ok {
			t.Fatalf("% x: split at %d gives done=%v ok=%v, whole gives done=%v ok=%v", b, cut, done, ok, d, k)
		}
		n, bu, err := packets.DecodeLength(bytes.NewReader(b[1:]))
		switch {
		case errors.Is(err, io.EOF):
			// Cut short: the guard waits for more unless what it saw already says too large or too long.
			if done {
				t.Fatalf("% x: an incomplete length was taken as complete", b)
			}
		case err != nil || bu > 4 || n > MaxConnectPacket:
			if ok && done {
				t.Fatalf("% x: a length the broker reads as %d in %d bytes (%v) was let through", b, n, bu, err)
			}
			if ok && bu <= 4 {
				t.Fatalf("% x: the guard still waits on a complete header", b)
			}
		default:
			if !done || !ok {
				t.Fatalf("% x: a length of %d in %d bytes was refused (done=%v ok=%v)", b, n, bu, done, ok)
			}
		}
	})
}
