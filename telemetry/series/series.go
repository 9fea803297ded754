// Package series turns the values of one signal of one vehicle within one UTC hour into the chunks the
// stores keep (package chunk; docs/columnar.md) and back, so that store/sqlite and store/postgres encode,
// merge and decode them alike: an hour's values are kept in time order, one value per millisecond, in
// one or more chunks of at most chunk.MaxValues values, each with the summary a store writes beside it.
//
// It owns the mapping between the stores' value representation (Point) and the chunk formats, and the
// rule for values measured at the same millisecond (the first one stored wins, as the stores' primary
// keys always made it). It imports telemetry (the kinds and the location encoding) and telemetry/chunk,
// never a store or a database driver.
package series

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/chunk"
)

// HourMs is an hour in milliseconds: the span of one vehicle's signal that a chunk may cover.
const HourMs = 3_600_000

// Hour returns the start (unix ms) of the UTC hour that contains t (unix ms), for any t.
func Hour(t int64) int64 {
	h := t / HourMs * HourMs
	if h > t {
		h -= HourMs
	}
	return h
}

// Point is one value as the stores keep it: V is a float64 for numbers and booleans (0 and 1), a string
// for strings (a string[] as its JSON text), and for locations the 24 bytes of telemetry.EncodeLocation.
type Point struct {
	T int64 // unix ms
	V any
}

// Chunk is one encoded chunk with its summary: the row a store writes for it.
type Chunk struct {
	Start, End  int64 // times of the first and last value (unix ms)
	Count       int
	First, Last any // the first and last values, as Points hold them
	// Min, Max and Sum are those of the values for numbers and booleans; zero for other kinds.
	Min, Max float64
	Sum      chunk.Sum
	Data     []byte
	// Slots is AppendSlots' encoding of the values' five-minute slot summaries, for a chunk of numbers
	// or booleans of at least MinSlotValues values; nil otherwise.
	Slots []byte
}

// Encode encodes pts, which must be in strictly increasing time order and within one UTC hour, as
// chunks of at most chunk.MaxValues values in time order. A value of the wrong type for kind is an error.
func Encode(kind telemetry.Kind, pts []Point) ([]Chunk, error) {
	if len(pts) == 0 {
		return nil, nil
	}
	if h := Hour(pts[0].T); Hour(pts[len(pts)-1].T) != h {
		return nil, fmt.Errorf("values from %d to %d span more than the UTC hour from %d", pts[0].T, pts[len(pts)-1].T, h)
	}
	var out []Chunk
	for len(pts) > 0 {
		n := min(len(pts), chunk.MaxValues)
		c, err := encodeOne(kind, pts[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		pts = pts[n:]
	}
	return out, nil
}

func encodeOne(kind telemetry.Kind, pts []Point) (Chunk, error) {
	c := Chunk{Start: pts[0].T, End: pts[len(pts)-1].T, Count: len(pts), First: pts[0].V, Last: pts[len(pts)-1].V}
	switch kind {
	case telemetry.KindNumber, telemetry.KindBool:
		var f chunk.Floats
		for _, p := range pts {
			v, ok := p.V.(float64)
			if !ok {
				return Chunk{}, fmt.Errorf("a %s value at %d is a %T, not a float64", kind, p.T, p.V)
			}
			if err := f.Append(p.T, v); err != nil {
				return Chunk{}, fmt.Errorf("value at %d: %w", p.T, err)
			}
		}
		s := f.Summary()
		c.Min, c.Max, c.Sum, c.Data = s.Min, s.Max, s.Sum, f.Bytes()
		if len(pts) >= MinSlotValues {
			slots, err := Slots(pts)
			if err != nil {
				return Chunk{}, err
			}
			c.Slots = AppendSlots(nil, slots)
		}
	case telemetry.KindString, telemetry.KindStrings:
		var s chunk.Strings
		for _, p := range pts {
			v, ok := p.V.(string)
			if !ok {
				return Chunk{}, fmt.Errorf("a %s value at %d is a %T, not a string", kind, p.T, p.V)
			}
			if err := s.Append(p.T, v); err != nil {
				return Chunk{}, fmt.Errorf("value at %d: %w", p.T, err)
			}
		}
		c.Data = s.Bytes()
	case telemetry.KindLocation:
		var l chunk.Locations
		for _, p := range pts {
			b, ok := p.V.([]byte)
			if !ok {
				return Chunk{}, fmt.Errorf("a location at %d is a %T, not encoded bytes", p.T, p.V)
			}
			lat, lon, hdop, err := telemetry.DecodeLocation(b)
			if err != nil {
				return Chunk{}, fmt.Errorf("location at %d: %w", p.T, err)
			}
			if err := l.Append(p.T, chunk.Location{Lat: lat, Lon: lon, HDOP: hdop}); err != nil {
				return Chunk{}, fmt.Errorf("value at %d: %w", p.T, err)
			}
		}
		c.Data = l.Bytes()
	default:
		return Chunk{}, fmt.Errorf("no chunk format for signals of kind %d", kind)
	}
	return c, nil
}

// Decode appends the values of a chunk of kind to dst, in time order.
func Decode(kind telemetry.Kind, data []byte, dst []Point) ([]Point, error) {
	switch kind {
	case telemetry.KindNumber, telemetry.KindBool:
		ts, vs, err := chunk.DecodeFloats(data, nil, nil)
		if err != nil {
			return dst, fmt.Errorf("couldn't decode a chunk of numbers: %w", err)
		}
		for i, t := range ts {
			dst = append(dst, Point{T: t, V: vs[i]})
		}
		return dst, nil
	case telemetry.KindString, telemetry.KindStrings:
		ts, vs, err := chunk.DecodeStrings(data, nil, nil)
		if err != nil {
			return dst, fmt.Errorf("couldn't decode a chunk of strings: %w", err)
		}
		for i, t := range ts {
			dst = append(dst, Point{T: t, V: vs[i]})
		}
		return dst, nil
	case telemetry.KindLocation:
		ts, ls, err := chunk.DecodeLocations(data, nil, nil)
		if err != nil {
			return dst, fmt.Errorf("couldn't decode a chunk of locations: %w", err)
		}
		for i, t := range ts {
			dst = append(dst, Point{T: t, V: telemetry.EncodeLocation(ls[i].Lat, ls[i].Lon, ls[i].HDOP)})
		}
		return dst, nil
	}
	return dst, fmt.Errorf("no chunk format for signals of kind %d", kind)
}

// Merge returns the values of old (in strictly increasing time order, as decoded) and add (in the order
// they were received) in strictly increasing time order, one per millisecond: a time in old keeps old's
// value, and of several values of add at one time the first is kept. It may reorder add, and when old
// is empty it returns add's own array.
func Merge(old, add []Point) []Point {
	slices.SortStableFunc(add, func(a, b Point) int { return cmp.Compare(a.T, b.T) })
	if len(old) == 0 {
		return slices.CompactFunc(add, func(a, b Point) bool { return a.T == b.T })
	}
	out := make([]Point, 0, len(old)+len(add))
	i := 0
	for j, p := range add {
		if j > 0 && add[j-1].T == p.T {
			continue // a later value at the same time as one before it
		}
		for i < len(old) && old[i].T < p.T {
			out = append(out, old[i])
			i++
		}
		if i < len(old) && old[i].T == p.T {
			continue
		}
		out = append(out, p)
	}
	return append(out, old[i:]...)
}
