package tlog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// crashedCopy appends 300 entries in batches of 100 to a new log in dir, then
// a last batch of 77, and returns a copy of the files as a crash right after
// that append would leave them (the log is still open: its newest slot is
// pending), with the entries of each part.
func crashedCopy(t *testing.T, dir string, s note.Signer) (crashed string, committed, last [][]byte) {
	t.Helper()
	l := openLog(t, dir, s)
	committed = testEntries("e", 0, 300)
	appendAll(t, l, committed, 100)
	last = testEntries("e", 300, 77)
	if _, _, err := l.Append(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	crashed = copyLogDir(t, dir)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return crashed, committed, last
}

// entryEnd returns the offset in the entries file just past entry n-1.
func entryEnd(entries [][]byte, n int) int {
	end := 0
	for _, e := range entries[:n] {
		end += 2 + len(e)
	}
	return end
}

func TestOpenFallsBackOverAnAppendWhoseRoundDidNotFinish(t *testing.T) {
	all := append(testEntries("e", 0, 300), testEntries("e", 300, 77)...)
	committedEnd, allEnd := entryEnd(all, 300), entryEnd(all, 377)
	committedHashes := int(tlog.StoredHashCount(300)) * tlog.HashSize
	cut := func(name string, size int) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			editFile(t, dir, name, func(b []byte) []byte { return b[:size] })
		}
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"none of the batch's data reached the disk", func(t *testing.T, dir string) {
			cut(entriesName, committedEnd)(t, dir)
			cut(hashesName, committedHashes)(t, dir)
		}},
		{"the batch's entries did not reach the disk", cut(entriesName, committedEnd)},
		{"half of the batch's entries reached the disk", cut(entriesName, (committedEnd+allEnd)/2)},
		{"the batch's last byte did not reach the disk", cut(entriesName, allEnd-1)},
		{"the batch's hashes did not reach the disk", cut(hashesName, committedHashes)},
		{"one hash of the batch did not reach the disk", cut(hashesName, committedHashes+32*10)},
		{"a page of the batch's entries reads as zeros", func(t *testing.T, dir string) {
			editFile(t, dir, entriesName, func(b []byte) []byte { clear(b[committedEnd+100 : committedEnd+4196]); return b })
		}},
		{"a page of the batch's hashes reads as zeros", func(t *testing.T, dir string) {
			editFile(t, dir, hashesName, func(b []byte) []byte { clear(b[committedHashes:min(len(b), committedHashes+4096)]); return b })
		}},
	}
	for _, tt := range tests {
		t.Run("the log is back at the checkpoint before it when "+tt.name, func(t *testing.T) {
			s, v := testKeys(t, testOrigin)
			dir, committed, _ := crashedCopy(t, t.TempDir(), s)
			cur, newest := currentSlot(t, dir)
			if !newest.pending || newest.prevSize != 300 {
				t.Fatalf("the newest slot after a crash has pending %v, previous size %d; want a pending mark of size 300", newest.pending, newest.prevSize)
			}
			tt.damage(t, dir)

			l := openLog(t, dir, s)
			checkLogContents(t, l, v, committed)
			if got, want := fileSize(t, dir, entriesName), int64(committedEnd); got != want {
				t.Fatalf("entries has %d bytes after recovery, want %d", got, want)
			}
			if slots := readCheckpointSlots(t, dir); slots[cur].ok {
				t.Fatalf("the unfinished append's slot %d is still valid after recovery", cur)
			}
			more := testEntries("e", 300, 40)
			first, cp, err := l.Append(context.Background(), more)
			if err != nil || first != 300 {
				t.Fatalf("Append after recovery = %d, %v; want 300", first, err)
			}
			if c, st := currentSlot(t, dir); c != cur || st.seq != newest.seq || !bytes.Equal(st.note, cp) {
				t.Fatalf("the append after recovery wrote checkpoint %d to slot %d, want %d to slot %d", st.seq, c, newest.seq, cur)
			}
			want := append(committed, more...)
			checkLogContents(t, l, v, want)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			checkLogContents(t, openLog(t, dir, s), v, want)
		})
	}
}

