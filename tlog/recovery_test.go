package tlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// appendToFile appends data to dir/name.
func appendToFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

// editFile applies edit to the contents of dir/name.
func editFile(t *testing.T, dir, name string, edit func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, edit(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readCheckpointSlots parses both slots of dir's checkpoints file.
func readCheckpointSlots(t testing.TB, dir string) [slotCount]slotState {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, checkpointsName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, slots, err := readSlots(f)
	if err != nil {
		t.Fatal(err)
	}
	return slots
}

// currentSlot returns the index and contents of the slot holding the
// current checkpoint of the log in dir.
func currentSlot(t testing.TB, dir string) (int, slotState) {
	t.Helper()
	slots := readCheckpointSlots(t, dir)
	cur := newestSlot(slots)
	if cur < 0 {
		t.Fatal("no valid checkpoint slot")
	}
	return cur, slots[cur]
}

// writeSlotBytes overwrites slot i of dir's checkpoints file with data.
func writeSlotBytes(t testing.TB, dir string, i int, data []byte) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, checkpointsName), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, int64(i)*slotSize); err != nil {
		t.Fatal(err)
	}
}

// writeSlot writes a valid slot i holding note with sequence number seq.
func writeSlot(t testing.TB, dir string, i int, seq uint64, note []byte) {
	t.Helper()
	slot := make([]byte, slotSize)
	encodeSlot(slot, seq, note)
	writeSlotBytes(t, dir, i, slot)
}

// appendTorn simulates a crash after an Append made its data durable,
// while its checkpoint slot was being written: it appends entries through
// a Log, then replaces the slot it wrote with tear(before, after), given
// the slot's contents before and after the Append. It returns the
// checkpoint that was never committed.
func appendTorn(t *testing.T, dir string, s note.Signer, entries [][]byte, tear func(before, after []byte) []byte) []byte {
	t.Helper()
	before, err := os.ReadFile(filepath.Join(dir, checkpointsName))
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, testOrigin, s)
	if err != nil {
		t.Fatal(err)
	}
	_, lost, err := l.Append(context.Background(), entries)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	after, err := os.ReadFile(filepath.Join(dir, checkpointsName))
	if err != nil {
		t.Fatal(err)
	}
	i, cur := currentSlot(t, dir)
	if !bytes.Equal(cur.note, lost) {
		t.Fatal("the newest slot doesn't hold the checkpoint Append returned")
	}
	slot := func(b []byte) []byte { return bytes.Clone(b[i*slotSize : (i+1)*slotSize]) }
	torn := tear(slot(before), slot(after))
	if len(torn) != slotSize {
		t.Fatalf("torn slot has %d bytes", len(torn))
	}
	writeSlotBytes(t, dir, i, torn)
	return lost
}

// appendUncommitted simulates a crash after an Append made its data
// durable but before any of its checkpoint slot was written: it appends
// entries through a Log, then puts the previous slot contents back. It
// returns the checkpoint that was never committed.
func appendUncommitted(t *testing.T, dir string, s note.Signer, entries [][]byte) []byte {
	t.Helper()
	return appendTorn(t, dir, s, entries, func(before, _ []byte) []byte { return before })
}

