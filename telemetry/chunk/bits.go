package chunk

import (
	"encoding/binary"
	"io"
)

// bitWriter appends bits, most significant first, to a byte slice.
type bitWriter struct {
	b    []byte
	free uint // unused low bits of the last byte
}

// writeBits writes the low n (≤ 64) bits of u.
func (w *bitWriter) writeBits(u uint64, n uint) {
	for n > 0 {
		if w.free == 0 {
			w.b = append(w.b, 0)
			w.free = 8
		}
		k := min(n, w.free)
		part := byte(u>>(n-k)) & byte(1<<k-1)
		w.b[len(w.b)-1] |= part << (w.free - k)
		w.free -= k
		n -= k
	}
}

// writeBit writes one bit.
func (w *bitWriter) writeBit(one bool) {
	if one {
		w.writeBits(1, 1)
	} else {
		w.writeBits(0, 1)
	}
}

// bitReader reads bits, most significant first, from a byte slice.
type bitReader struct {
	b   []byte
	pos uint // bits read
}

// readBits reads n (≤ 64) bits; io.ErrUnexpectedEOF if fewer are left.
func (r *bitReader) readBits(n uint) (uint64, error) {
	if uint(len(r.b))*8-r.pos < n {
		return 0, io.ErrUnexpectedEOF
	}
	// Fast path: the bits lie in the 8 bytes from the current one.
	if i, off := r.pos/8, r.pos%8; n > 0 && off+n <= 64 && i+8 <= uint(len(r.b)) {
		r.pos += n
		return binary.BigEndian.Uint64(r.b[i:]) << off >> (64 - n), nil
	}
	var u uint64
	for n > 0 {
		off := r.pos % 8
		k := min(n, 8-off)
		part := r.b[r.pos/8] >> (8 - off - k) & byte(1<<k-1)
		u = u<<k | uint64(part)
		r.pos += k
		n -= k
	}
	return u, nil
}

// readBit reads one bit.
func (r *bitReader) readBit() (bool, error) {
	i := r.pos / 8
	if i >= uint(len(r.b)) {
		return false, io.ErrUnexpectedEOF
	}
	one := r.b[i]>>(7-r.pos%8)&1 == 1
	r.pos++
	return one, nil
}

// ReadByte reads 8 bits, for encoding/binary's varint readers.
func (r *bitReader) ReadByte() (byte, error) {
	u, err := r.readBits(8)
	return byte(u), err
}

// end reports whether everything was read: no byte left and only zero bits in the last one.
func (r *bitReader) end() bool {
	if uint(len(r.b)) != (r.pos+7)/8 {
		return false
	}
	rest := (8 - r.pos%8) % 8
	return rest == 0 || r.b[len(r.b)-1]&byte(1<<rest-1) == 0
}