func TestOpenKeepsAnAppendWhoseRoundFinished(t *testing.T) {
	s, v := testKeys(t, testOrigin)
	dir, committed, last := crashedCopy(t, t.TempDir(), s)
	cur, newest := currentSlot(t, dir)
	l := openLog(t, dir, s)
	want := append(committed, last...)
	checkLogContents(t, l, v, want)
	if !bytes.Equal(l.Checkpoint(), newest.note) {
		t.Fatal("the log did not open at its newest checkpoint")
	}
	// Open made the round durable and cleared the mark: damage now is
	// corruption, not an unfinished append.
	if c, st := currentSlot(t, dir); c != cur || st.pending || st.seq != newest.seq {
		t.Fatalf("after Open slot %d holds checkpoint %d, pending %v; want %d in slot %d, settled", c, st.seq, st.pending, newest.seq, cur)
	}
	l.Close()
	editFile(t, dir, entriesName, func(b []byte) []byte { return b[:len(b)-1] })
	if l, err := Open(dir, testOrigin, s); err == nil {
		l.Close()
		t.Fatal("Open succeeded on a settled log whose last entry was cut")
	}
}

func TestCloseClearsThePendingMark(t *testing.T) {
	dir := t.TempDir()
	s, _ := testKeys(t, testOrigin)
	l := openLog(t, dir, s)
	appendAll(t, l, testEntries("e", 0, 30), 10)
	if _, st := currentSlot(t, dir); !st.pending || st.prevSize != 20 {
		t.Fatalf("the newest slot of an open log has pending %v, previous size %d; want pending, 20", st.pending, st.prevSize)
	}
	cur, before := currentSlot(t, dir)
	other := readCheckpointSlots(t, dir)[1-cur]
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	after := readCheckpointSlots(t, dir)
	if after[cur].pending || after[cur].seq != before.seq || !bytes.Equal(after[cur].note, before.note) {
		t.Fatalf("the newest slot after Close: pending %v, checkpoint %d; want checkpoint %d, settled", after[cur].pending, after[cur].seq, before.seq)
	}
	if o := after[1-cur]; o.ok != other.ok || o.seq != other.seq || !bytes.Equal(o.note, other.note) || o.pending != other.pending || o.prevSize != other.prevSize {
		t.Fatalf("Close changed the older slot: %+v, was %+v", after[1-cur], other)
	}
}

func TestOpenRefusesDamageBeyondTheUnfinishedAppend(t *testing.T) {
	all := testEntries("e", 0, 377)
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		wantErr string
	}{
		{"an entry before it was cut", func(t *testing.T, dir string) {
			editFile(t, dir, entriesName, func(b []byte) []byte { return b[:entryEnd(all, 300)-1] })
		}, "and the checkpoint before it"},
		{"an entry before it has a flipped bit", func(t *testing.T, dir string) {
			editFile(t, dir, entriesName, func(b []byte) []byte { b[entryEnd(all, 299)+3] ^= 1; return b })
		}, "and the checkpoint before it"},
		{"the slot before it holds an older checkpoint", func(t *testing.T, dir string) {
			editFile(t, dir, entriesName, func(b []byte) []byte { return b[:entryEnd(all, 300)] })
			cur, st := currentSlot(t, dir)
			l := readCheckpointSlots(t, dir)[1-cur]
			writeSlot(t, dir, 1-cur, st.seq-2, l.note)
		}, "ends after 300 of 377"},
		{"the slot before it holds another size", func(t *testing.T, dir string) {
			editFile(t, dir, entriesName, func(b []byte) []byte { return b[:entryEnd(all, 300)] })
			cur, st := currentSlot(t, dir)
			slot := make([]byte, slotSize)
			encodeSlot(slot, st.seq, st.note)
			markPending(slot, 299)
			writeSlotBytes(t, dir, cur, slot)
		}, "ends after 300 of 377"},
	}
	for _, tt := range tests {
		t.Run("Open fails when "+tt.name, func(t *testing.T) {
			s, _ := testKeys(t, testOrigin)
			dir, _, _ := crashedCopy(t, t.TempDir(), s)
			tt.damage(t, dir)
			before := snapshotDir(t, dir)
			openRefused(t, dir, testOrigin, s, tt.wantErr, before)
		})
	}
}

