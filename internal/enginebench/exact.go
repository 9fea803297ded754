package enginebench

import (
	"encoding/binary"
	"math"
)

// exactSum is the exact sum of float64s, kept as non-overlapping partials in increasing magnitude
// (Shewchuk's algorithm, as in Python's math.fsum): adding a value or merging another exactSum loses
// nothing, so the rounded sum of a set of values does not depend on the order they were added in nor on
// how they were grouped into chunks and roll-ups. A mean computed from it is the same in every engine, at
// every bucket width. Values must be finite (the catalogue's ranges are).
type exactSum []float64

// add adds x exactly.
func (p *exactSum) add(x float64) {
	ps := *p
	i := 0
	for _, y := range ps {
		if math.Abs(x) < math.Abs(y) {
			x, y = y, x
		}
		hi := x + y
		lo := y - (hi - x)
		if lo != 0 {
			ps[i] = lo
			i++
		}
		x = hi
	}
	*p = append(ps[:i], x)
}

// merge adds every partial of q.
func (p *exactSum) merge(q exactSum) {
	for _, x := range q {
		p.add(x)
	}
}

// round returns the sum correctly rounded to a float64.
func (p exactSum) round() float64 {
	n := len(p)
	if n == 0 {
		return 0
	}
	n--
	hi := p[n]
	lo := 0.0
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
	// Round half to even across partials: if the rest has the sign of lo, hi may need to move by one ulp.
	if n > 0 && ((lo < 0 && p[n-1] < 0) || (lo > 0 && p[n-1] > 0)) {
		y := lo * 2
		x := hi + y
		if y == x-hi {
			hi = x
		}
	}
	return hi
}

// bytes encodes the partials as big-endian float64s.
func (p exactSum) bytes() []byte {
	b := make([]byte, 8*len(p))
	for i, x := range p {
		binary.BigEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

// exactSumOf decodes bytes.
func exactSumOf(b []byte) (exactSum, bool) {
	if len(b)%8 != 0 {
		return nil, false
	}
	p := make(exactSum, len(b)/8)
	for i := range p {
		p[i] = math.Float64frombits(binary.BigEndian.Uint64(b[8*i:]))
	}
	return p, true
}
