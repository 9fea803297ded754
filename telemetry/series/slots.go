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

// MinSlotValues is the fewest values of a chunk that gets slot summaries: a smaller chunk decodes in a
// few microseconds, and its slots would add more bytes than its values take. 256 gives them to an hour
// of a signal sent every 10 seconds (a parked car's), which makes a month in five-minute buckets
// several times faster for 17% more bytes (docs/columnar.md).
const MinSlotValues = 256

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

// AppendSlots appends the encoding of slots (Slots' result for the values of one hour) to b. Each slot
// is a header byte (its index in the hour, 0–11, in the low four bits; 0x10 when every value of the slot
// is the same), its count, the offset of its first value from the slot's start and that of its last
// value from the slot's last millisecond (uvarints); then the value (big-endian float64 bits) of a slot of
// one value repeated, whose exact sum is the count times the value; else the first, last, minimum and
// maximum values, the number of the exact sum's partials (one byte) and the partials
// (chunk.Sum.AppendBinary).
func AppendSlots(b []byte, slots []Slot) []byte {
	for _, s := range slots {
		start := floorSlot(s.Start)
		h := byte((start - Hour(s.Start)) / SlotMs)
		same := constant(s)
		if same {
			h |= slotConstant
		}
		b = append(b, h)
		b = binary.AppendUvarint(b, uint64(s.Count))
		b = binary.AppendUvarint(b, uint64(s.Start-start))
		b = binary.AppendUvarint(b, uint64(start+SlotMs-1-s.End))
		if same {
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(s.First))
			continue
		}
		for _, v := range []float64{s.First, s.Last, s.Min, s.Max} {
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
		}
		sum, _ := s.Sum.AppendBinary(nil) // never fails
		b = append(b, byte(len(sum)/8))
		b = append(b, sum...)
	}
	return b
}

// slotConstant marks a slot whose values are all the same.
const slotConstant = 0x10

// constant reports whether every value of s is the same (to the bit).
func constant(s Slot) bool {
	v := math.Float64bits(s.First)
	return math.Float64bits(s.Last) == v && math.Float64bits(s.Min) == v && math.Float64bits(s.Max) == v
}

func anyNaN(vs []float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) {
			return true
		}
	}
	return false
}

// times returns the exact sum of n values v.
func times(n int, v float64) chunk.Sum {
	var s chunk.Sum
	if math.IsInf(v, 0) || math.IsNaN(v) {
		s.Add(v)
		return s
	}
	p := float64(n) * v
	s.Add(p)
	s.Add(math.FMA(float64(n), v, -p)) // n·v = p + this, exactly
	return s
}

// ParseSlots decodes AppendSlots' bytes for a chunk of the hour that holds start (the chunk's first
// value), checking what a decoder can: slots in increasing order within the hour, counts above zero,
// times within each slot, first ≤ last, the minimum and maximum around the first and last value, the
// encoding AppendSlots would have chosen, an exact sum as chunk.ParseSum accepts. Damage is an error
// wrapping chunk.ErrCorrupt.
func ParseSlots(b []byte, start int64) ([]Slot, error) {
	hour := Hour(start)
	var out []Slot
	next := 0 // the lowest index the next slot may have
	for len(b) > 0 {
		h := b[0]
		i := int(h & 0x0f)
		if h&^(0x0f|slotConstant) != 0 || i < next || i >= HourMs/SlotMs {
			return nil, fmt.Errorf("%w: a slot header %#x after slot %d", chunk.ErrCorrupt, h, next-1)
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
		cnt, first, fromEnd := u[0], u[1], u[2]
		if cnt == 0 || cnt > chunk.MaxValues || first >= SlotMs || fromEnd >= SlotMs || first+fromEnd > SlotMs-1 ||
			(cnt == 1) != (first+fromEnd == SlotMs-1) {
			return nil, fmt.Errorf("%w: slot %d has %d values from %d to %d ms before its end", chunk.ErrCorrupt, i, cnt, first, fromEnd)
		}
		s0 := hour + int64(i)*SlotMs
		s := Slot{Start: s0 + int64(first), End: s0 + SlotMs - 1 - int64(fromEnd), Count: int(cnt)}
		if h&slotConstant != 0 {
			if len(b) < 8 {
				return nil, fmt.Errorf("%w: slot %d is cut short", chunk.ErrCorrupt, i)
			}
			v := math.Float64frombits(binary.BigEndian.Uint64(b))
			s.First, s.Last, s.Min, s.Max, s.Sum = v, v, v, v, times(s.Count, v)
			b = b[8:]
		} else {
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
			s.First, s.Last, s.Min, s.Max, s.Sum = v[0], v[1], v[2], v[3], sum
			if constant(s) || !(s.Min <= s.First && s.First <= s.Max && s.Min <= s.Last && s.Last <= s.Max) && !anyNaN(v[:]) {
				return nil, fmt.Errorf("%w: slot %d's first, last, minimum and maximum are %v", chunk.ErrCorrupt, i, v)
			}
		}
		out = append(out, s)
		next = i + 1
	}
	return out, nil
}