func TestAPendingMarkTornAtEveryByteReadsAsIntactOrNone(t *testing.T) {
	note := []byte("glovebox.test/log\n12\nAAAA\n\n— glovebox.test/log sig\n")
	plain := make([]byte, slotSize)
	encodeSlot(plain, 9, note)
	marked := bytes.Clone(plain)
	markPending(marked, 11)
	end := slotHeaderSize + len(note)
	for k := end; k <= end+pendingSize; k++ {
		for _, tt := range []struct {
			name     string
			from, to []byte
			complete bool
		}{
			{"writing", plain, marked, k == end+pendingSize},
			{"clearing", marked, plain, k == end},
		} {
			torn := append(bytes.Clone(tt.to[:k]), tt.from[k:]...)
			seq, n, ok := parseSlot(torn)
			if !ok || seq != 9 || !bytes.Equal(n, note) {
				t.Fatalf("%s the mark torn after %d bytes made the slot invalid", tt.name, k-end)
			}
			prev, pending := parsePending(torn)
			if pending != tt.complete || (pending && prev != 11) {
				t.Fatalf("%s the mark torn after %d bytes reads as pending %v, %d", tt.name, k-end, pending, prev)
			}
		}
	}
}

func TestAnOriginWithNoRoomForAPendingMarkAppendsInTwoRounds(t *testing.T) {
	// The longest origin whose checkpoints still fit a slot, but leave no
	// room for the mark.
	origin := "example.com/"
	for {
		s, _ := testKeys(t, origin+"aa")
		cp, err := signCheckpoint(origin+"aa", 1<<62, tlog.Hash{}, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(cp) > maxNoteSize-pendingSize/2 {
			break
		}
		origin += "aa"
	}
	dir := t.TempDir()
	s, _ := testKeys(t, origin)
	l, err := Open(dir, origin, s)
	if err != nil {
		t.Fatal(err)
	}
	if l.oneRound {
		t.Fatal("a log whose checkpoints leave no room for a pending mark appends in one round")
	}
	want := testEntries("e", 0, 20)
	appendAll(t, l, want, 5)
	if _, st := currentSlot(t, dir); st.pending {
		t.Fatal("a two-round append left a pending mark")
	}
	l.Close()
	l, err = Open(dir, origin, s)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := l.Entries(0, 20)
	if err != nil || l.Size() != 20 || !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("reopened with size %d, entries %q, %v; want %q", l.Size(), got, err, want)
	}
}

func TestAppendsWriteZerosAheadAndCloseDropsThem(t *testing.T) {
	dir := t.TempDir()
	s, v := testKeys(t, testOrigin)
	l := openLog(t, dir, s)
	var want [][]byte
	for step := range 40 {
		batch := testEntries("e", int64(len(want)), int64(1+step*13%90))
		if _, _, err := l.Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		want = append(want, batch...)
		dataEnd := int64(entryEnd(want, len(want)))
		hashEnd := tlog.StoredHashCount(int64(len(want))) * tlog.HashSize
		for _, f := range []struct {
			name      string
			data, end int64
		}{{entriesName, dataEnd, l.entriesEnd}, {hashesName, hashEnd, l.hashesEnd}} {
			b, err := os.ReadFile(filepath.Join(dir, f.name))
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(b)) != f.end || f.end < f.data || f.end%minGrowth != 0 {
				t.Fatalf("after append %d %s holds %d bytes (the log says %d) for %d bytes of data; want a multiple of %d past the data",
					step, f.name, len(b), f.end, f.data, minGrowth)
			}
			if i := bytes.IndexFunc(b[f.data:], func(r rune) bool { return r != 0 }); i >= 0 {
				t.Fatalf("after append %d %s holds a nonzero byte %d bytes past the data", step, f.name, i)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := fileSize(t, dir, entriesName), int64(entryEnd(want, len(want))); got != want {
		t.Fatalf("entries holds %d bytes after Close, want %d", got, want)
	}
	if got, want := fileSize(t, dir, hashesName), tlog.StoredHashCount(int64(len(want)))*tlog.HashSize; got != want {
		t.Fatalf("hashes holds %d bytes after Close, want %d", got, want)
	}
	checkLogContents(t, openLog(t, dir, s), v, want)
}
