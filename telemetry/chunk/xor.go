package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Errors callers branch on.
var (
	// ErrCorrupt is wrapped by every decoding error: the bytes are not a chunk this package writes.
	ErrCorrupt = errors.New("a corrupt chunk")
	// ErrFull is returned by Append when a chunk holds as many values as it may.
	ErrFull = errors.New("the chunk is full")
	// ErrOutOfOrder is returned by Append for a time not after the chunk's last one.
	ErrOutOfOrder = errors.New("a time not after the chunk's last one")
)

// MaxXORSamples is the most samples an XOR stream's 2-byte count can hold.
const MaxXORSamples = math.MaxUint16

const headerSize = 2

// XOR encodes (time, float64) samples in the XOR format (package doc), byte for byte as Prometheus's
// chunkenc.XORChunk does, for any times in any order. Its zero value is an empty stream. It is not safe
// for concurrent use.
type XOR struct {
	w        bitWriter
	n        int
	t        int64
	delta    int64
	v        uint64 // the last value's bits
	leading  uint8  // of the last XOR written in full; 0xff before the first
	trailing uint8
}

// Len is the number of samples appended.
func (x *XOR) Len() int { return x.n }

// Append adds a sample; ErrFull after MaxXORSamples.
func (x *XOR) Append(t int64, v float64) error {
	if x.n >= MaxXORSamples {
		return fmt.Errorf("appending to an XOR stream of %d samples: %w", x.n, ErrFull)
	}
	if x.w.b == nil {
		x.w.b = make([]byte, headerSize, 128)
	}
	vb := math.Float64bits(v)
	switch x.n {
	case 0:
		var buf [binary.MaxVarintLen64]byte
		for _, c := range buf[:binary.PutVarint(buf[:], t)] {
			x.w.writeBits(uint64(c), 8)
		}
		x.w.writeBits(vb, 64)
		x.leading = 0xff
	case 1:
		x.delta = t - x.t
		var buf [binary.MaxVarintLen64]byte
		for _, c := range buf[:binary.PutUvarint(buf[:], uint64(x.delta))] {
			x.w.writeBits(uint64(c), 8)
		}
		x.writeValue(vb)
	default:
		delta := t - x.t
		dod := delta - x.delta
		switch {
		case dod == 0:
			x.w.writeBit(false)
		case fits(dod, 14):
			x.w.writeBits(0b10, 2)
			x.w.writeBits(uint64(dod), 14)
		case fits(dod, 17):
			x.w.writeBits(0b110, 3)
			x.w.writeBits(uint64(dod), 17)
		case fits(dod, 20):
			x.w.writeBits(0b1110, 4)
			x.w.writeBits(uint64(dod), 20)
		default:
			x.w.writeBits(0b1111, 4)
			x.w.writeBits(uint64(dod), 64)
		}
		x.delta = delta
		x.writeValue(vb)
	}
	x.t, x.v = t, vb
	x.n++
	binary.BigEndian.PutUint16(x.w.b, uint16(x.n))
	return nil
}

// fits reports whether d is one of the n-bit deltas of deltas: from -(2ⁿ⁻¹-1) to 2ⁿ⁻¹, the range the
// format gives each width (its decoder reads the top value as positive).
func fits(d int64, n uint) bool {
	return -(int64(1)<<(n-1)-1) <= d && d <= int64(1)<<(n-1)
}

func (x *XOR) writeValue(vb uint64) {
	d := vb ^ x.v
	if d == 0 {
		x.w.writeBit(false)
		return
	}
	x.w.writeBit(true)
	leading := uint8(min(bits.LeadingZeros64(d), 31))
	trailing := uint8(bits.TrailingZeros64(d))
	if x.leading != 0xff && leading >= x.leading && trailing >= x.trailing {
		x.w.writeBit(false)
		x.w.writeBits(d>>x.trailing, uint(64-x.leading-x.trailing))
		return
	}
	x.leading, x.trailing = leading, trailing
	x.w.writeBit(true)
	x.w.writeBits(uint64(leading), 5)
	meaningful := 64 - leading - trailing
	x.w.writeBits(uint64(meaningful), 6) // 64 becomes 0
	x.w.writeBits(d>>trailing, uint(meaningful))
}

// Bytes returns the encoded stream (an empty stream is its 2-byte count). It stays valid until the next
// Append; copy it to keep it.
func (x *XOR) Bytes() []byte {
	if x.w.b == nil {
		return []byte{0, 0}
	}
	return x.w.b
}

// XORIterator decodes an XOR stream sample by sample. Decoding errors (which wrap ErrCorrupt) end the
// iteration and are reported by Err.
type XORIterator struct {
	r        bitReader
	total    int
	read     int
	t        int64
	delta    int64
	v        uint64
	leading  uint8
	trailing uint8
	err      error
}

// NewXORIterator returns an iterator over the samples of b.
func NewXORIterator(b []byte) *XORIterator {
	it := &XORIterator{}
	if len(b) < headerSize {
		it.err = fmt.Errorf("%w: an XOR stream of %d bytes has no 2-byte count", ErrCorrupt, len(b))
		return it
	}
	it.total = int(binary.BigEndian.Uint16(b))
	it.r = bitReader{b: b[headerSize:]}
	return it
}

