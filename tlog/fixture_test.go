package tlog

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite the log in testdata/v1 with this build")

// fixtureDir holds a log written by the build that appended entries in two
// durability rounds (data, then the checkpoint), before checkpoints were
// written in the same round as the data: 300 entries in three appends of
// 100, then closed. Later builds must keep opening it.
const fixtureDir = "testdata/v1"

// fixtureKeys returns the fixture log's signer and verifier, derived from a
// fixed seed so that the fixture can be regenerated with -update.
func fixtureKeys(t *testing.T) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{0x5e}, 64)), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	return keysOf(t, skey, vkey)
}

// copyFixture copies the fixture log to a new directory, as Open may write.
func copyFixture(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{entriesName, hashesName, checkpointsName} {
		data, err := os.ReadFile(filepath.Join(fixtureDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestALogWrittenByTheTwoRoundBuildOpensAndGrows(t *testing.T) {
	s, v := fixtureKeys(t)
	want := testEntries("v1", 0, 300)
	if *update {
		dir := t.TempDir()
		l := openLog(t, dir, s)
		appendAll(t, l, want, 100)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{entriesName, hashesName, checkpointsName} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(fixtureDir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	dir := copyFixture(t)
	_, slot := currentSlot(t, dir)
	l := openLog(t, dir, s)
	checkLogContents(t, l, v, want)
	if !bytes.Equal(l.Checkpoint(), slot.note) {
		t.Fatalf("the fixture opens with checkpoint\n%s\nwant the one in its newest slot\n%s", l.Checkpoint(), slot.note)
	}
	more := testEntries("v1", 300, 50)
	appendAll(t, l, more, 25)
	want = append(want, more...)
	checkLogContents(t, l, v, want)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkLogContents(t, openLog(t, dir, s), v, want)
}

func TestALogWrittenByTheTwoRoundBuildWithADamagedLastBatchDoesNotOpen(t *testing.T) {
	s, _ := fixtureKeys(t)
	dir := copyFixture(t)
	// Its slots were committed after their data was durable: a last batch
	// that doesn't match is damage, never an interrupted append.
	editFile(t, dir, entriesName, func(b []byte) []byte { b[len(b)-1] ^= 0x10; return b })
	if l, err := Open(dir, testOrigin, s); err == nil {
		l.Close()
		t.Fatal("Open succeeded on a fixture log whose last entry was damaged")
	}
}
