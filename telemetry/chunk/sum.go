package chunk

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// Sum is the exact sum of float64 values: Shewchuk's non-overlapping partials ("Adaptive Precision
// Floating-Point Arithmetic and Fast Robust Geometric Predicates", 1997; the method of Python's
// math.fsum), in increasing magnitude, usually one to three of them. Adding a value or merging another
// Sum loses nothing, so Float64 — the exact sum rounded once — does not depend on the order values were
// added in nor on how they were grouped into chunks and roll-ups: an average from it is the same at every
// bucket width and in every store.
//
// Non-finite values are kept apart: once one is added the sum is NaN, +Inf or -Inf as IEEE addition
// would make it (NaN if both infinities were added), whatever else is added. A sum whose partials would
// overflow float64 (beyond ±1.8e308 at some step) becomes that infinity; the catalogue's ranges keep
// every real sum far from it.
//
// The zero value is the empty sum (0). A copy of a Sum shares its partials: Clone before adding to a
// copy.
type Sum struct {
	p []float64 // finite non-overlapping partials, increasing magnitude; or one non-finite value
}

// Add adds x exactly.
func (s *Sum) Add(x float64) {
	if len(s.p) == 1 && !isFinite(s.p[0]) {
		s.p[0] += x // NaN stays NaN, Inf+(-Inf) is NaN, Inf+finite is Inf
		return
	}
	if !isFinite(x) {
		s.p = append(s.p[:0], x)
		return
	}
	ps := s.p
	i := 0
	for _, y := range ps {
		if math.Abs(x) < math.Abs(y) {
			x, y = y, x
		}
		hi := x + y
		if !isFinite(hi) {
			s.p = append(s.p[:0], hi)
			return
		}
		lo := y - (hi - x)
		if lo != 0 {
			ps[i] = lo
			i++
		}
		x = hi
	}
	s.p = append(ps[:i], x)
}

// Merge adds every value o holds.
func (s *Sum) Merge(o Sum) {
	for _, x := range o.p {
		s.Add(x)
	}
}

// Clone returns a Sum that shares nothing with s.
func (s Sum) Clone() Sum {
	if s.p == nil {
		return Sum{}
	}
	return Sum{p: append([]float64(nil), s.p...)}
}

// Float64 returns the sum correctly rounded to a float64 (ties to even). A zero sum is +0, as adding
// values one by one to 0.0 gives even for -0 values.
func (s Sum) Float64() float64 {
	p := s.p
	n := len(p)
	if n == 0 {
		return 0
	}
	n--
	hi, lo := p[n], 0.0
	for n > 0 {
		x := hi
		n--
		y := p[n]
		hi = x + y
		lo = y - (hi - x)
		if lo != 0 {
			break
		}
	}
	// hi+lo is exact; if the partials below lo push the same way as lo and lo is half an ulp of hi,
	// the sum is past the halfway point and rounds away from hi.
	if n > 0 && (lo < 0 && p[n-1] < 0 || lo > 0 && p[n-1] > 0) {
		y := lo * 2
		x := hi + y
		if y == x-hi {
			hi = x
		}
	}
	return hi + 0 // -0 becomes +0
}

// AppendBinary appends the partials as big-endian float64s (8 bytes each; none for an empty sum).
func (s Sum) AppendBinary(b []byte) ([]byte, error) {
	for _, x := range s.p {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b, nil
}

// ParseSum decodes AppendBinary's bytes, accepting only partials a Sum can hold: finite, nonzero but
// for the last one (Add leaves a zero on top when the larger values cancel), each one's bits below the
// next one's, or a single non-finite value.
func ParseSum(b []byte) (Sum, error) {
	if len(b)%8 != 0 {
		return Sum{}, fmt.Errorf("%w: an exact sum of %d bytes, not a multiple of 8", ErrCorrupt, len(b))
	}
	p := make([]float64, len(b)/8)
	for i := range p {
		p[i] = math.Float64frombits(binary.BigEndian.Uint64(b[8*i:]))
	}
	for i, x := range p {
		switch {
		case !isFinite(x) && len(p) > 1:
			return Sum{}, fmt.Errorf("%w: an exact sum with %v among %d partials", ErrCorrupt, x, len(p))
		case x == 0 && i < len(p)-1:
			return Sum{}, fmt.Errorf("%w: an exact sum with a zero partial %d of %d", ErrCorrupt, i+1, len(p))
		case i > 0 && x != 0 && !nonOverlapping(p[i-1], x):
			return Sum{}, fmt.Errorf("%w: exact sum partials %d and %d overlap", ErrCorrupt, i, i+1)
		}
	}
	if len(p) == 0 {
		return Sum{}, nil
	}
	return Sum{p: p}, nil
}

// nonOverlapping reports whether every set bit of lo lies below every set bit of hi (both finite and
// nonzero), as Add leaves neighbouring partials.
func nonOverlapping(lo, hi float64) bool {
	return lo != 0 && hi != 0 && highBit(lo) < lowBit(hi)
}

// significand returns x as m·2ᵉ with an integer m (x finite).
func significand(x float64) (m uint64, e int) {
	b := math.Float64bits(x)
	exp := int(b >> 52 & 0x7ff)
	m = b & (1<<52 - 1)
	if exp == 0 {
		return m, -1074
	}
	return m | 1<<52, exp - 1075
}

// highBit is the power of two of x's highest set bit, lowBit of its lowest.
func highBit(x float64) int {
	m, e := significand(x)
	return e + 63 - bits.LeadingZeros64(m)
}

func lowBit(x float64) int {
	m, e := significand(x)
	return e + bits.TrailingZeros64(m)
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
