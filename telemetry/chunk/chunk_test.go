package chunk

import (
	"errors"
	"math"
	"slices"
	"testing"
)

var negZero = math.Copysign(0, -1)

func TestFloatsRoundTripBitForBitWithTheirSummary(t *testing.T) {
	tests := []struct {
		name   string
		times  []int64
		values []float64
		want   Summary // Sum left out: its Float64 is wantSum
		sum    float64
	}{
		{"one value", []int64{1_700_000_000_000}, []float64{53.7},
			Summary{Count: 1, FirstTime: 1_700_000_000_000, LastTime: 1_700_000_000_000, First: 53.7, Last: 53.7, Min: 53.7, Max: 53.7}, 53.7},
		{"a regular second with repeats", []int64{0, 1000, 2000, 3000, 4000}, []float64{0.1, 0.2, 0.3, 0.3, 0.3},
			Summary{Count: 5, FirstTime: 0, LastTime: 4000, First: 0.1, Last: 0.3, Min: 0.1, Max: 0.3}, 1.2},
		{"-0, +0 and subnormals", []int64{-5, 7, 9}, []float64{negZero, 0, math.SmallestNonzeroFloat64},
			Summary{Count: 3, FirstTime: -5, LastTime: 9, First: negZero, Last: math.SmallestNonzeroFloat64, Min: negZero, Max: math.SmallestNonzeroFloat64}, 5e-324},
		{"infinities", []int64{1, 2, 3}, []float64{math.Inf(-1), 1, math.Inf(1)},
			Summary{Count: 3, FirstTime: 1, LastTime: 3, First: math.Inf(-1), Last: math.Inf(1), Min: math.Inf(-1), Max: math.Inf(1)}, math.NaN()},
		{"big gaps and jitter", []int64{0, 1, 3_600_000, 3_600_001, 3_600_000_000_000, 3_600_000_000_017, math.MaxInt64},
			[]float64{1, 2, 3, 4, 5, 6, 7},
			Summary{Count: 7, FirstTime: 0, LastTime: math.MaxInt64, First: 1, Last: 7, Min: 1, Max: 7}, 28},
		{"negative times", []int64{math.MinInt64, -1000, 0}, []float64{-1e300, 1e300, 5},
			Summary{Count: 3, FirstTime: math.MinInt64, LastTime: 0, First: -1e300, Last: 5, Min: -1e300, Max: 1e300}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Floats
			for i := range tt.times {
				if err := c.Append(tt.times[i], tt.values[i]); err != nil {
					t.Fatal(err)
				}
			}
			got := c.Summary()
			if s := got.Sum.Float64(); !same(s, tt.sum) {
				t.Errorf("sum %v, want %v", s, tt.sum)
			}
			got.Sum = Sum{}
			if !sameSummary(got, tt.want) {
				t.Errorf("summary %+v, want %+v", got, tt.want)
			}
			ts, vs, err := DecodeFloats(c.Bytes(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ts, tt.times) || !sameBits(vs, tt.values) {
				t.Errorf("decoded %v %v, want %v %v", ts, vs, tt.times, tt.values)
			}
		})
	}
}

func sameSummary(a, b Summary) bool {
	return a.Count == b.Count && a.FirstTime == b.FirstTime && a.LastTime == b.LastTime &&
		same(a.First, b.First) && same(a.Last, b.Last) && same(a.Min, b.Min) && same(a.Max, b.Max)
}

func sameBits(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
}

func TestAChunkRefusesTimesNotAfterTheLastAndValuesPastMaxValues(t *testing.T) {
	var f Floats
	var s Strings
	var l Locations
	appends := []struct {
		name   string
		append func(t int64) error
	}{
		{"numbers", func(t int64) error { return f.Append(t, 1) }},
		{"strings", func(t int64) error { return s.Append(t, "a") }},
		{"locations", func(t int64) error { return l.Append(t, Location{1, 2, 3}) }},
	}
	for _, a := range appends {
		t.Run(a.name, func(t *testing.T) {
			if err := a.append(100); err != nil {
				t.Fatal(err)
			}
			for _, at := range []int64{100, 99, math.MinInt64} {
				if err := a.append(at); !errors.Is(err, ErrOutOfOrder) {
					t.Errorf("a value at %d after one at 100: %v, want ErrOutOfOrder", at, err)
				}
			}
			for i := int64(1); i < MaxValues; i++ {
				if err := a.append(100 + i); err != nil {
					t.Fatalf("value %d: %v", i+1, err)
				}
			}
			if err := a.append(100 + MaxValues); !errors.Is(err, ErrFull) {
				t.Errorf("value %d: %v, want ErrFull", MaxValues+1, err)
			}
		})
	}
	if f.Len() != MaxValues || s.Len() != MaxValues || l.Len() != MaxValues {
		t.Errorf("lengths %d, %d, %d, want %d", f.Len(), s.Len(), l.Len(), MaxValues)
	}
}

