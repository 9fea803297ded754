package series

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/glovebox/glovebox/telemetry/chunk"
)

// SlotMs is five minutes, the width of a slot: a chunk of many numbers keeps, beside its summary, the
// summary of its values in each five-minute slot of its hour (slot i from hour + i·SlotMs), so that an
// aggregation in buckets of five minutes or a multiple of them — a chart's usual width — is answered
// without decoding the chunk (docs/columnar.md, "Slot summaries").
const SlotMs = 300_000

// MinSlotValues is the fewest values of a chunk that gets slot summaries: a smaller chunk decodes in
// tens of microseconds, and its slots would add more bytes than the values take.
const MinSlotValues = 1024

// Slot is the summary of a chunk's values within one five-minute slot of its hour.
type Slot struct {
	Start, End  int64 // times of the first and last value (unix ms)
	Count       int
	First, Last float64
	Min, Max    float64
	Sum         chunk.Sum
}

// Slots returns the summaries of pts (numbers, in strictly increasing time order, within one UTC hour)
// by five-minute slot, in time order, leaving out slots without values. A value that is not a float64
// is an error.
func Slots(pts []Point) ([]Slot, error) {
	var out []Slot
	var cur *Slot
	var end int64 // the end of cur's slot
	for _, p := range pts {
		v, ok := p.V.(float64)
		if !ok {
			return nil, fmt.Errorf("a value at %d is a %T, not a float64", p.T, p.V)
		}
		if cur == nil || p.T >= end {
			start := floorSlot(p.T)
			out = append(out, Slot{Start: p.T, First: v, Min: v, Max: v})
			cur, end = &out[len(out)-1], start+SlotMs
		}
		cur.End, cur.Last = p.T, v
		cur.Min, cur.Max = min(cur.Min, v), max(cur.Max, v)
		cur.Sum.Add(v)
		cur.Count++
	}
	return out, nil
}

// floorSlot returns the start of the five-minute slot that holds t.
func floorSlot(t int64) int64 {
	s := t / SlotMs * SlotMs
	if s > t {
		s -= SlotMs
	}
	return s
}

// AppendSlots appends the encoding of slots (Slots' result for the values of one hour) to b: for each
// slot, its index in the hour (one byte, 0–11), its count, the offsets of its first and last value from
// the slot's start (uvarints), the first, last, minimum and maximum values (big-endian float64 bits),
// then the number of the exact sum's partials (one byte) and the partials (chunk.Sum.AppendBinary).
func AppendSlots(b []byte, slots []Slot) []byte {
	for _, s := range slots {
		start := floorSlot(s.Start)
		b = append(b, byte((start-Hour(s.Start))/SlotMs))
		b = binary.AppendUvarint(b, uint64(s.Count))
		b = binary.AppendUvarint(b, uint64(s.Start-start))
		b = binary.AppendUvarint(b, uint64(s.End-start))
		for _, v := range []float64{s.First, s.Last, s.Min, s.Max} {
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
		}
		sum, _ := s.Sum.AppendBinary(nil) // never fails
		b = append(b, byte(len(sum)/8))
		b = append(b, sum...)
	}
	return b
}

// ParseSlots decodes AppendSlots' bytes for a chunk of the hour that holds start (the chunk's first
// value), checking what a decoder can: slots in increasing order within the hour, counts above zero,
// times within each slot, first ≤ last, an exact sum as chunk.ParseSum accepts. Damage is an error
// wrapping chunk.ErrCorrupt.
func ParseSlots(b []byte, start int64) ([]Slot, error) {
	hour := Hour(start)
	var out []Slot
	next := 0 // the lowest index the next slot may have
	for len(b) > 0 {
		i := int(b[0])
		if i < next || i >= HourMs/SlotMs {
			return nil, fmt.Errorf("%w: slot %d after slot %d", chunk.ErrCorrupt, i, next-1)
		}
		b = b[1:]
		var u [3]uint64
		for k := range u {
			x, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, fmt.Errorf("%w: slot %d ends in the middle of a number", chunk.ErrCorrupt, i)
			}
			u[k], b = x, b[n:]
		}
		cnt, first, last := u[0], u[1], u[2]
		if cnt == 0 || cnt > chunk.MaxValues || first > last || last >= SlotMs || (cnt == 1) != (first == last) {
			return nil, fmt.Errorf("%w: slot %d has %d values from %d to %d ms into it", chunk.ErrCorrupt, i, cnt, first, last)
		}
		if len(b) < 33 {
			return nil, fmt.Errorf("%w: slot %d is cut short", chunk.ErrCorrupt, i)
		}
		var v [4]float64
		for k := range v {
			v[k] = math.Float64frombits(binary.BigEndian.Uint64(b[8*k:]))
		}
		np := int(b[32])
		b = b[33:]
		if len(b) < 8*np {
			return nil, fmt.Errorf("%w: slot %d's sum is cut short", chunk.ErrCorrupt, i)
		}
		sum, err := chunk.ParseSum(b[:8*np])
		if err != nil {
			return nil, fmt.Errorf("slot %d: %w", i, err)
		}
		b = b[8*np:]
		s0 := hour + int64(i)*SlotMs
		out = append(out, Slot{Start: s0 + int64(first), End: s0 + int64(last), Count: int(cnt),
			First: v[0], Last: v[1], Min: v[2], Max: v[3], Sum: sum})
		next = i + 1
	}
	return out, nil
}
