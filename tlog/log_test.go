package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func TestAppendReopenAndProve(t *testing.T) {
	ones := make([]int, 40)
	for i := range ones {
		ones[i] = 1
	}
	tests := []struct {
		name    string
		batches []int
	}{
		{"a single entry is a tree of its own", []int{1}},
		{"a batch of 255 stops one short of a full tile", []int{255}},
		{"a batch of 256 fills exactly one tile", []int{256}},
		{"a batch of 257 spills one entry into a second tile", []int{257}},
		{"a batch of 1000 spans several tiles", []int{1000}},
		{"mixed batches cross tile boundaries in every way", []int{1, 255, 256, 257, 1000, 3, 1}},
		{"forty single-entry batches each get a checkpoint", ones},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, v := testKeys(t, testOrigin)
			l := openLog(t, dir, s)

			var all [][]byte
			sizes := []int64{}
			roots := map[int64]tlog.Hash{}
			for _, n := range tt.batches {
				batch := testEntries("e", int64(len(all)), int64(n))
				first, cp, err := l.Append(context.Background(), batch)
				if err != nil {
					t.Fatal(err)
				}
				if first != int64(len(all)) {
					t.Fatalf("Append returned first = %d, want %d", first, len(all))
				}
				all = append(all, batch...)
				size, root, err := OpenCheckpoint(cp, testOrigin, v)
				if err != nil {
					t.Fatal(err)
				}
				if want := refRoot(t, all); size != int64(len(all)) || root != want {
					t.Fatalf("checkpoint says size %d root %v, want %d %v", size, root, len(all), want)
				}
				if !bytes.Equal(cp, l.Checkpoint()) {
					t.Fatalf("Append returned a checkpoint other than Checkpoint()")
				}
				sizes = append(sizes, size)
				roots[size] = root
			}
			checkpoint := l.Checkpoint()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			l = openLog(t, dir, s)
			checkLogContents(t, l, v, all)
			if !bytes.Equal(l.Checkpoint(), checkpoint) {
				t.Fatalf("reopened log serves checkpoint\n%s\nwant\n%s", l.Checkpoint(), checkpoint)
			}
			for _, size := range sizes {
				if got, err := l.RootHash(size); err != nil || got != roots[size] {
					t.Fatalf("RootHash(%d) = %v, %v; want %v", size, got, err, roots[size])
				}
			}

			// Every entry is provably in the final tree, and in every
			// checkpointed tree containing it (sampled for long logs).
			final := l.Size()
			for i, e := range all {
				checkInclusion(t, l, int64(i), final, roots[final], e)
			}
			for _, size := range sizes {
				for _, i := range []int64{0, size / 3, size / 2, size - 1} {
					checkInclusion(t, l, i, size, roots[size], all[i])
				}
			}
			// Every checkpointed tree is a prefix of every later one.
			for _, old := range sizes {
				for _, size := range sizes {
					if old > size {
						continue
					}
					p, err := l.ConsistencyProof(old, size)
					if err != nil {
						t.Fatal(err)
					}
					if err := tlog.CheckTree(p, size, roots[size], old, roots[old]); err != nil {
						t.Fatalf("consistency proof %d → %d: %v", old, size, err)
					}
					for j := range p {
						for bit := range 8 * tlog.HashSize {
							q := append(tlog.TreeProof(nil), p...)
							q[j][bit/8] ^= 1 << (bit % 8)
							if tlog.CheckTree(q, size, roots[size], old, roots[old]) == nil {
								t.Fatalf("consistency proof %d → %d verifies with bit %d of hash %d flipped", old, size, bit, j)
							}
						}
					}
				}
			}
			// Flipping any bit of an inclusion proof breaks it.
			for _, i := range []int64{0, final / 2, final - 1} {
				p, err := l.InclusionProof(i, final)
				if err != nil {
					t.Fatal(err)
				}
				for j := range p {
					for bit := range 8 * tlog.HashSize {
						q := append(tlog.RecordProof(nil), p...)
						q[j][bit/8] ^= 1 << (bit % 8)
						if tlog.CheckRecord(q, final, roots[final], i, tlog.RecordHash(all[i])) == nil {
							t.Fatalf("inclusion proof of %d verifies with bit %d of hash %d flipped", i, bit, j)
						}
					}
				}
			}
		})
	}
}

