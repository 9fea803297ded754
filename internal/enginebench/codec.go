package enginebench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/glovebox/glovebox/telemetry"
)

// A chunk is the values of one signal of one vehicle within one UTC hour (ChunkMs), at most
// MaxChunkValues of them, encoded with Prometheus's XOR (Gorilla) codec, which keeps timestamps as
// delta-of-deltas and each float64 as the XOR with the one before it: lossless, bit for bit.
//
//   - numbers and booleans (0/1): one XOR stream of (time, value).
//   - strings (and string[] as its JSON text): a dictionary of the chunk's distinct strings in order of
//     first use, and one XOR stream of (time, index in the dictionary as a float64), so a string that
//     does not change costs about two bits a value. Layout: uvarint length of the stream, the stream,
//     uvarint count of entries, then each entry as uvarint length and bytes.
//   - locations: three XOR streams, of latitude, longitude and hdop, each with the times (a regular
//     time costs one bit a value in each). Layout: uvarint length and bytes of the first two, then the
//     third to the end.
const (
	ChunkMs        = int64(3_600_000)
	MaxChunkValues = 16384
)

var errChunk = errors.New("a malformed chunk")

// chunkBuilder collects the values of one chunk and their summary.
type chunkBuilder struct {
	kind  telemetry.Kind
	hour  int64 // the chunk's hour, unix ms
	n     int
	xs    [3]*chunkenc.XORChunk
	apps  [3]chunkenc.Appender
	dict  map[string]int
	words []string
	sum   sums
	exact exactSum
	ft    int64
	fv    any
	lt    int64
	lv    any
}

// sums is the running sum, minimum and maximum of a chunk's numbers.
type sums struct{ total, lo, hi float64 }

func newChunkBuilder(kind telemetry.Kind, hour int64) *chunkBuilder {
	c := &chunkBuilder{kind: kind, hour: hour}
	streams := 1
	if kind == telemetry.KindLocation {
		streams = 3
	}
	for i := 0; i < streams; i++ {
		c.xs[i] = chunkenc.NewXORChunk()
		app, err := c.xs[i].Appender()
		if err != nil {
			panic("enginebench: an empty XOR chunk has no appender: " + err.Error()) // never for an empty chunk
		}
		c.apps[i] = app
	}
	if kind == telemetry.KindString || kind == telemetry.KindStrings {
		c.dict = map[string]int{}
	}
	return c
}

// add appends value i of series s (times ascending).
func (c *chunkBuilder) add(sr *Series, i int) {
	t := sr.Times[i]
	v := sr.Value(i)
	switch c.kind {
	case telemetry.KindString, telemetry.KindStrings:
		w := sr.Strs[i]
		k, ok := c.dict[w]
		if !ok {
			k = len(c.words)
			c.dict[w] = k
			c.words = append(c.words, w)
		}
		c.apps[0].Append(0, t, float64(k))
	case telemetry.KindLocation:
		for j := 0; j < 3; j++ {
			c.apps[j].Append(0, t, sr.Locs[i][j])
		}
	default:
		f := sr.Nums[i]
		c.apps[0].Append(0, t, f)
		c.exact.add(f)
		if c.n == 0 {
			c.sum = sums{f, f, f}
		} else {
			c.sum.total += f
			c.sum.lo = min(c.sum.lo, f)
			c.sum.hi = max(c.sum.hi, f)
		}
	}
	if c.n == 0 {
		c.ft, c.fv = t, v
	}
	c.lt, c.lv = t, v
	c.n++
}

// bytes encodes the chunk.
func (c *chunkBuilder) bytes() []byte {
	switch c.kind {
	case telemetry.KindString, telemetry.KindStrings:
		x := c.xs[0].Bytes()
		b := binary.AppendUvarint(nil, uint64(len(x)))
		b = append(b, x...)
		b = binary.AppendUvarint(b, uint64(len(c.words)))
		for _, w := range c.words {
			b = binary.AppendUvarint(b, uint64(len(w)))
			b = append(b, w...)
		}
		return b
	case telemetry.KindLocation:
		var b []byte
		for j := 0; j < 2; j++ {
			x := c.xs[j].Bytes()
			b = binary.AppendUvarint(b, uint64(len(x)))
			b = append(b, x...)
		}
		return append(b, c.xs[2].Bytes()...)
	}
	return append([]byte(nil), c.xs[0].Bytes()...)
}

// decodeChunk hands each value of an encoded chunk of kind to yield, in the form Series.Value gives.
func decodeChunk(kind telemetry.Kind, b []byte, yield func(t int64, v any) error) error {
	next := func() ([]byte, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errChunk
		}
		x := b[k : k+int(n)]
		b = b[k+int(n):]
		return x, nil
	}
	switch kind {
	case telemetry.KindString, telemetry.KindStrings:
		x, err := next()
		if err != nil {
			return err
		}
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)) {
			return errChunk
		}
		b = b[k:]
		words := make([]string, n)
		for i := range words {
			w, err := next()
			if err != nil {
				return err
			}
			words[i] = string(w)
		}
		return eachXOR(x, func(t int64, f float64) error {
			k := int(f)
			if float64(k) != f || k < 0 || k >= len(words) {
				return errChunk
			}
			return yield(t, words[k])
		})
	case telemetry.KindLocation:
		lat, err := next()
		if err != nil {
			return err
		}
		lon, err := next()
		if err != nil {
			return err
		}
		var ts []int64
		var cols [3][]float64
		for j, x := range [][]byte{lat, lon, b} {
			if err := eachXOR(x, func(t int64, f float64) error {
				if j == 0 {
					ts = append(ts, t)
				}
				cols[j] = append(cols[j], f)
				return nil
			}); err != nil {
				return err
			}
		}
		if len(cols[1]) != len(ts) || len(cols[2]) != len(ts) {
			return errChunk
		}
		for i, t := range ts {
			if err := yield(t, telemetry.EncodeLocation(cols[0][i], cols[1][i], cols[2][i])); err != nil {
				return err
			}
		}
		return nil
	}
	return eachXOR(b, func(t int64, f float64) error { return yield(t, f) })
}

// eachXOR hands each sample of an XOR chunk to yield.
func eachXOR(b []byte, yield func(t int64, f float64) error) error {
	if len(b) < 2 {
		return errChunk
	}
	it := chunkenc.NewXORChunk()
	it.Reset(b)
	iter := it.Iterator(nil)
	for iter.Next() == chunkenc.ValFloat {
		t, f := iter.At()
		if err := yield(t, f); err != nil {
			return err
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("%w: %w", errChunk, err)
	}
	return nil
}

func mathBits(f float64) uint64 { return math.Float64bits(f) }
