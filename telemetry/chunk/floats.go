package chunk

import (
	"fmt"
)

// MaxValues is the most values a chunk of Floats, Strings or Locations holds (docs/columnar.md: an hour
// of a signal sent faster than 4.5 Hz splits into several chunks).
const MaxValues = 16384

// Summary is what a chunk of numbers says without being decoded: the hourly roll-up of its values.
// Min and Max are as Go's min and max make them (a NaN wins, -0 is below +0).
type Summary struct {
	Count               int
	FirstTime, LastTime int64 // unix ms, as the stores keep time
	First, Last         float64
	Min, Max            float64
	Sum                 Sum
}

// Floats builds a chunk of numbers (booleans as 0 and 1) and its Summary. Its zero value is an empty
// chunk. It is not safe for concurrent use.
type Floats struct {
	x   XOR
	sum Summary
}

// Append adds a value at time t, which must be after the last one (ErrOutOfOrder); ErrFull after
// MaxValues values.
func (c *Floats) Append(t int64, v float64) error {
	if err := check(c.x.n, c.sum.LastTime, t); err != nil {
		return err
	}
	if err := c.x.Append(t, v); err != nil {
		return err
	}
	s := &c.sum
	if s.Count == 0 {
		s.FirstTime, s.First, s.Min, s.Max = t, v, v, v
	} else {
		s.Min, s.Max = min(s.Min, v), max(s.Max, v)
	}
	s.LastTime, s.Last = t, v
	s.Sum.Add(v)
	s.Count++
	return nil
}

// check refuses an n+1st value at t after a last one at last.
func check(n int, last, t int64) error {
	if n >= MaxValues {
		return fmt.Errorf("appending value %d: %w", n+1, ErrFull)
	}
	if n > 0 && t <= last {
		return fmt.Errorf("appending a value at %d after one at %d: %w", t, last, ErrOutOfOrder)
	}
	return nil
}

// Len is the number of values appended.
func (c *Floats) Len() int { return c.x.n }

// Summary returns the chunk's summary (its Sum a copy of the builder's).
func (c *Floats) Summary() Summary {
	s := c.sum
	s.Sum = s.Sum.Clone()
	return s
}

// Bytes returns the encoded chunk, the XOR stream itself. It stays valid until the next Append.
func (c *Floats) Bytes() []byte { return c.x.Bytes() }

// DecodeFloats appends the times and values of an encoded chunk of numbers to times and values.
func DecodeFloats(b []byte, times []int64, values []float64) ([]int64, []float64, error) {
	it := NewXORIterator(b)
	if err := checkCount(it.Len()); err != nil {
		return times, values, fmt.Errorf("decoding numbers: %w", err)
	}
	n := len(times)
	for it.Next() {
		t, v := it.At()
		if len(times) > n && t <= times[len(times)-1] {
			return times, values, fmt.Errorf("decoding numbers: %w: value %d at %d after one at %d", ErrCorrupt, len(times)-n+1, t, times[len(times)-1])
		}
		times, values = append(times, t), append(values, v)
	}
	if err := it.Err(); err != nil {
		return times, values, fmt.Errorf("decoding numbers: %w", err)
	}
	return times, values, nil
}

func checkCount(n int) error {
	if n == 0 || n > MaxValues {
		return fmt.Errorf("%w: %d values, not 1 to %d", ErrCorrupt, n, MaxValues)
	}
	return nil
}