// garbage returns n deterministic pseudo-random bytes.
func garbage(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func TestOpenRecoversFromTornWrites(t *testing.T) {
	const committed = 500
	lostEntries := testEntries("lost", committed, 77)
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string, s note.Signer)
	}{
		{"nothing happened", func(*testing.T, string, note.Signer) {}},
		{"garbage was appended to entries", func(t *testing.T, dir string, _ note.Signer) {
			appendToFile(t, dir, entriesName, []byte("\x00\x05garbage that is not an entry"))
		}},
		{"garbage was appended to hashes", func(t *testing.T, dir string, _ note.Signer) {
			appendToFile(t, dir, hashesName, bytes.Repeat([]byte{0xAA}, 45))
		}},
		{"half a length prefix was written", func(t *testing.T, dir string, _ note.Signer) {
			appendToFile(t, dir, entriesName, []byte{0x01})
		}},
		{"a whole batch was written to both files but not committed", func(t *testing.T, dir string, s note.Signer) {
			appendUncommitted(t, dir, s, lostEntries)
		}},
		{"a batch was written to entries only", func(t *testing.T, dir string, _ note.Signer) {
			appendToFile(t, dir, entriesName, bundle(lostEntries...))
		}},
		{"a batch was written and its checkpoint slot filled with garbage", func(t *testing.T, dir string, s note.Signer) {
			appendTorn(t, dir, s, lostEntries, func(_, _ []byte) []byte { return garbage(slotSize) })
		}},
		{"a batch was written and its checkpoint slot filled with garbage after the magic", func(t *testing.T, dir string, s note.Signer) {
			appendTorn(t, dir, s, lostEntries, func(_, _ []byte) []byte {
				return append([]byte(slotMagic), garbage(slotSize-len(slotMagic))...)
			})
		}},
		{"a batch was written and its checkpoint note cut short after a valid-looking header", func(t *testing.T, dir string, s note.Signer) {
			appendTorn(t, dir, s, lostEntries, func(_, after []byte) []byte {
				n := int(binary.BigEndian.Uint32(after[12:16]))
				torn := make([]byte, slotSize)
				copy(torn, after[:slotHeaderSize+n/2])
				return torn
			})
		}},
		{"a batch was written and its checkpoint slot torn mid-note over the previous contents", func(t *testing.T, dir string, s note.Signer) {
			appendTorn(t, dir, s, lostEntries, func(before, after []byte) []byte {
				return append(after[:slotHeaderSize+40:slotHeaderSize+40], before[slotHeaderSize+40:]...)
			})
		}},
		{"a batch was written and only its checkpoint slot's header", func(t *testing.T, dir string, s note.Signer) {
			appendTorn(t, dir, s, lostEntries, func(before, after []byte) []byte {
				return append(after[:slotHeaderSize:slotHeaderSize], before[slotHeaderSize:]...)
			})
		}},
		{"a batch was written and its checkpoint slot zeroed", func(t *testing.T, dir string, s note.Signer) {
			appendTorn(t, dir, s, lostEntries, func(_, _ []byte) []byte { return make([]byte, slotSize) })
		}},
	}
	for _, tt := range tests {
		t.Run("the log is back at its checkpoint after "+tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, v := testKeys(t, testOrigin)
			want := testEntries("e", 0, committed)
			l := openLog(t, dir, s)
			appendAll(t, l, want[:300], 300)
			appendAll(t, l, want[300:], 200)
			l.Close()
			wantEntriesSize := fileSize(t, dir, entriesName)
			wantHashesSize := fileSize(t, dir, hashesName)
			_, wantSlot := currentSlot(t, dir)

			tt.damage(t, dir, s)

			l = openLog(t, dir, s)
			checkLogContents(t, l, v, want)
			if got := fileSize(t, dir, entriesName); got != wantEntriesSize {
				t.Fatalf("entries has %d bytes after recovery, want %d", got, wantEntriesSize)
			}
			if got := fileSize(t, dir, hashesName); got != wantHashesSize {
				t.Fatalf("hashes has %d bytes after recovery, want %d", got, wantHashesSize)
			}
			if got := fileSize(t, dir, checkpointsName); got != checkpointsSize {
				t.Fatalf("checkpoints has %d bytes after recovery, want %d", got, checkpointsSize)
			}

			// Appends continue where the checkpoint left off, and what the
			// crash left behind has no influence on the tree. The new
			// checkpoint goes to the slot not holding the recovered one
			// (the torn one, if any), leaving the recovered one intact.
			more := testEntries("e", committed, 300)
			first, cp, err := l.Append(context.Background(), more)
			if err != nil || first != committed {
				t.Fatalf("Append after recovery = %d, %v; want %d", first, err, committed)
			}
			slots := readCheckpointSlots(t, dir)
			if cur := newestSlot(slots); !slots[cur].ok || slots[cur].seq != wantSlot.seq+1 || !bytes.Equal(slots[cur].note, cp) ||
				!slots[1-cur].ok || slots[1-cur].seq != wantSlot.seq || !bytes.Equal(slots[1-cur].note, wantSlot.note) {
				t.Fatalf("after recovery and an append the slots hold %+v, want the recovered checkpoint %d and its successor", slots, wantSlot.seq)
			}
			want = append(want, more...)
			checkLogContents(t, l, v, want)
			l.Close()
			checkLogContents(t, openLog(t, dir, s), v, want)
		})
	}
}

