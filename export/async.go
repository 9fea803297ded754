package export

import (
	"github.com/klauspost/compress/flate"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"sync"
)

// asyncWriter hands what is written to w on a goroutine of its own, in chunks, so that compressing a member
// (w is a zip member's deflate writer) runs on another core than reading and formatting the rows. Memory is
// bounded: at most asyncDepth chunks wait.
type asyncWriter struct {
	w     io.Writer
	ch    chan []byte
	free  chan []byte
	done  chan struct{}
	once  sync.Once
	err   error // the first error of w, set before done is closed
	errMu sync.Mutex
}

const (
	asyncChunk = 64 << 10
	asyncDepth = 4
)

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{w: w, ch: make(chan []byte, asyncDepth), free: make(chan []byte, asyncDepth+1), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for b := range a.ch {
			if a.failed() == nil {
				if _, err := a.w.Write(b); err != nil {
					a.errMu.Lock()
					a.err = err
					a.errMu.Unlock()
				}
			}
			select {
			case a.free <- b[:0]:
			default:
			}
		}
	}()
	return a
}

func (a *asyncWriter) failed() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.err
}

// Write copies p and queues it; it reports an earlier write's error.
func (a *asyncWriter) Write(p []byte) (int, error) {
	if err := a.failed(); err != nil {
		return 0, err
	}
	var b []byte
	select {
	case b = <-a.free:
	default:
		b = make([]byte, 0, max(asyncChunk, len(p)))
	}
	a.ch <- append(b, p...)
	return len(p), nil
}

// Close waits until everything queued is written and returns the first error.
func (a *asyncWriter) Close() error {
	a.once.Do(func() { close(a.ch) })
	<-a.done
	return a.failed()
}

// sideMember is a member compressed into a temporary file while another member is written (signals.ndjson
// during signals.csv's pass), with what its zip header needs: CRC-32, sizes.
type sideMember struct {
	file       *os.File
	crc        hash.Hash32
	size       int64 // uncompressed
	compressed int64
	fw         *flate.Writer
	async      *asyncWriter
	counter    *countingWriter
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newSideMember() (*sideMember, error) {
	f, err := os.CreateTemp("", "glovebox-export-*.deflate")
	if err != nil {
		return nil, err
	}
	cw := &countingWriter{w: f}
	fw, err := flate.NewWriter(cw, Compression)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	s := &sideMember{file: f, crc: crc32.NewIEEE(), fw: fw, counter: cw}
	s.async = newAsyncWriter(fw)
	return s, nil
}

// Write adds p to the member.
func (s *sideMember) Write(p []byte) (int, error) {
	s.crc.Write(p)
	s.size += int64(len(p))
	return s.async.Write(p)
}

// finish ends the compressed stream.
func (s *sideMember) finish() error {
	if err := s.async.Close(); err != nil {
		return err
	}
	if err := s.fw.Close(); err != nil {
		return err
	}
	s.compressed = s.counter.n
	return nil
}
