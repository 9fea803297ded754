package enginebench

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/chunk"
)

// The node encodes chunks with its own codec (telemetry/chunk) so that Prometheus stays out of its
// go.mod; these tests hold it to chunkenc's XOR chunks byte for byte, both ways, so that either codec
// reads the other's chunks and the choice can be reversed.

// sample is one (time, value) of an XOR stream.
type sample struct {
	t int64
	v float64
}

// sameStream appends samples to a chunkenc XOR chunk and to the node's XOR stream and demands the same
// bytes, and that each side decodes the other's bytes to the samples bit for bit.
func sameStream(t *testing.T, what string, samples []sample) {
	t.Helper()
	ref := chunkenc.NewXORChunk()
	app, err := ref.Appender()
	if err != nil {
		t.Fatal(err)
	}
	var own chunk.XOR
	for i, s := range samples {
		app.Append(0, s.t, s.v)
		if err := own.Append(s.t, s.v); err != nil {
			t.Fatalf("%s: sample %d: %v", what, i, err)
		}
	}
	if !bytes.Equal(own.Bytes(), ref.Bytes()) {
		t.Fatalf("%s: %d samples from %v: the node's stream differs from chunkenc's at byte %d of %d/%d", what, len(samples),
			samples[:min(len(samples), 4)], firstDiff(own.Bytes(), ref.Bytes()), len(own.Bytes()), len(ref.Bytes()))
	}
	it := chunk.NewXORIterator(ref.Bytes())
	i := 0
	for ; it.Next(); i++ {
		tm, v := it.At()
		if tm != samples[i].t || math.Float64bits(v) != math.Float64bits(samples[i].v) {
			t.Fatalf("%s: the node decodes chunkenc's sample %d as %d %v, want %d %v", what, i, tm, v, samples[i].t, samples[i].v)
		}
	}
	if err := it.Err(); err != nil || i != len(samples) {
		t.Fatalf("%s: the node decoded %d of chunkenc's %d samples: %v", what, i, len(samples), err)
	}
	var back chunkenc.XORChunk
	back.Reset(append([]byte(nil), own.Bytes()...))
	ci := back.Iterator(nil)
	i = 0
	for ; ci.Next() == chunkenc.ValFloat; i++ {
		tm, v := ci.At()
		if tm != samples[i].t || math.Float64bits(v) != math.Float64bits(samples[i].v) {
			t.Fatalf("%s: chunkenc decodes the node's sample %d as %d %v, want %d %v", what, i, tm, v, samples[i].t, samples[i].v)
		}
	}
	if err := ci.Err(); err != nil || i != len(samples) {
		t.Fatalf("%s: chunkenc decoded %d of the node's %d samples: %v", what, i, len(samples), err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// hourly cuts a series into the stores' chunks: per UTC hour, at most chunk.MaxValues values.
func hourly(s *Series) [][2]int {
	var cuts [][2]int
	for i := 0; i < s.Len(); {
		j := i + 1
		for j < s.Len() && j-i < chunk.MaxValues && s.Times[j]/ChunkMs == s.Times[i]/ChunkMs {
			j++
		}
		cuts = append(cuts, [2]int{i, j})
		i = j
	}
	return cuts
}

func TestTheNodesChunksAreChunkencsBytesOverTheSimulatorsMonth(t *testing.T) {
	days := 30
	if testing.Short() {
		days = 2
	}
	d, err := Generate(1, days, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	chunks, values := 0, 0
	for si := range d.Series {
		s := &d.Series[si]
		for _, cut := range hourly(s) {
			chunks++
			values += cut[1] - cut[0]
			// Every kind through the enginebench codec, which writes chunkenc's streams, and the node's.
			ref := newChunkBuilder(s.Kind, s.Times[cut[0]]/ChunkMs*ChunkMs)
			var own []byte
			switch s.Kind {
			case telemetry.KindString, telemetry.KindStrings:
				var c chunk.Strings
				for i := cut[0]; i < cut[1]; i++ {
					ref.add(s, i)
					if err := c.Append(s.Times[i], s.Strs[i]); err != nil {
						t.Fatal(err)
					}
				}
				own = c.Bytes()
			case telemetry.KindLocation:
				var c chunk.Locations
				for i := cut[0]; i < cut[1]; i++ {
					ref.add(s, i)
					l := s.Locs[i]
					if err := c.Append(s.Times[i], chunk.Location{Lat: l[0], Lon: l[1], HDOP: l[2]}); err != nil {
						t.Fatal(err)
					}
				}
				own = c.Bytes()
			default:
				var c chunk.Floats
				var samples []sample
				for i := cut[0]; i < cut[1]; i++ {
					ref.add(s, i)
					samples = append(samples, sample{s.Times[i], s.Nums[i]})
					if err := c.Append(s.Times[i], s.Nums[i]); err != nil {
						t.Fatal(err)
					}
				}
				sameStream(t, s.Name, samples)
				own = c.Bytes()
				sum := c.Summary()
				want := sums{ref.sum.total, ref.sum.lo, ref.sum.hi}
				if sum.Count != ref.n || sum.Min != want.lo || sum.Max != want.hi || sum.Sum.Float64() != ref.exact.round() ||
					sum.FirstTime != ref.ft || sum.LastTime != ref.lt || sum.First != ref.fv || sum.Last != ref.lv {
					t.Fatalf("%s at %d: the node's summary %+v, the benchmark's %d values, %+v, exact %v, first %d %v, last %d %v",
						s.Name, s.Times[cut[0]], sum, ref.n, want, ref.exact.round(), ref.ft, ref.fv, ref.lt, ref.lv)
				}
			}
			if !bytes.Equal(own, ref.bytes()) {
				t.Fatalf("%s at %d: the node's %s chunk differs from the benchmark's at byte %d", s.Name, s.Times[cut[0]], s.Kind, firstDiff(own, ref.bytes()))
			}
		}
	}
	t.Logf("%d days: %d chunks, %d values, byte for byte", days, chunks, values)
}

func TestTheNodesXORStreamIsChunkencsForAnySeries(t *testing.T) {
	specials := []float64{math.NaN(), math.Float64frombits(0x7ff0000000000001), math.Float64frombits(0xfff8000000000000),
		math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
		math.MaxFloat64, -math.MaxFloat64, 1, -1, 0.1}
	tests := []struct {
		name    string
		samples []sample
	}{
		{"nothing", nil},
		{"one sample", []sample{{1_700_000_000_000, 53.7}}},
		{"NaN, infinities, -0, subnormals, extremes", func() []sample {
			var s []sample
			for i, v := range specials {
				s = append(s, sample{int64(i) * 1000, v})
			}
			return s
		}()},
		{"equal timestamps", []sample{{5, 1}, {5, 2}, {5, 2}, {5, 3}}},
		{"decreasing timestamps", []sample{{1000, 1}, {999, 2}, {0, 3}, {-1_000_000, 4}, {-1_000_001, 5}}},
		{"big gaps: an hour, a year, the whole int64 range", []sample{{math.MinInt64, 1}, {0, 2}, {3_600_000, 3},
			{3_600_000 + 31_536_000_000, 4}, {math.MaxInt64, 5}, {math.MinInt64, 6}, {math.MaxInt64, 7}}},
		{"deltas of deltas at each width's edges", func() []sample {
			var s []sample
			tm, delta := int64(0), int64(1000)
			s = append(s, sample{tm, 0})
			for _, dod := range []int64{0, 8192, -8191, 8193, -8192, 65536, -65535, 65537, -65536, 524288, -524287, 524289, -524288, 1, -1} {
				delta += dod
				tm += delta
				s = append(s, sample{tm, float64(dod)})
			}
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { sameStream(t, tt.name, tt.samples) })
	}
	r := rand.New(rand.NewPCG(16, 3))
	gaps := []func() int64{
		func() int64 { return 1000 },
		func() int64 { return 1000 + r.Int64N(41) - 20 },
		func() int64 { return r.Int64N(3) }, // equal times too
		func() int64 { return int64(r.Uint64()) },
		func() int64 { return r.Int64N(1 << 40) },
		func() int64 { return -r.Int64N(1 << 20) },
		func() int64 { return []int64{1000, 10_000, 600_000, 86_400_000}[r.IntN(4)] },
	}
	values := []func(prev float64) float64{
		func(prev float64) float64 { return prev },
		func(prev float64) float64 { return prev + float64(r.IntN(7)-3)/10 },
		func(prev float64) float64 { return math.Float64frombits(r.Uint64()) },
		func(prev float64) float64 { return math.Float64frombits(math.Float64bits(prev) ^ 1<<r.IntN(64)) },
		func(prev float64) float64 { return specials[r.IntN(len(specials))] },
		func(prev float64) float64 { return float64(r.IntN(2)) },
		func(prev float64) float64 { return math.Round(r.NormFloat64()*1e4) / 1e3 },
	}
	for round := 0; round < 3000; round++ {
		n := r.IntN(300)
		if round%500 == 0 {
			n = chunk.MaxXORSamples
		}
		gap, value := gaps[r.IntN(len(gaps))], values[r.IntN(len(values))]
		mixed := r.IntN(4) == 0
		tm, v := int64(r.Uint64()>>r.IntN(64)), 0.0
		samples := make([]sample, 0, n)
		for range n {
			if mixed {
				gap, value = gaps[r.IntN(len(gaps))], values[r.IntN(len(values))]
			}
			tm += gap()
			v = value(v)
			samples = append(samples, sample{tm, v})
		}
		sameStream(t, "random", samples)
	}
}

func TestTheNodeReadsChunkencsChunksOfEveryLength(t *testing.T) {
	// Every prefix of one stream: the node's iterator ends exactly where chunkenc's count says.
	ref := chunkenc.NewXORChunk()
	app, err := ref.Appender()
	if err != nil {
		t.Fatal(err)
	}
	var want []sample
	for i := range 300 {
		s := sample{int64(i)*1000 + int64(i%7), math.Sin(float64(i)) * 100}
		app.Append(0, s.t, s.v)
		want = append(want, s)
		ts, vs, err := chunk.DecodeFloats(ref.Bytes(), nil, nil)
		if err != nil {
			t.Fatalf("%d samples: %v", i+1, err)
		}
		if !slices.Equal(ts, timesOf(want)) || !slices.Equal(vs, valuesOf(want)) {
			t.Fatalf("%d samples decoded differently", i+1)
		}
	}
}

func timesOf(s []sample) []int64 {
	o := make([]int64, len(s))
	for i := range s {
		o[i] = s[i].t
	}
	return o
}

func valuesOf(s []sample) []float64 {
	o := make([]float64, len(s))
	for i := range s {
		o[i] = s[i].v
	}
	return o
}

// BenchmarkXOR encodes and decodes the numbers of a simulated week, chunk by chunk, with chunkenc and
// with the node's codec: the same bytes, at what cost each.
func BenchmarkXOR(b *testing.B) {
	d, err := Generate(1, 7, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		b.Fatal(err)
	}
	var series [][]sample
	values := 0
	for si := range d.Series {
		s := &d.Series[si]
		if s.Nums == nil {
			continue
		}
		for _, cut := range hourly(s) {
			var c []sample
			for i := cut[0]; i < cut[1]; i++ {
				c = append(c, sample{s.Times[i], s.Nums[i]})
			}
			series = append(series, c)
			values += len(c)
		}
	}
	encoded := make([][]byte, len(series))
	for i, c := range series {
		var x chunk.XOR
		for _, s := range c {
			_ = x.Append(s.t, s.v)
		}
		encoded[i] = x.Bytes()
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(values)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("encode/chunkenc", func(b *testing.B) {
		for b.Loop() {
			for _, c := range series {
				x := chunkenc.NewXORChunk()
				app, _ := x.Appender()
				for _, s := range c {
					app.Append(0, s.t, s.v)
				}
			}
		}
		report(b)
	})
	b.Run("encode/node", func(b *testing.B) {
		for b.Loop() {
			for _, c := range series {
				var x chunk.XOR
				for _, s := range c {
					_ = x.Append(s.t, s.v)
				}
			}
		}
		report(b)
	})
	b.Run("decode/chunkenc", func(b *testing.B) {
		var x chunkenc.XORChunk
		var it chunkenc.Iterator
		for b.Loop() {
			for _, e := range encoded {
				x.Reset(e)
				it = x.Iterator(it)
				for it.Next() == chunkenc.ValFloat {
					it.At()
				}
			}
		}
		report(b)
	})
	b.Run("decode/node", func(b *testing.B) {
		var ts []int64
		var vs []float64
		for b.Loop() {
			for _, e := range encoded {
				ts, vs, _ = chunk.DecodeFloats(e, ts[:0], vs[:0])
			}
		}
		report(b)
	})
}