func TestOpenDetectsCorruption(t *testing.T) {
	const size = 40
	flip := func(name string, off func(n int) int) func(*testing.T, string, note.Signer) {
		return func(t *testing.T, dir string, _ note.Signer) {
			editFile(t, dir, name, func(b []byte) []byte { b[off(len(b))] ^= 0x10; return b })
		}
	}
	truncate := func(name string, by int) func(*testing.T, string, note.Signer) {
		return func(t *testing.T, dir string, _ note.Signer) {
			editFile(t, dir, name, func(b []byte) []byte { return b[:len(b)-by] })
		}
	}
	// newerSlot writes note with a valid CRC to the slot not holding the
	// current checkpoint, with the next sequence number, as a completed
	// Append would. The older slot still holds a checkpoint that matches
	// the data, which Open must not fall back to.
	newerSlot := func(t *testing.T, dir string, note []byte) {
		cur, st := currentSlot(t, dir)
		writeSlot(t, dir, 1-cur, st.seq+1, note)
	}
	// resignWith installs a validly signed checkpoint for the given origin,
	// size and root in a newer slot. If other is set, it signs with a key
	// of the same name that isn't the log's.
	resignWith := func(origin string, size int64, root func(tlog.Hash) tlog.Hash, other bool) func(*testing.T, string, note.Signer) {
		return func(t *testing.T, dir string, s note.Signer) {
			l := openLog(t, dir, s)
			r, _ := l.RootHash(l.Size())
			l.Close()
			if other {
				s, _ = testKeys(t, testOrigin)
			}
			cp, err := signCheckpoint(origin, size, root(r), s)
			if err != nil {
				t.Fatal(err)
			}
			newerSlot(t, dir, cp)
		}
	}
	resign := func(size int64, root func(tlog.Hash) tlog.Hash) func(*testing.T, string, note.Signer) {
		return resignWith(testOrigin, size, root, false)
	}
	invalidateBoth := func(slot func(i int) []byte) func(*testing.T, string, note.Signer) {
		return func(t *testing.T, dir string, _ note.Signer) {
			for i := range slotCount {
				writeSlotBytes(t, dir, i, slot(i))
			}
		}
	}
	same := func(h tlog.Hash) tlog.Hash { return h }
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string, s note.Signer)
		origin  string
		wantErr string
	}{
		{"a flipped bit in the first stored hash", flip(hashesName, func(int) int { return 0 }), "", "stored hash 0"},
		{"a flipped bit in the last stored hash", flip(hashesName, func(n int) int { return n - 1 }), "", "doesn't match the entries"},
		{"a flipped bit in an interior stored hash", flip(hashesName, func(n int) int { return n / 2 }), "", "doesn't match the entries"},
		{"hashes truncated by one hash", truncate(hashesName, 32), "", "hashes holds"},
		{"hashes truncated by one byte", truncate(hashesName, 1), "", "hashes holds"},
		{"hashes deleted", func(t *testing.T, dir string, _ note.Signer) { os.Remove(filepath.Join(dir, hashesName)) }, "", "hashes holds 0 bytes"},
		{"entries truncated by one byte", truncate(entriesName, 1), "", "ends inside entry 39"},
		{"entries truncated to half", func(t *testing.T, dir string, _ note.Signer) {
			editFile(t, dir, entriesName, func(b []byte) []byte { return b[:len(b)/2] })
		}, "", "committed entries"},
		{"entries deleted", func(t *testing.T, dir string, _ note.Signer) { os.Remove(filepath.Join(dir, entriesName)) }, "", "entries holds 0 bytes, too few for 40 committed entries"},
		{"a flipped bit in an entry's data", flip(entriesName, func(n int) int { return n - 1 }), "", "doesn't match the entries"},
		{"a length prefix made longer", flip(entriesName, func(int) int { return 1 }), "", "corrupt log"},
		{"a zero length prefix", func(t *testing.T, dir string, _ note.Signer) {
			editFile(t, dir, entriesName, func(b []byte) []byte { b[0], b[1] = 0, 0; return b })
		}, "", "empty entry at index 0"},
		{"the checkpoints file deleted while data remains", func(t *testing.T, dir string, _ note.Signer) {
			os.Remove(filepath.Join(dir, checkpointsName))
		}, "", "refusing to discard"},
		{"the checkpoints file emptied while data remains", truncate(checkpointsName, checkpointsSize), "", "refusing to discard"},
		{"both slots filled with garbage", invalidateBoth(func(int) []byte { return garbage(slotSize) }), "", "refusing to discard"},
		{"both slots zeroed", invalidateBoth(func(int) []byte { return make([]byte, slotSize) }), "", "refusing to discard"},
		{"both slots with a flipped CRC bit", func(t *testing.T, dir string, _ note.Signer) {
			editFile(t, dir, checkpointsName, func(b []byte) []byte { b[16] ^= 1; b[slotSize+16] ^= 1; return b })
		}, "", "refusing to discard"},
		{"the checkpoints file cut to its first slot", truncate(checkpointsName, slotSize), "", "checkpoints holds 4096 bytes, want 8192"},
		{"the checkpoints file grown", func(t *testing.T, dir string, _ note.Signer) {
			appendToFile(t, dir, checkpointsName, []byte{0})
		}, "", "checkpoints holds 8193 bytes"},
		{"both slots holding the same sequence number", func(t *testing.T, dir string, _ note.Signer) {
			cur, st := currentSlot(t, dir)
			writeSlot(t, dir, 1-cur, st.seq, st.note)
		}, "", "both checkpoints slots hold sequence number"},
		{"a newer slot with a valid CRC holding garbage", func(t *testing.T, dir string, _ note.Signer) {
			newerSlot(t, dir, []byte("garbage"))
		}, "", "malformed checkpoint"},
		{"a newer slot with a valid CRC holding a checkpoint signed by another key", resignWith(testOrigin, size, same, true), "", "no signature by this log's key"},
		{"a newer slot with a valid CRC holding a checkpoint for another origin", resignWith("example.com/other", size, same, false), "", `checkpoint origin is "example.com/other"`},
		{"the log opened with another origin", func(*testing.T, string, note.Signer) {}, "example.com/other", "origin"},
		{"a signed checkpoint with a wrong root", resign(size, func(h tlog.Hash) tlog.Hash { h[0] ^= 1; return h }), "", "hash to"},
		{"a signed checkpoint claiming more entries than stored", resign(size+1, same), "", "ends after 40 of 41"},
		{"a signed checkpoint claiming fewer entries with the old root", resign(size-1, same), "", "hash to"},
		{"a signed checkpoint claiming a huge size", resign(1<<62, same), "", "too few for 4611686018427387904 committed entries"},
	}
	for _, tt := range tests {
		t.Run("Open fails on "+tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := testKeys(t, testOrigin)
			l := openLog(t, dir, s)
			appendAll(t, l, testEntries("e", 0, size), 17)
			l.Close()
			tt.damage(t, dir, s)
			before := snapshotDir(t, dir)

			origin := testOrigin
			if tt.origin != "" {
				origin = tt.origin
			}
			openRefused(t, dir, origin, s, tt.wantErr, before)
		})
	}
}

