package tlog

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/glovebox/glovebox/internal/tmpfs"
)

func TestAnAppendOnAFullDiskStoresNothingAndTheNextOneGoesThrough(t *testing.T) {
	dir := tmpfs.Mount(t, 1<<20)
	s, v := testKeys(t, testOrigin)
	l := openLog(t, dir, s)
	want := testEntries("before", 0, 300)
	appendAll(t, l, want, 100)
	cp := l.Checkpoint()
	entriesSize, hashesSize := fileSize(t, dir, entriesName), fileSize(t, dir, hashesName)

	filler := tmpfs.Fill(t, dir)
	big := testEntries("full", 300, 2000) // far more than the page the entries file may still have room in
	for try := range 3 {
		_, _, err := l.Append(context.Background(), big)
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("append %d on a full disk: %v, want ENOSPC", try, err)
		}
		if l.Size() != 300 || string(l.Checkpoint()) != string(cp) {
			t.Fatalf("after a failed append the log has size %d and checkpoint\n%s", l.Size(), l.Checkpoint())
		}
		if e, h := fileSize(t, dir, entriesName), fileSize(t, dir, hashesName); e != entriesSize || h != hashesSize {
			t.Fatalf("a failed append left files of %d and %d bytes, want %d and %d", e, h, entriesSize, hashesSize)
		}
	}
	checkLogContents(t, l, v, want)

	tmpfs.Free(t, filler)
	first, _, err := l.Append(context.Background(), big[:50])
	if err != nil || first != 300 {
		t.Fatalf("append once there is room: %d, %v", first, err)
	}
	want = append(want, big[:50]...)
	checkLogContents(t, l, v, want)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkLogContents(t, openLog(t, dir, s), v, want)
}
