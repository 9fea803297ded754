package tlog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const testOrigin = "glovebox.test/log"

// testKeys returns a fresh signer and verifier named origin.
func testKeys(t testing.TB, origin string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	return keysOf(t, skey, vkey)
}

// keysOf returns the signer and verifier of an encoded key pair.
func keysOf(t testing.TB, skey, vkey string) (note.Signer, note.Verifier) {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// openRefused checks that Open of dir refuses with an error mentioning wantErr and leaves the files as
// they were (before: snapshotDir's).
func openRefused(t *testing.T, dir, origin string, s note.Signer, wantErr, before string) {
	t.Helper()
	l, err := Open(dir, origin, s)
	if err == nil {
		l.Close()
		t.Fatal("Open succeeded")
	}
	if !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("error %q doesn't mention %q", err, wantErr)
	}
	if after := snapshotDir(t, dir); after != before {
		t.Fatalf("a failed Open changed the files:\nbefore %s\nafter  %s", before, after)
	}
}

// testEntry returns a deterministic entry for index i, tagged so that logs
// built from different tags differ. Lengths vary from 1 to 700 bytes.
func testEntry(tag string, i int64) []byte {
	n := 1 + int((i*7919)%700)
	e := fmt.Appendf(nil, "%s:%d:", tag, i)
	for len(e) < n {
		e = append(e, byte('a'+(i+int64(len(e)))%26))
	}
	return e[:n]
}

// testEntries returns testEntry(tag, i) for i in [start, start+n).
func testEntries(tag string, start, n int64) [][]byte {
	es := make([][]byte, n)
	for i := range es {
		es[i] = testEntry(tag, start+int64(i))
	}
	return es
}

// refRoot computes the RFC 6962 tree hash of entries straight from its
// recursive definition (MTH), independently of stored hashes and tiles.
func refRoot(t testing.TB, entries [][]byte) tlog.Hash {
	t.Helper()
	if len(entries) == 0 {
		h, err := tlog.TreeHash(0, hashSlice(nil))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	leaves := make([]tlog.Hash, len(entries))
	for i, e := range entries {
		leaves[i] = tlog.RecordHash(e)
	}
	var mth func([]tlog.Hash) tlog.Hash
	mth = func(l []tlog.Hash) tlog.Hash {
		if len(l) == 1 {
			return l[0]
		}
		k := 1
		for k*2 < len(l) {
			k *= 2
		}
		return tlog.NodeHash(mth(l[:k]), mth(l[k:]))
	}
	return mth(leaves)
}

// openLog opens the log in dir, failing the test on error, and closes it
// at the end of the test.
func openLog(t testing.TB, dir string, s note.Signer) *Log {
	t.Helper()
	l, err := Open(dir, testOrigin, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// appendAll appends entries in batches of at most batch entries.
func appendAll(t testing.TB, l *Log, entries [][]byte, batch int) {
	t.Helper()
	for len(entries) > 0 {
		n := min(batch, len(entries))
		if _, _, err := l.Append(context.Background(), entries[:n]); err != nil {
			t.Fatal(err)
		}
		entries = entries[n:]
	}
}

// checkLogContents checks that l holds exactly want, with the matching root
// and a checkpoint that verifies.
func checkLogContents(t *testing.T, l *Log, v note.Verifier, want [][]byte) {
	t.Helper()
	if got := l.Size(); got != int64(len(want)) {
		t.Fatalf("Size() = %d, want %d", got, len(want))
	}
	root := refRoot(t, want)
	if got, err := l.RootHash(int64(len(want))); err != nil || got != root {
		t.Fatalf("RootHash(%d) = %v, %v; want %v", len(want), got, err, root)
	}
	size, cpRoot, err := OpenCheckpoint(l.Checkpoint(), testOrigin, v)
	if err != nil || size != int64(len(want)) || cpRoot != root {
		t.Fatalf("OpenCheckpoint = %d, %v, %v; want %d, %v", size, cpRoot, err, len(want), root)
	}
	for i, e := range want {
		got, err := l.Entry(context.Background(), int64(i))
		if err != nil || !bytes.Equal(got, e) {
			t.Fatalf("Entry(%d) = %q, %v; want %q", i, got, err, e)
		}
	}
}

// fileSize returns the size of dir/name.
func fileSize(t testing.TB, dir, name string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
