package tlog

import (
	"context"
	"crypto/sha256"
	"runtime"
	"sync"
	"testing"
)

// benchLog returns a log in a temporary directory holding n entries of
// about 300 bytes.
func benchLog(b *testing.B, n int) *Log {
	b.Helper()
	s, _ := testKeys(b, testOrigin)
	l := openLog(b, b.TempDir(), s)
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = make([]byte, 300)
	}
	for done := 0; done < n; done += len(batch) {
		if _, _, err := l.Append(context.Background(), batch[:min(len(batch), n-done)]); err != nil {
			b.Fatal(err)
		}
	}
	return l
}

// BenchmarkAppend measures large batches: 1,000 entries of 300 bytes.
func BenchmarkAppend(b *testing.B) { benchAppend(b, 1000) }

// BenchmarkAppendSmall measures small batches of 16 entries of 300 bytes,
// as a sequencer with a single client produces: the cost is mostly the
// latency of the durability rounds.
func BenchmarkAppendSmall(b *testing.B) { benchAppend(b, 16) }

// benchAppend appends batches of n entries of 300 bytes.
func benchAppend(b *testing.B, n int) {
	l := benchLog(b, 0)
	batch := make([][]byte, n)
	for i := range batch {
		batch[i] = make([]byte, 300)
		batch[i][0] = byte(i)
	}
	b.SetBytes(int64(len(batch) * 302))
	b.ReportAllocs()
	batches := 0
	for b.Loop() {
		if _, _, err := l.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		batches++
	}
	b.ReportMetric(float64(batches*len(batch))/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkInclusionProof(b *testing.B) {
	const size = 100_000
	l := benchLog(b, size)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		if _, err := l.InclusionProof(i, size); err != nil {
			b.Fatal(err)
		}
		i = (i + 7919) % size
	}
}

func BenchmarkReadTile(b *testing.B) {
	l := benchLog(b, 100_000)
	b.SetBytes(256 * 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.ReadTile("tile/0/300"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadEntryBundle(b *testing.B) {
	l := benchLog(b, 100_000)
	b.SetBytes(256 * 302)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.ReadTile("tile/entries/300"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendSmallBusy is BenchmarkAppendSmall while four goroutines a
// core keep the processors busy, as the handlers of a loaded node do: an
// append then also waits for a processor after each of its syncs.
func BenchmarkAppendSmallBusy(b *testing.B) {
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for ctx.Err() == nil {
				for range 8 { // about 10 µs of work between yields
					sha256.Sum256(buf)
				}
				runtime.Gosched()
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	benchAppend(b, 16)
}