// checkInclusion checks that the inclusion proof of entry i in the tree of
// the given size verifies, and fails for the wrong entry or position.
func checkInclusion(t *testing.T, l *Log, i, size int64, root tlog.Hash, entry []byte) {
	t.Helper()
	p, err := l.InclusionProof(i, size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckRecord(p, size, root, i, tlog.RecordHash(entry)); err != nil {
		t.Fatalf("inclusion proof of %d in %d: %v", i, size, err)
	}
	if tlog.CheckRecord(p, size, root, i, tlog.RecordHash(append(entry, 'x'))) == nil {
		t.Fatalf("inclusion proof of %d in %d also proves a different entry", i, size)
	}
	if size > 1 && tlog.CheckRecord(p, size, root, (i+1)%size, tlog.RecordHash(entry)) == nil {
		t.Fatalf("inclusion proof of %d in %d also proves position %d", i, size, (i+1)%size)
	}
}

func TestProofArgumentsOutsideTheTreeAreRejected(t *testing.T) {
	s, _ := testKeys(t, testOrigin)
	l := openLog(t, t.TempDir(), s)
	appendAll(t, l, testEntries("e", 0, 10), 10)
	tests := []struct {
		name string
		call func() error
	}{
		{"an inclusion proof for a negative index", func() error { _, err := l.InclusionProof(-1, 10); return err }},
		{"an inclusion proof for an index equal to the size", func() error { _, err := l.InclusionProof(10, 10); return err }},
		{"an inclusion proof in a tree larger than the log", func() error { _, err := l.InclusionProof(0, 11); return err }},
		{"a consistency proof from the empty tree", func() error { _, err := l.ConsistencyProof(0, 10); return err }},
		{"a consistency proof from a larger tree to a smaller one", func() error { _, err := l.ConsistencyProof(5, 4); return err }},
		{"a consistency proof to a tree larger than the log", func() error { _, err := l.ConsistencyProof(5, 11); return err }},
		{"a root hash for a negative size", func() error { _, err := l.RootHash(-1); return err }},
		{"a root hash for a size larger than the log", func() error { _, err := l.RootHash(11); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil {
				t.Fatal("got no error")
			}
		})
	}
	for _, i := range []int64{-1, 10, 1 << 62} {
		if _, err := l.Entry(context.Background(), i); !errors.Is(err, ErrNotFound) {
			t.Errorf("Entry(%d) error = %v, want ErrNotFound", i, err)
		}
	}
}

func TestAppendRejectsBadEntriesAndWritesNothing(t *testing.T) {
	good := []byte("good")
	tests := []struct {
		name  string
		batch [][]byte
	}{
		{"an empty entry is rejected", [][]byte{{}}},
		{"a nil entry is rejected", [][]byte{nil}},
		{"an entry one byte over the uint16 limit is rejected", [][]byte{make([]byte, 1<<16)}},
		{"a bad entry after good ones rejects the whole batch", [][]byte{good, good, make([]byte, 1<<16)}},
		{"an empty entry after good ones rejects the whole batch", [][]byte{good, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, v := testKeys(t, testOrigin)
			l := openLog(t, dir, s)
			want := testEntries("e", 0, 3)
			appendAll(t, l, want, 3)
			cp := l.Checkpoint()
			es, hs := fileSize(t, dir, entriesName), fileSize(t, dir, hashesName)

			if _, _, err := l.Append(context.Background(), tt.batch); err == nil {
				t.Fatal("Append accepted the batch")
			}
			if !bytes.Equal(l.Checkpoint(), cp) || fileSize(t, dir, entriesName) != es || fileSize(t, dir, hashesName) != hs {
				t.Fatal("a rejected batch changed the log")
			}
			// A rejected batch doesn't poison the log.
			more := testEntries("e", 3, 2)
			if first, _, err := l.Append(context.Background(), more); err != nil || first != 3 {
				t.Fatalf("Append after a rejected batch = %d, %v", first, err)
			}
			checkLogContents(t, l, v, append(want, more...))
		})
	}
}

func TestAppendAcceptsTheLargestEntry(t *testing.T) {
	dir := t.TempDir()
	s, v := testKeys(t, testOrigin)
	l := openLog(t, dir, s)
	big := bytes.Repeat([]byte{0xff}, 1<<16-1)
	want := [][]byte{{0}, big, {1}}
	appendAll(t, l, want, 3)
	l.Close()
	checkLogContents(t, openLog(t, dir, s), v, want)
}

func TestAppendOfNothingReturnsTheCurrentCheckpoint(t *testing.T) {
	s, _ := testKeys(t, testOrigin)
	l := openLog(t, t.TempDir(), s)
	appendAll(t, l, testEntries("e", 0, 5), 5)
	first, cp, err := l.Append(context.Background(), nil)
	if err != nil || first != 5 || !bytes.Equal(cp, l.Checkpoint()) {
		t.Fatalf("Append(nil) = %d, %q, %v", first, cp, err)
	}
}

func TestANewLogHasASignedEmptyCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s, v := testKeys(t, testOrigin)
	l := openLog(t, dir, s)
	size, root, err := OpenCheckpoint(l.Checkpoint(), testOrigin, v)
	if err != nil || size != 0 || root != refRoot(t, nil) {
		t.Fatalf("OpenCheckpoint = %d, %v, %v", size, root, err)
	}
	if got := fileSize(t, dir, checkpointsName); got != checkpointsSize {
		t.Fatalf("checkpoints holds %d bytes, want %d", got, checkpointsSize)
	}
	disk, err := os.ReadFile(filepath.Join(dir, checkpointsName))
	if err != nil {
		t.Fatal(err)
	}
	seq, note, ok := parseSlot(disk[:slotSize])
	if !ok || seq != 1 || !bytes.Equal(note, l.Checkpoint()) {
		t.Fatalf("slot 0 = %d, %q, %v; want 1, %q, true", seq, note, ok, l.Checkpoint())
	}
	if !bytes.Equal(disk[slotSize:], make([]byte, slotSize)) {
		t.Fatal("slot 1 of a new log is not zeros")
	}
}

