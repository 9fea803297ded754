package chunk

import (
	"encoding/binary"
	"fmt"
)

// Strings builds a chunk of strings (a string[] signal as its JSON text): a dictionary of its distinct
// strings and an XOR stream of (time, index). Its zero value is an empty chunk. It is not safe for
// concurrent use.
type Strings struct {
	x     XOR
	ends  Ends[string]
	index map[string]int
	words []string
}

// Ends is what a chunk of strings or locations says without being decoded: how many values it holds and
// its first and last ones, for the stores' summary rows (FIRST, LAST and the latest values).
type Ends[V any] struct {
	Count               int
	FirstTime, LastTime int64 // unix ms
	First, Last         V
}

// add records a value at t.
func (e *Ends[V]) add(t int64, v V) {
	if e.Count == 0 {
		e.FirstTime, e.First = t, v
	}
	e.LastTime, e.Last = t, v
	e.Count++
}

// Append adds a value at time t, which must be after the last one (ErrOutOfOrder); ErrFull after
// MaxValues values.
func (c *Strings) Append(t int64, v string) error {
	if err := check(c.x.n, c.ends.LastTime, t); err != nil {
		return err
	}
	k, ok := c.index[v]
	if !ok {
		if c.index == nil {
			c.index = map[string]int{}
		}
		k = len(c.words)
		c.index[v] = k
		c.words = append(c.words, v)
	}
	if err := c.x.Append(t, float64(k)); err != nil {
		return err
	}
	c.ends.add(t, v)
	return nil
}

// Len is the number of values appended.
func (c *Strings) Len() int { return c.x.n }

// Ends returns the chunk's count and first and last values.
func (c *Strings) Ends() Ends[string] { return c.ends }

// Bytes returns the encoded chunk.
func (c *Strings) Bytes() []byte {
	x := c.x.Bytes()
	n := len(x) + 2*binary.MaxVarintLen64
	for _, w := range c.words {
		n += binary.MaxVarintLen64 + len(w)
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(len(x)))
	b = append(b, x...)
	b = binary.AppendUvarint(b, uint64(len(c.words)))
	for _, w := range c.words {
		b = binary.AppendUvarint(b, uint64(len(w)))
		b = append(b, w...)
	}
	return b
}

// field cuts a uvarint length and that many bytes from the front of *b.
func field(b *[]byte, what string) ([]byte, error) {
	n, k := binary.Uvarint(*b)
	if k <= 0 || k != uvarintLen(n) {
		return nil, fmt.Errorf("%w: the length of %s is not a minimal uvarint", ErrCorrupt, what)
	}
	if rest := uint64(len(*b) - k); n > rest {
		return nil, fmt.Errorf("%w: %s of %d bytes where %d are left", ErrCorrupt, what, n, rest)
	}
	f := (*b)[k : k+int(n)]
	*b = (*b)[k+int(n):]
	return f, nil
}

// DecodeStrings appends the times and values of an encoded chunk of strings to times and values.
func DecodeStrings(b []byte, times []int64, values []string) ([]int64, []string, error) {
	x, err := field(&b, "the XOR stream")
	if err != nil {
		return times, values, fmt.Errorf("decoding strings: %w", err)
	}
	count, k := binary.Uvarint(b)
	if k <= 0 || k != uvarintLen(count) {
		return times, values, fmt.Errorf("decoding strings: %w: the dictionary's size is not a minimal uvarint", ErrCorrupt)
	}
	b = b[k:]
	if count > uint64(len(b)) { // every entry takes a byte at least
		return times, values, fmt.Errorf("decoding strings: %w: %d dictionary entries in %d bytes", ErrCorrupt, count, len(b))
	}
	words := make([]string, count)
	for i := range words {
		w, err := field(&b, "a dictionary entry")
		if err != nil {
			return times, values, fmt.Errorf("decoding strings: entry %d of %d: %w", i+1, count, err)
		}
		words[i] = string(w)
	}
	if len(b) > 0 {
		return times, values, fmt.Errorf("decoding strings: %w: %d bytes after the dictionary", ErrCorrupt, len(b))
	}
	it := NewXORIterator(x)
	if err := checkCount(it.Len()); err != nil {
		return times, values, fmt.Errorf("decoding strings: %w", err)
	}
	n, used := len(times), 0
	for it.Next() {
		t, f := it.At()
		i := len(times) - n
		if i > 0 && t <= times[len(times)-1] {
			return times, values, fmt.Errorf("decoding strings: %w: value %d at %d after one at %d", ErrCorrupt, i+1, t, times[len(times)-1])
		}
		// Entries are in order of first use: an index is one already used or the next one.
		w := int(f)
		if float64(w) != f || w < 0 || w > used || w >= len(words) {
			return times, values, fmt.Errorf("decoding strings: %w: value %d is entry %v of a dictionary of %d, %d used so far", ErrCorrupt, i+1, f, len(words), used)
		}
		if w == used {
			used++
		}
		times, values = append(times, t), append(values, words[w])
	}
	if err := it.Err(); err != nil {
		return times, values, fmt.Errorf("decoding strings: %w", err)
	}
	if used != len(words) {
		return times, values, fmt.Errorf("decoding strings: %w: %d dictionary entries, %d used", ErrCorrupt, len(words), used)
	}
	seen := make(map[string]bool, len(words))
	for _, w := range words {
		if seen[w] {
			return times, values, fmt.Errorf("decoding strings: %w: %q twice in the dictionary", ErrCorrupt, w)
		}
		seen[w] = true
	}
	return times, values, nil
}
