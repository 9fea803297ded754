package tlog

import "slices"

// Latest returns the committed tree size and the signed checkpoint for exactly that size, read together
// so that a proof made for the size verifies against the checkpoint. A closed log returns 0 and nil.
func (l *Log) Latest() (size int64, checkpoint []byte) {
	st, err := l.view()
	if err != nil {
		return 0, nil
	}
	return st.size, slices.Clone(st.checkpoint)
}