// snapshotDir summarizes the data files of a log directory.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, name := range []string{entriesName, hashesName, checkpointsName} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%d:%x ", name, len(data), tlog.RecordHash(data))
	}
	return b.String()
}

func TestOpenDetectsAFlipInEveryStoredHash(t *testing.T) {
	dir := t.TempDir()
	s, _ := testKeys(t, testOrigin)
	l := openLog(t, dir, s)
	appendAll(t, l, testEntries("e", 0, 21), 5)
	l.Close()
	n := tlog.StoredHashCount(21)
	orig, err := os.ReadFile(filepath.Join(dir, hashesName))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for _, off := range []int64{0, 31} {
			damaged := bytes.Clone(orig)
			damaged[i*32+off] ^= 0x80
			if err := os.WriteFile(filepath.Join(dir, hashesName), damaged, 0o644); err != nil {
				t.Fatal(err)
			}
			if l, err := Open(dir, testOrigin, s); err == nil {
				l.Close()
				t.Fatalf("Open succeeded with byte %d of stored hash %d flipped", off, i)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, hashesName), orig, 0o644); err != nil {
		t.Fatal(err)
	}
	openLog(t, dir, s)
}

// copyLogDir copies the data files of the log in dir to a new directory, as
// a crash at this point would leave them, and returns the new directory.
func copyLogDir(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{entriesName, hashesName, checkpointsName} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestCheckpointSlotsAlternateAndEveryAppendIsACommitPoint(t *testing.T) {
	dir := t.TempDir()
	s, v := testKeys(t, testOrigin)
	l, err := Open(dir, testOrigin, s)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	var all [][]byte
	prev := l.Checkpoint()
	for step := range 60 {
		n := int64(1 + step*37%300)
		batch := testEntries("e", int64(len(all)), n)
		if _, _, err := l.Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
		cp := l.Checkpoint()

		// Checkpoint k (the empty log's is 1) is in slot (k-1)%2, and the
		// previous one is intact in the other slot.
		seq := uint64(step + 2)
		slots := readCheckpointSlots(t, dir)
		cur := int(seq-1) % slotCount
		if got := slots[cur]; !got.ok || got.seq != seq || !bytes.Equal(got.note, cp) {
			t.Fatalf("after append %d slot %d holds %v, %d, %q; want checkpoint %d:\n%s", step, cur, got.ok, got.seq, got.note, seq, cp)
		}
		if got := slots[1-cur]; !got.ok || got.seq != seq-1 || !bytes.Equal(got.note, prev) {
			t.Fatalf("after append %d slot %d holds %v, %d, %q; want checkpoint %d:\n%s", step, 1-cur, got.ok, got.seq, got.note, seq-1, prev)
		}
		prev = cp

		// A crash now recovers exactly the committed log.
		l2 := openLog(t, copyLogDir(t, dir), s)
		checkLogContents(t, l2, v, all)
		if !bytes.Equal(l2.Checkpoint(), cp) {
			t.Fatalf("after append %d a copy reopens with checkpoint\n%s\nwant\n%s", step, l2.Checkpoint(), cp)
		}
		l2.Close()

		// So does a reopen, and the slots keep alternating after it.
		if step%7 == 3 {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if l, err = Open(dir, testOrigin, s); err != nil {
				t.Fatal(err)
			}
			checkLogContents(t, l, v, all)
		}
	}
}

func TestOpenAfterASlotWriteTornAtEveryByte(t *testing.T) {
	dir := t.TempDir()
	s, v := testKeys(t, testOrigin)
	l := openLog(t, dir, s)
	committed := testEntries("e", 0, 20)
	appendAll(t, l, committed, 7) // 3 appends: checkpoint 4 in slot 1, 3 in slot 0
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	before := read(checkpointsName)[:slotSize]
	lost := testEntries("e", 20, 9)
	_, cpLost, err := l.Append(context.Background(), lost)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	entries, hashes, after := read(entriesName), read(hashesName), read(checkpointsName)
	cur, st := currentSlot(t, dir)
	if cur != 0 || st.seq != 5 || !bytes.Equal(st.note, cpLost) {
		t.Fatalf("the last append wrote checkpoint %d to slot %d, want 5 to slot 0", st.seq, cur)
	}
	newEnd := slotHeaderSize + len(cpLost)

	// A write of slot 0 torn after k bytes leaves the first k bytes of the
	// new slot and the rest of the old one. Either the new checkpoint is
	// complete, or the slot is invalid or still holds checkpoint 3, and
	// Open recovers checkpoint 4 from slot 1.
	outcomes := map[bool]int{}
	for k := 0; k <= slotSize; k++ {
		if k > newEnd+8 && k < slotSize-8 {
			continue // past the note, every tear leaves the same valid slot
		}
		slot := append(bytes.Clone(after[:k]), before[k:]...)
		files := map[string][]byte{entriesName: entries, hashesName: hashes, checkpointsName: append(slot, after[slotSize:]...)}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want := committed
		complete := bytes.Equal(slot[:newEnd], after[:newEnd])
		if complete {
			want = append(slices.Clone(committed), lost...)
		}
		outcomes[complete]++
		l, err := Open(dir, testOrigin, s)
		if err != nil {
			t.Fatalf("slot write torn after %d bytes: %v", k, err)
		}
		checkLogContents(t, l, v, want)
		l.Close()
	}
	// (The last bytes of both notes can coincide: "=\n".)
	if outcomes[true] == 0 || outcomes[false] < newEnd-4 {
		t.Fatalf("recovered the new checkpoint after %d tears and the old one after %d", outcomes[true], outcomes[false])
	}
}

func TestOpenStartsOverAfterACrashWhileCreating(t *testing.T) {
	tests := []struct {
		name        string
		checkpoints []byte
	}{
		{"an empty checkpoints file", nil},
		{"a checkpoints file of zeros", make([]byte, checkpointsSize)},
		{"a short checkpoints file", make([]byte, 100)},
		{"a checkpoints file with a torn first slot", func() []byte {
			b := make([]byte, checkpointsSize)
			encodeSlot(b, 1, []byte("glovebox.test/log\n0\n"))
			clear(b[slotHeaderSize+5 : slotSize])
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run("a new log after "+tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, v := testKeys(t, testOrigin)
			if err := os.WriteFile(filepath.Join(dir, checkpointsName), tt.checkpoints, 0o644); err != nil {
				t.Fatal(err)
			}
			l := openLog(t, dir, s)
			checkLogContents(t, l, v, nil)
			if got := fileSize(t, dir, checkpointsName); got != checkpointsSize {
				t.Fatalf("checkpoints holds %d bytes, want %d", got, checkpointsSize)
			}
			if cur, st := currentSlot(t, dir); cur != 0 || st.seq != 1 || !bytes.Equal(st.note, l.Checkpoint()) {
				t.Fatalf("slot %d holds checkpoint %d, want 1 in slot 0", cur, st.seq)
			}
			more := testEntries("e", 0, 10)
			appendAll(t, l, more, 10)
			l.Close()
			checkLogContents(t, openLog(t, dir, s), v, more)
		})
	}
}

func TestSlotEncoding(t *testing.T) {
	note := []byte("example.com/log\n1\nAAAA\n\n— example.com/log sig\n")
	slot := make([]byte, slotSize)
	for i := range slot {
		slot[i] = 0xff // encodeSlot must clear the padding
	}
	encodeSlot(slot, 0x0102030405060708, note)
	wantHdr := []byte("GBC1\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00")
	wantHdr = append(wantHdr, byte(len(note)))
	if !bytes.Equal(slot[:16], wantHdr) {
		t.Fatalf("header = %x, want %x", slot[:16], wantHdr)
	}
	crc := crc32.Checksum(append(slices.Clone(slot[4:16]), note...), crc32.MakeTable(crc32.Castagnoli))
	if got := binary.BigEndian.Uint32(slot[16:20]); got != crc {
		t.Fatalf("CRC = %08x, want %08x", got, crc)
	}
	if !bytes.Equal(slot[20:20+len(note)], note) || !bytes.Equal(slot[20+len(note):], make([]byte, slotSize-20-len(note))) {
		t.Fatal("note or padding wrong")
	}
	seq, got, ok := parseSlot(slot)
	if !ok || seq != 0x0102030405060708 || !bytes.Equal(got, note) {
		t.Fatalf("parseSlot = %x, %q, %v", seq, got, ok)
	}
	// The largest note fits exactly.
	big := bytes.Repeat([]byte{'x'}, maxNoteSize)
	encodeSlot(slot, 7, big)
	if seq, got, ok := parseSlot(slot); !ok || seq != 7 || !bytes.Equal(got, big) {
		t.Fatal("the largest note doesn't round-trip")
	}
	// Any flipped bit in the magic, header or note invalidates the slot.
	encodeSlot(slot, 9, note)
	for i := range 20 + len(note) {
		for bit := range 8 {
			slot[i] ^= 1 << bit
			if _, _, ok := parseSlot(slot); ok {
				t.Fatalf("slot with bit %d of byte %d flipped is valid", bit, i)
			}
			slot[i] ^= 1 << bit
		}
	}
	// Lengths of zero or past the slot are invalid whatever the CRC.
	for _, n := range []uint32{0, maxNoteSize + 1, 1 << 31} {
		binary.BigEndian.PutUint32(slot[12:], n)
		binary.BigEndian.PutUint32(slot[16:], slotCRC(slot[4:16], slot[20:20+min(int(n), maxNoteSize)]))
		if _, _, ok := parseSlot(slot); ok {
			t.Fatalf("slot with length %d is valid", n)
		}
	}
}
