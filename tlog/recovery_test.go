package tlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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

// appendUncommitted simulates a crash after an Append made its data
// durable but before its checkpoint was installed: it appends entries
// through a Log, then puts the previous checkpoint back. It returns the
// checkpoint that was never committed.
func appendUncommitted(t *testing.T, dir string, s note.Signer, entries [][]byte) []byte {
	t.Helper()
	cpPath := filepath.Join(dir, checkpointName)
	old, err := os.ReadFile(cpPath)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, testOrigin, s)
	if err != nil {
		t.Fatal(err)
	}
	_, lost, err := l.Append(entries)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := os.WriteFile(cpPath, old, 0o644); err != nil {
		t.Fatal(err)
	}
	return lost
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
		{"a batch was written and its checkpoint left in the temporary file", func(t *testing.T, dir string, s note.Signer) {
			lost := appendUncommitted(t, dir, s, lostEntries)
			if err := os.WriteFile(filepath.Join(dir, checkpointName+tmpSuffix), lost, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"a half-written temporary checkpoint was left behind", func(t *testing.T, dir string, _ note.Signer) {
			if err := os.WriteFile(filepath.Join(dir, checkpointName+tmpSuffix), []byte(testOrigin+"\n57"), 0o644); err != nil {
				t.Fatal(err)
			}
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

			tt.damage(t, dir, s)

			l = openLog(t, dir, s)
			checkLogContents(t, l, v, want)
			if got := fileSize(t, dir, entriesName); got != wantEntriesSize {
				t.Fatalf("entries has %d bytes after recovery, want %d", got, wantEntriesSize)
			}
			if got := fileSize(t, dir, hashesName); got != wantHashesSize {
				t.Fatalf("hashes has %d bytes after recovery, want %d", got, wantHashesSize)
			}
			if _, err := os.Stat(filepath.Join(dir, checkpointName+tmpSuffix)); !os.IsNotExist(err) {
				t.Fatalf("temporary checkpoint still there after recovery: %v", err)
			}

			// Appends continue where the checkpoint left off, and what the
			// crash left behind has no influence on the tree.
			more := testEntries("e", committed, 300)
			first, _, err := l.Append(more)
			if err != nil || first != committed {
				t.Fatalf("Append after recovery = %d, %v; want %d", first, err, committed)
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
	// resign installs a validly signed checkpoint for the given size and root.
	// If other is set, it signs with a key of the same name that isn't the
	// log's.
	resignWith := func(size int64, root func(tlog.Hash) tlog.Hash, other bool) func(*testing.T, string, note.Signer) {
		return func(t *testing.T, dir string, s note.Signer) {
			l := openLog(t, dir, s)
			r, _ := l.RootHash(l.Size())
			l.Close()
			if other {
				s, _ = testKeys(t, testOrigin)
			}
			cp, err := signCheckpoint(testOrigin, size, root(r), s)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, checkpointName), cp, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	resign := func(size int64, root func(tlog.Hash) tlog.Hash) func(*testing.T, string, note.Signer) {
		return resignWith(size, root, false)
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
		{"the checkpoint deleted while data remains", func(t *testing.T, dir string, _ note.Signer) {
			os.Remove(filepath.Join(dir, checkpointName))
		}, "", "refusing to discard"},
		{"the checkpoint replaced by garbage", func(t *testing.T, dir string, _ note.Signer) {
			os.WriteFile(filepath.Join(dir, checkpointName), []byte("garbage"), 0o644)
		}, "", "malformed checkpoint"},
		{"the checkpoint signed by another key", resignWith(size, same, true), "", "no signature by this log's key"},
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
			l, err := Open(dir, origin, s)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q doesn't mention %q", err, tt.wantErr)
			}
			if after := snapshotDir(t, dir); after != before {
				t.Fatalf("a failed Open changed the files:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// snapshotDir summarizes the data files of a log directory.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, name := range []string{entriesName, hashesName, checkpointName} {
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