// Len is the number of samples the stream says it holds.
func (it *XORIterator) Len() int { return it.total }

// Next decodes the next sample, false at the end or on an error.
func (it *XORIterator) Next() bool {
	if it.err != nil {
		return false
	}
	if it.read == it.total {
		if !it.r.end() {
			it.err = fmt.Errorf("%w: bytes or bits after the last of %d samples", ErrCorrupt, it.total)
		}
		return false
	}
	if err := it.next(); err != nil {
		it.err = fmt.Errorf("%w: sample %d of %d: %w", ErrCorrupt, it.read+1, it.total, err)
		return false
	}
	it.read++
	return true
}

func (it *XORIterator) next() error {
	switch it.read {
	case 0:
		start := it.r.pos
		t, err := binary.ReadVarint(&it.r)
		if err != nil {
			return fmt.Errorf("its time: %w", err)
		}
		if it.r.pos-start != 8*uint(varintLen(t)) {
			return errors.New("its time is not a minimal varint")
		}
		v, err := it.r.readBits(64)
		if err != nil {
			return fmt.Errorf("its value: %w", err)
		}
		it.t, it.v, it.leading = t, v, 0xff
		return nil
	case 1:
		start := it.r.pos
		d, err := binary.ReadUvarint(&it.r)
		if err != nil {
			return fmt.Errorf("its time: %w", err)
		}
		if it.r.pos-start != 8*uint(uvarintLen(d)) {
			return errors.New("its time is not a minimal varint")
		}
		it.delta = int64(d)
	default:
		dod, err := it.readDod()
		if err != nil {
			return fmt.Errorf("its time: %w", err)
		}
		it.delta += dod
	}
	it.t += it.delta
	if err := it.readValue(); err != nil {
		return fmt.Errorf("its value: %w", err)
	}
	return nil
}

func (it *XORIterator) readDod() (int64, error) {
	var n uint
	for _, width := range [...]uint{14, 17, 20, 64} {
		one, err := it.r.readBit()
		if err != nil {
			return 0, err
		}
		if !one {
			break
		}
		n = width
	}
	if n == 0 {
		return 0, nil
	}
	u, err := it.r.readBits(n)
	if err != nil {
		return 0, err
	}
	d := int64(u)
	if n < 64 && d > int64(1)<<(n-1) {
		d -= int64(1) << n
	}
	// The encoder takes the narrowest width that holds d.
	switch {
	case d == 0 && n > 0, n > 14 && fits(d, 14), n > 17 && fits(d, 17), n > 20 && fits(d, 20):
		return 0, fmt.Errorf("a delta of deltas of %d in %d bits, not the fewest", d, n)
	}
	return d, nil
}

func varintLen(t int64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutVarint(buf[:], t)
}

func uvarintLen(u uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], u)
}

var errNoWindow = errors.New("a value reuses the leading and trailing zeros before any were written")

func (it *XORIterator) readValue() error {
	changed, err := it.r.readBit()
	if err != nil || !changed {
		return err
	}
	fresh, err := it.r.readBit()
	if err != nil {
		return err
	}
	if !fresh && it.leading == 0xff {
		return errNoWindow
	}
	prevLeading, prevTrailing := it.leading, it.trailing
	if fresh {
		leading, err := it.r.readBits(5)
		if err != nil {
			return err
		}
		meaningful, err := it.r.readBits(6)
		if err != nil {
			return err
		}
		if meaningful == 0 {
			meaningful = 64
		}
		if leading+meaningful > 64 {
			return fmt.Errorf("%d leading zeros and %d meaningful bits", leading, meaningful)
		}
		it.leading, it.trailing = uint8(leading), uint8(64-leading-meaningful)
	}
	d, err := it.r.readBits(uint(64 - it.leading - it.trailing))
	if err != nil {
		return err
	}
	d <<= it.trailing
	// The encoder writes a changed value only, in the previous window whenever it fits, and otherwise in
	// the window of its own leading (at most 31) and trailing zeros.
	leading, trailing := uint8(min(bits.LeadingZeros64(d), 31)), uint8(bits.TrailingZeros64(d))
	switch {
	case d == 0:
		return errors.New("a change of no bits")
	case fresh && prevLeading != 0xff && leading >= prevLeading && trailing >= prevTrailing:
		return errors.New("a new window where the previous one fits")
	case fresh && (leading != it.leading || trailing != it.trailing):
		return fmt.Errorf("a window of %d leading and %d trailing zeros around bits with %d and %d", it.leading, it.trailing, leading, trailing)
	}
	it.v ^= d
	return nil
}

// At returns the sample Next decoded.
func (it *XORIterator) At() (int64, float64) { return it.t, math.Float64frombits(it.v) }

// Err returns the error that ended the iteration, nil if it ended with the last sample.
func (it *XORIterator) Err() error { return it.err }
