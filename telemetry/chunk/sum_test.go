package chunk

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func sumOf(xs ...float64) Sum {
	var s Sum
	for _, x := range xs {
		s.Add(x)
	}
	return s
}

func naive(xs ...float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum
}

func same(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
}

func TestASumIsTheExactSumRoundedOnce(t *testing.T) {
	max := math.MaxFloat64
	tests := []struct {
		name   string
		values []float64
		want   float64
	}{
		{"an empty sum is zero", nil, 0},
		{"0.1 + 0.2 + 0.3 is 0.6, which naive addition misses", []float64{0.1, 0.2, 0.3}, 0.6},
		{"ten times 0.1 is 1", []float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}, 1},
		{"a small value survives between two that cancel", []float64{1e100, 1, -1e100}, 1},
		{"two halves of an ulp add up to one", []float64{1, 1e-16, 1e-16}, 1.0000000000000002},
		{"2⁵³ plus 1 plus 1 is 2⁵³+2", []float64{9007199254740992, 1, 1}, 9007199254740994},
		{"an exact tie rounds to even", []float64{1, 0x1p-53}, 1},
		{"just past a tie rounds up", []float64{1, 0x1p-53, 0x1p-106}, 1.0000000000000002},
		{"just short of a tie rounds down", []float64{1, 0x1p-53, -0x1p-106}, 1},
		{"the odometer's hour", []float64{118452.105, 118452.121, 118452.138, 118452.154, 118452.171}, 592260.689},
		{"-0 sums to +0, as from 0.0 one by one", []float64{math.Copysign(0, -1), math.Copysign(0, -1)}, 0},
		{"values that cancel leave +0", []float64{1, 1e60, -1e60, -1}, 0},
		{"a NaN makes the sum NaN", []float64{1, math.NaN(), 2}, math.NaN()},
		{"an infinity stays", []float64{math.Inf(1), 1, -1e308}, math.Inf(1)},
		{"a negative infinity stays", []float64{5, math.Inf(-1)}, math.Inf(-1)},
		{"both infinities make NaN", []float64{math.Inf(1), 3, math.Inf(-1)}, math.NaN()},
		{"a partial sum that overflows is an infinity", []float64{max, max, -max}, math.Inf(1)},
		{"the largest finite values cancel", []float64{max, -max, 3}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sumOf(tt.values...)
			if got := s.Float64(); !same(got, tt.want) {
				t.Errorf("Sum of %v = %v (%#x), want %v (%#x); naive addition gives %v", tt.values, got,
					math.Float64bits(got), tt.want, math.Float64bits(tt.want), naive(tt.values...))
			}
		})
	}
}

func TestMergingPartialSumsIsExact(t *testing.T) {
	tests := []struct {
		name string
		a, b []float64
		want float64
	}{
		{"two chunks whose naive sums lose bits", []float64{0.1, 0.2}, []float64{0.3}, 0.6},
		{"a big value cancelled in the other chunk", []float64{1e100, 1}, []float64{-1e100, 2}, 3},
		{"an empty sum merged", nil, []float64{0.1, 0.7}, 0.7999999999999999},
		{"into an empty sum", []float64{0.1, 0.7}, nil, 0.7999999999999999},
		{"a NaN chunk", []float64{1}, []float64{math.NaN()}, math.NaN()},
		{"an infinite chunk into a finite one", []float64{1, 2}, []float64{math.Inf(-1)}, math.Inf(-1)},
		{"opposite infinities", []float64{math.Inf(1)}, []float64{math.Inf(-1)}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := sumOf(tt.a...), sumOf(tt.b...)
			keep := b.Clone()
			a.Merge(b)
			if got := a.Float64(); !same(got, tt.want) {
				t.Errorf("merged %v and %v: %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got, want := b.Float64(), keep.Float64(); !same(got, want) {
				t.Errorf("merging changed the merged sum: %v, was %v", got, want)
			}
		})
	}
}

// exact is the sum of xs rounded once to the nearest float64, ties to even, by math/big.
func exact(xs []float64) float64 {
	s := new(big.Float).SetPrec(4200)
	for _, x := range xs {
		s.Add(s, new(big.Float).SetPrec(4200).SetFloat64(x))
	}
	f, _ := s.Float64()
	return f + 0
}

func TestASumMatchesArbitraryPrecisionInAnyOrderAndGrouping(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 500; round++ {
		xs := make([]float64, 1+r.IntN(200))
		for i := range xs {
			xs[i] = math.Ldexp(r.Float64()-0.5, r.IntN(200)-100)
			if r.IntN(8) == 0 && i > 0 {
				xs[i] = -xs[r.IntN(i)] // cancellations
			}
		}
		want := exact(xs)
		whole := sumOf(xs...)
		if got := whole.Float64(); !same(got, want) {
			t.Fatalf("round %d: Sum = %v, math/big = %v", round, got, want)
		}
		// Shuffled and cut into chunks merged in another order: the same.
		perm := r.Perm(len(xs))
		var parts []Sum
		for i := 0; i < len(perm); {
			n := 1 + r.IntN(20)
			var s Sum
			for ; n > 0 && i < len(perm); n, i = n-1, i+1 {
				s.Add(xs[perm[i]])
			}
			parts = append(parts, s)
		}
		var merged Sum
		for _, i := range r.Perm(len(parts)) {
			merged.Merge(parts[i])
		}
		if got := merged.Float64(); !same(got, want) {
			t.Fatalf("round %d: merged in another grouping = %v, math/big = %v", round, got, want)
		}
		// What Add leaves, ParseSum takes back.
		b, _ := merged.AppendBinary(nil)
		back, err := ParseSum(b)
		if err != nil {
			t.Fatalf("round %d: ParseSum of the partials %v: %v", round, merged.p, err)
		}
		if got := back.Float64(); !same(got, want) {
			t.Fatalf("round %d: parsed back = %v, want %v", round, got, want)
		}
	}
}

func TestParseSumRefusesWhatAddNeverLeaves(t *testing.T) {
	enc := func(xs ...float64) []byte {
		b, _ := Sum{p: xs}.AppendBinary(nil)
		return b
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"a length not a multiple of 8", []byte{1, 2, 3}},
		{"a NaN among partials", enc(1, math.NaN())},
		{"an infinity among partials", enc(math.Inf(1), 2)},
		{"a zero below another partial", enc(0, 1)},
		{"partials in decreasing magnitude", enc(4, 1)},
		{"overlapping partials", enc(3, 6)},
		{"equal partials", enc(1, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := ParseSum(tt.b); !errors.Is(err, ErrCorrupt) {
				t.Errorf("ParseSum(% x) = %v, %v; want ErrCorrupt", tt.b, s.p, err)
			}
		})
	}
	for _, ok := range [][]byte{nil, enc(1, 0), enc(0x1p-60, 1), enc(math.NaN()), enc(math.Inf(-1)), enc(-3)} {
		if _, err := ParseSum(ok); err != nil {
			t.Errorf("ParseSum(% x): %v", ok, err)
		}
	}
}
