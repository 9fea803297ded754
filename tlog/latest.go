package tlog

import (
	"fmt"
	"slices"
)

// Latest returns the committed tree size and the signed checkpoint for exactly that size, read together
// so that a proof made for the size verifies against the checkpoint. A closed log returns 0 and nil.
func (l *Log) Latest() (size int64, checkpoint []byte) {
	st, err := l.view()
	if err != nil {
		return 0, nil
	}
	return st.size, slices.Clone(st.checkpoint)
}

// Entries returns the committed entries [from, from+n) with one read of the entries file.
func (l *Log) Entries(from, n int64) ([][]byte, error) {
	st, err := l.view()
	if err != nil {
		return nil, err
	}
	if from < 0 || n < 0 || from+n > st.size {
		return nil, fmt.Errorf("tlog: entries %d..%d: %w (log size %d)", from, from+n, ErrNotFound, st.size)
	}
	buf := make([]byte, st.offsets[from+n]-st.offsets[from])
	if _, err := l.entries.ReadAt(buf, st.offsets[from]); err != nil {
		return nil, fmt.Errorf("tlog: reading entries %d..%d: %w", from, from+n, err)
	}
	out := make([][]byte, n)
	base := st.offsets[from]
	for i := range out {
		start, end := st.offsets[from+int64(i)]+2-base, st.offsets[from+int64(i)+1]-base
		out[i] = buf[start:end:end]
	}
	return out, nil
}
