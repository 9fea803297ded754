package ledger

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
)

// EntryError is a replay failure at one log entry.
type EntryError struct {
	Index int64
	Err   error
}

func (e *EntryError) Error() string { return fmt.Sprintf("entry %d: %v", e.Index, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

// EntrySource returns the encoded entries [from, from+n) of a log.
type EntrySource func(ctx context.Context, from, n int64) ([][]byte, error)

// replayChunk is how many entries are decoded and signature-checked in parallel before being applied.
const replayChunk = 4096

type decoded struct {
	entry   *Entry
	signers []common.Address
	err     error
}

// DecodeAndRecover decodes entries and recovers their signers on all cores.
func DecodeAndRecover(d *Domain, raw [][]byte) ([]*Entry, [][]common.Address, []error) {
	entries := make([]*Entry, len(raw))
	signers := make([][]common.Address, len(raw))
	errs := make([]error, len(raw))
	// Workers take blocks of entries from a shared counter, so that a worker that was descheduled does
	// not leave the others waiting at the end of the chunk.
	const block = 32
	var next atomic.Int64
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(block) - block)
				if start >= len(raw) {
					return
				}
				for i := start; i < min(start+block, len(raw)); i++ {
					e, err := UnmarshalEntry(raw[i])
					if err != nil {
						errs[i] = err
						continue
					}
					entries[i] = e
					signers[i], errs[i] = d.Signers(e.Tx)
				}
			}
		}()
	}
	wg.Wait()
	return entries, signers, errs
}

// Replay applies the entries [st.Size(), to) of a log to st, checking every signature and rule. Reading,
// decoding and signature recovery of the next chunk run on all cores while the current chunk is applied in
// order. progress, if not nil, is called with the number of entries applied after each chunk. The first bad
// entry stops the replay with an *EntryError.
func Replay(ctx context.Context, d *Domain, st *State, to int64, src EntrySource, progress func(int64)) error {
	type chunk struct {
		from    int64
		entries []*Entry
		signers [][]common.Address
		errs    []error
		err     error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan chunk, 1)
	go func() {
		defer close(chunks)
		for from := st.Size(); from < to; {
			n := min(int64(replayChunk), to-from)
			c := chunk{from: from}
			raw, err := src(ctx, from, n)
			switch {
			case err != nil:
				c.err = fmt.Errorf("couldn't read entries %d..%d: %w", from, from+n, err)
			case int64(len(raw)) != n:
				c.err = fmt.Errorf("asked for %d entries from %d, got %d", n, from, len(raw))
			default:
				c.entries, c.signers, c.errs = DecodeAndRecover(d, raw)
			}
			select {
			case chunks <- c:
			case <-ctx.Done():
				return
			}
			if c.err != nil {
				return
			}
			from += n
		}
	}()
	for c := range chunks {
		if c.err != nil {
			return c.err
		}
		for i, e := range c.entries {
			idx := c.from + int64(i)
			if c.errs[i] != nil {
				return &EntryError{idx, c.errs[i]}
			}
			if _, err := st.Apply(e, c.signers[i], idx); err != nil {
				return &EntryError{idx, err}
			}
		}
		if progress != nil {
			progress(st.Size())
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return ctx.Err()
}
