package chunk

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// The fuzz tests feed decoders arbitrary bytes, as a damaged disk or a bug elsewhere could: they must
// never panic, every error must wrap ErrCorrupt, and whatever decodes must encode back to the same bytes.
// Their seeds are in testdata/fuzz/<FuzzName>/ (TestTheFuzzSeedsAreCurrent writes them with -update):
// one chunk of each kind, its truncations at a few places, and a few streams the encoder never writes.

func FuzzDecodeFloats(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { reencode(t, "numbers", b) })
}

func FuzzDecodeStrings(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { reencode(t, "strings", b) })
}

func FuzzDecodeLocations(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { reencode(t, "locations", b) })
}

// FuzzXORIterator reads any stream, in any order of times, as chunkenc would write it: what decodes
// re-encodes to the same bytes.
func FuzzXORIterator(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		it := NewXORIterator(b)
		var x XOR
		for it.Next() {
			if err := x.Append(it.At()); err != nil {
				t.Fatal(err)
			}
		}
		if err := it.Err(); err != nil {
			mustBeCorrupt(t, err)
			return
		}
		if x.Len() != it.Len() || !bytes.Equal(x.Bytes(), b) {
			t.Fatalf("% x decodes to %d samples that encode to % x", b, x.Len(), x.Bytes())
		}
	})
}

// FuzzParseSum parses any bytes as an exact sum: what parses writes back the same, and adding to it
// keeps it parseable.
func FuzzParseSum(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSum(b)
		if err != nil {
			mustBeCorrupt(t, err)
			return
		}
		if back, _ := s.AppendBinary(nil); !bytes.Equal(back, b) {
			t.Fatalf("% x parses but writes back % x", b, back)
		}
		_ = s.Float64()
		s.Add(0.1)
		s.Merge(s.Clone())
		b, _ = s.AppendBinary(nil)
		if _, err := ParseSum(b); err != nil {
			t.Fatalf("a parsed sum after Add and Merge no longer parses: %v", err)
		}
	})
}

// seeds are the seed corpus of each fuzz test.
func seeds(t *testing.T) map[string][][]byte {
	c := chunks(t)
	cut := func(b []byte) [][]byte {
		return [][]byte{b, b[:len(b)/2], b[:len(b)-1], append(bytes.Clone(b), 0)}
	}
	var x XOR
	for i, tm := range []int64{5, 5, 4, math.MinInt64, math.MaxInt64} {
		_ = x.Append(tm, float64(i)/3)
	}
	sum := sumOf(0.1, 0.2, 1e100, -1e100, 1e-30)
	sumBytes, _ := sum.AppendBinary(nil)
	nan, _ := sumOf(math.NaN()).AppendBinary(nil)
	return map[string][][]byte{
		"FuzzDecodeFloats":    append(cut(c["numbers"]), []byte{0, 0}, []byte{0x00, 0x01, 0x00}),
		"FuzzDecodeStrings":   append(cut(c["strings"]), []byte{0x00, 0x00}),
		"FuzzDecodeLocations": append(cut(c["locations"]), []byte{0x00, 0x00}),
		"FuzzXORIterator":     append(cut(x.Bytes()), []byte{0xff, 0xff}),
		"FuzzParseSum":        {nil, sumBytes, nan, sumBytes[:len(sumBytes)-1]},
	}
}

func TestTheFuzzSeedsAreCurrent(t *testing.T) {
	for name, inputs := range seeds(t) {
		for i, b := range inputs {
			path := filepath.Join("testdata", "fuzz", name, fmt.Sprintf("seed%02d", i))
			want := []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s is not the current seed (%v): run go test -run TestTheFuzzSeedsAreCurrent -update", path, err)
			}
		}
	}
}