func TestAnXORStreamTakesEqualAndDecreasingTimesAsChunkencDoes(t *testing.T) {
	times := []int64{1000, 1000, 999, 5000, 5000, math.MinInt64, math.MaxInt64}
	var x XOR
	for i, t0 := range times {
		if err := x.Append(t0, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	it := NewXORIterator(x.Bytes())
	var got []int64
	for it.Next() {
		t0, _ := it.At()
		got = append(got, t0)
	}
	if err := it.Err(); err != nil || !slices.Equal(got, times) {
		t.Errorf("decoded %v, %v; want %v", got, err, times)
	}
	if _, _, err := DecodeFloats(x.Bytes(), nil, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("DecodeFloats of times not increasing: %v, want ErrCorrupt", err)
	}
}

func TestAnEmptyXORStreamIsItsCount(t *testing.T) {
	var x XOR
	if got := x.Bytes(); !slices.Equal(got, []byte{0, 0}) {
		t.Errorf("an empty stream is % x, want 00 00", got)
	}
	if _, _, err := DecodeFloats(x.Bytes(), nil, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("DecodeFloats of an empty chunk: %v, want ErrCorrupt", err)
	}
}

func TestAnXORStreamIsFullAtItsCountsLimit(t *testing.T) {
	var x XOR
	for i := 0; i < MaxXORSamples; i++ {
		if err := x.Append(int64(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Append(MaxXORSamples, 0); !errors.Is(err, ErrFull) {
		t.Errorf("sample %d: %v, want ErrFull", MaxXORSamples+1, err)
	}
}

func TestStringsRoundTripWithTheirDictionary(t *testing.T) {
	tests := []struct {
		name   string
		times  []int64
		values []string
		ends   Ends[string]
	}{
		{"one string", []int64{0}, []string{"COMBUSTION"}, Ends[string]{1, 0, 0, "COMBUSTION", "COMBUSTION"}},
		{"repeats, the empty string and a change back", []int64{10, 20, 30, 40, 50}, []string{"ELECTRIC", "ELECTRIC", "", "HYBRID", "ELECTRIC"},
			Ends[string]{5, 10, 50, "ELECTRIC", "ELECTRIC"}},
		{"JSON of a string[] and non-ASCII", []int64{1, 2}, []string{`["A","B"]`, "Zürich ✓"}, Ends[string]{2, 1, 2, `["A","B"]`, "Zürich ✓"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Strings
			for i := range tt.times {
				if err := c.Append(tt.times[i], tt.values[i]); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.Ends(); got != tt.ends {
				t.Errorf("ends %+v, want %+v", got, tt.ends)
			}
			ts, vs, err := DecodeStrings(c.Bytes(), []int64{-1}, []string{"kept"})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ts, append([]int64{-1}, tt.times...)) || !slices.Equal(vs, append([]string{"kept"}, tt.values...)) {
				t.Errorf("decoded %v %q, want %v %q after what was there", ts, vs, tt.times, tt.values)
			}
		})
	}
}

func TestAStringsChunksBytes(t *testing.T) {
	var c Strings
	for i, v := range []string{"ab", "ab", "c"} {
		if err := c.Append(int64(i*1000), v); err != nil {
			t.Fatal(err)
		}
	}
	// The stream: count 3 (00 03); time 0 (varint 00), value 0.0 (8 zero bytes); delta 1000 (uvarint
	// e8 07), value 0.0 again '0'; then delta of deltas 0 '0', and 1.0 XOR 0.0 = 0x3ff0…: '1', '1' (a new
	// window), 2 leading zeros (00010), 10 meaningful bits (001010), 1111111111. The bits
	// 00 11 00010 001010 1111111111, padded with zeros, are 31 15 ff 80: 17 bytes (0x11).
	want := []byte{
		0x11,
		0x00, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0x31, 0x15, 0xff, 0x80,
		0x02, 0x02, 'a', 'b', 0x01, 'c',
	}
	if got := c.Bytes(); !slices.Equal(got, want) {
		t.Errorf("bytes\n% x\nwant\n% x", got, want)
	}
}

func TestLocationsRoundTripBitForBit(t *testing.T) {
	times := []int64{1000, 2000, 2500, 9000}
	values := []Location{{52.5200066, 13.404954, 0.9}, {52.5200123, 13.4049611, 1.1}, {52.5200123, 13.4049611, 1.1}, {-33.8688, 151.2093, math.NaN()}}
	var c Locations
	for i := range times {
		if err := c.Append(times[i], values[i]); err != nil {
			t.Fatal(err)
		}
	}
	if e := c.Ends(); e.Count != 4 || e.FirstTime != 1000 || e.LastTime != 9000 || e.First != values[0] || e.Last.Lat != -33.8688 || e.Last.Lon != 151.2093 || !math.IsNaN(e.Last.HDOP) {
		t.Errorf("ends %+v, want 4 values from 1000 (%v) to 9000 (%v)", e, values[0], values[3])
	}
	ts, vs, err := DecodeLocations(c.Bytes(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ts, times) || !slices.EqualFunc(vs, values, func(a, b Location) bool {
		return sameBits([]float64{a.Lat, a.Lon, a.HDOP}, []float64{b.Lat, b.Lon, b.HDOP})
	}) {
		t.Errorf("decoded %v %v, want %v %v", ts, vs, times, values)
	}
}

// chunks are one encoded chunk of each kind, for the truncation and bit-flip tests.
func chunks(t testing.TB) map[string][]byte {
	var f Floats
	var s Strings
	var l Locations
	for i, v := range []float64{53.7, 53.7, 54.25, 0, math.Inf(1), -1e-300} {
		tm := int64(1_700_000_000_000 + i*1000 + i*i*37)
		if err := f.Append(tm, v); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(tm, []string{"A", "A", "", "B", "A", "C"}[i]); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(tm, Location{52 + v/1e5, 13 - float64(i)/1e6, float64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	return map[string][]byte{"numbers": f.Bytes(), "strings": s.Bytes(), "locations": l.Bytes()}
}

var decoders = map[string]func([]byte) error{
	"numbers":   func(b []byte) error { _, _, err := DecodeFloats(b, nil, nil); return err },
	"strings":   func(b []byte) error { _, _, err := DecodeStrings(b, nil, nil); return err },
	"locations": func(b []byte) error { _, _, err := DecodeLocations(b, nil, nil); return err },
}

func TestEveryTruncationAndExtensionOfAChunkIsAnError(t *testing.T) {
	for kind, b := range chunks(t) {
		if err := decoders[kind](b); err != nil {
			t.Fatalf("%s: the whole chunk: %v", kind, err)
		}
		for n := 0; n < len(b); n++ {
			if err := decoders[kind](b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s cut to %d of %d bytes: %v, want ErrCorrupt", kind, n, len(b), err)
			}
		}
		for _, extra := range []byte{0, 1, 0x80} {
			if err := decoders[kind](append(slices.Clip(b), extra)); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s with a byte %#x added: %v, want ErrCorrupt", kind, extra, err)
			}
		}
	}
}

// TestEveryBitFlipOfAChunkIsAnErrorOrAnotherChunk flips each bit of each chunk: the decoder must not
// panic, and whatever it accepts must re-encode to exactly the flipped bytes (decoders take only what
// encoders write).
func TestEveryBitFlipOfAChunkIsAnErrorOrAnotherChunk(t *testing.T) {
	for kind, b := range chunks(t) {
		accepted := 0
		for i := range 8 * len(b) {
			c := slices.Clone(b)
			c[i/8] ^= 0x80 >> (i % 8)
			if reencode(t, kind, c) {
				accepted++
			}
		}
		t.Logf("%s: %d of %d bit flips decode (to other values)", kind, accepted, 8*len(b))
	}
}

// reencode decodes b as a chunk of kind and, if that succeeds, demands that encoding the values again
// gives b. It reports whether b decoded.
func reencode(t testing.TB, kind string, b []byte) bool {
	t.Helper()
	var again []byte
	switch kind {
	case "numbers":
		ts, vs, err := DecodeFloats(b, nil, nil)
		if err != nil {
			mustBeCorrupt(t, err)
			return false
		}
		var c Floats
		for i := range ts {
			if err := c.Append(ts[i], vs[i]); err != nil {
				t.Fatalf("re-encoding decoded value %d: %v", i, err)
			}
		}
		again = c.Bytes()
	case "strings":
		ts, vs, err := DecodeStrings(b, nil, nil)
		if err != nil {
			mustBeCorrupt(t, err)
			return false
		}
		var c Strings
		for i := range ts {
			if err := c.Append(ts[i], vs[i]); err != nil {
				t.Fatalf("re-encoding decoded value %d: %v", i, err)
			}
		}
		again = c.Bytes()
	case "locations":
		ts, vs, err := DecodeLocations(b, nil, nil)
		if err != nil {
			mustBeCorrupt(t, err)
			return false
		}
		var c Locations
		for i := range ts {
			if err := c.Append(ts[i], vs[i]); err != nil {
				t.Fatalf("re-encoding decoded value %d: %v", i, err)
			}
		}
		again = c.Bytes()
	default:
		t.Fatalf("no chunk kind %q", kind)
	}
	if !slices.Equal(again, b) {
		t.Fatalf("%s: % x decodes, but its values encode to % x", kind, b, again)
	}
	return true
}

func mustBeCorrupt(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a decoding error that does not wrap ErrCorrupt: %v", err)
	}
}