func TestAFailedCheckpointWritePoisonsTheLogUntilReopened(t *testing.T) {
	dir := t.TempDir()
	s, v := testKeys(t, testOrigin)
	l, err := Open(dir, testOrigin, s)
	if err != nil {
		t.Fatal(err)
	}
	want := testEntries("e", 0, 300)
	appendAll(t, l, want, 300)

	// Make the checkpoint write fail after the data is durable, as an I/O error would: the log can't
	// tell what the slot now holds. (A failed data write is retried instead: see diskfull_test.go.)
	l.ckpts.Close()
	_, _, err1 := l.Append(context.Background(), testEntries("lost", 300, 10))
	if err1 == nil {
		t.Fatal("Append succeeded with the checkpoints file closed")
	}
	_, _, err2 := l.Append(context.Background(), testEntries("e", 300, 1))
	if err2 != err1 {
		t.Fatalf("second Append error = %v, want the first one (%v)", err2, err1)
	}
	if l.Size() != 300 {
		t.Fatalf("Size() = %d after a failed append, want 300", l.Size())
	}
	checkLogContents(t, l, v, want)
	l.Close()

	l = openLog(t, dir, s)
	checkLogContents(t, l, v, want)
	more := testEntries("e", 300, 10)
	appendAll(t, l, more, 10)
	checkLogContents(t, l, v, append(want, more...))
}

func TestReadersSeeOnlyCommittedStateDuringAppends(t *testing.T) {
	s, v := testKeys(t, testOrigin)
	l := openLog(t, t.TempDir(), s)
	all := testEntries("e", 0, 3000)

	var wg sync.WaitGroup
	done := make(chan struct{})
	errc := make(chan error, 8)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for {
				select {
				case <-done:
					return
				default:
				}
				size, root, err := OpenCheckpoint(l.Checkpoint(), testOrigin, v)
				if err != nil {
					errc <- err
					return
				}
				if size == 0 {
					continue
				}
				i := rng.Int64N(size)
				e, err := l.Entry(context.Background(), i)
				if err != nil || !bytes.Equal(e, all[i]) {
					errc <- errors.Join(errors.New("wrong entry"), err)
					return
				}
				p, err := l.InclusionProof(i, size)
				if err == nil {
					err = tlog.CheckRecord(p, size, root, i, tlog.RecordHash(e))
				}
				if err != nil {
					errc <- err
					return
				}
				if got, err := l.RootHash(size); err != nil || got != root {
					errc <- errors.Join(errors.New("wrong root"), err)
					return
				}
				if _, err := l.ReadTile(TilePath(tlog.Tile{L: -1, N: 0, W: int(min(size, 256))})); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for off := 0; off < len(all); off += 100 {
		if _, _, err := l.Append(context.Background(), all[off:off+100]); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func TestAClosedLogRefusesWork(t *testing.T) {
	s, _ := testKeys(t, testOrigin)
	l, err := Open(t.TempDir(), testOrigin, s)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, l, testEntries("e", 0, 10), 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"Append", func() error { _, _, err := l.Append(context.Background(), [][]byte{{1}}); return err }},
		{"Entry", func() error { _, err := l.Entry(context.Background(), 0); return err }},
		{"ReadTile", func() error { _, err := l.ReadTile("tile/entries/000.p/1"); return err }},
		{"InclusionProof", func() error { _, err := l.InclusionProof(0, 1); return err }},
		{"ConsistencyProof", func() error { _, err := l.ConsistencyProof(1, 2); return err }},
		{"RootHash", func() error { _, err := l.RootHash(1); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name+" after Close fails with ErrClosed", func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, os.ErrClosed) {
				t.Fatalf("got %v, want os.ErrClosed", err)
			}
		})
	}
}

func TestASecondOpenOfTheSameDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	s, _ := testKeys(t, testOrigin)
	l, err := Open(dir, testOrigin, s)
	if err != nil {
		t.Fatal(err)
	}
	if l2, err := Open(dir, testOrigin, s); err == nil {
		l2.Close()
		t.Fatal("second Open of a directory in use succeeded")
	}
	l.Close()
	l = openLog(t, dir, s)
	l.Close()
}

func TestOpenRejectsBadArguments(t *testing.T) {
	s, _ := testKeys(t, testOrigin)
	tests := []struct {
		name   string
		origin string
	}{
		{"an empty origin", ""},
		{"an origin with a newline that would forge a size line", "example.com/log\n5"},
		{"an origin with a control character", "example.com/\x00log"},
		{"an origin that is not UTF-8", "example.com/\xfflog"},
		{"an origin too long for a checkpoint slot", "example.com/" + strings.Repeat("a", maxNoteSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is rejected", func(t *testing.T) {
			if l, err := Open(t.TempDir(), tt.origin, s); err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
	t.Run("a nil signer is rejected", func(t *testing.T) {
		if l, err := Open(t.TempDir(), testOrigin, nil); err == nil {
			l.Close()
			t.Fatal("Open succeeded")
		}
	})
	t.Run("errors name the directory", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Open(dir, "", s)
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Fatalf("error %v doesn't mention %s", err, dir)
		}
	})
}

func TestEntriesReadsARangeAsEntryDoes(t *testing.T) {
	s, _ := testKeys(t, testOrigin)
	l := openLog(t, t.TempDir(), s)
	var want [][]byte
	for i := 0; i < 300; i++ {
		want = append(want, []byte(fmt.Sprintf("entry %d %s", i, strings.Repeat("x", i%17))))
	}
	if _, _, err := l.Append(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{0, 300}, {0, 1}, {299, 1}, {17, 200}, {5, 0}} {
		got, err := l.Entries(r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != int(r[1]) {
			t.Fatalf("Entries(%d, %d) gave %d entries", r[0], r[1], len(got))
		}
		for i, e := range got {
			if !bytes.Equal(e, want[r[0]+int64(i)]) {
				t.Fatalf("Entries(%d, %d)[%d] = %q", r[0], r[1], i, e)
			}
		}
	}
	for _, r := range [][2]int64{{-1, 2}, {299, 2}, {0, 301}, {0, -1}} {
		if _, err := l.Entries(r[0], r[1]); !errors.Is(err, ErrNotFound) {
			t.Errorf("Entries(%d, %d): %v, want ErrNotFound", r[0], r[1], err)
		}
	}
}
