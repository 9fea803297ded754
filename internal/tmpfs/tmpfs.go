// Package tmpfs gives tests a small file system that fills up: a size-limited tmpfs mounted on a fresh
// directory (Linux, as root), and a filler file that takes whatever room is left. Tests of what the node
// does on a full disk run on it.
//
// Without root, or where mount fails, a test using it is skipped, unless GLOVEBOX_REQUIRE_TMPFS=1 (as
// in CI), which makes it fail instead. It imports no Glovebox package.
package tmpfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Required reports whether GLOVEBOX_REQUIRE_TMPFS=1 asks for a failure rather than a skip.
func Required() bool { return os.Getenv("GLOVEBOX_REQUIRE_TMPFS") == "1" }

// Mount mounts a tmpfs of size bytes (rounded up to pages by the kernel) on a new directory and returns
// it; it is unmounted when the test ends.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	skip := t.Skipf
	if Required() {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("a size-limited tmpfs needs root to mount (set GLOVEBOX_REQUIRE_TMPFS=1 to fail instead of skipping)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", size), "tmpfs", dir).CombinedOutput(); err != nil {
		skip("couldn't mount a tmpfs on %s: %v: %s (set GLOVEBOX_REQUIRE_TMPFS=1 to fail instead of skipping)", dir, err, out)
	}
	// Registered after TempDir's cleanup, so it runs before it: the mount goes before the directory does.
	// A file a stopped node's goroutine has not quite let go of keeps the mount busy for a moment: try
	// for a few seconds, then detach it lazily (the kernel frees it once the last file is closed).
	t.Cleanup(func() {
		var out []byte
		var err error
		for range 50 {
			if out, err = exec.Command("umount", dir).CombinedOutput(); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		if lout, lerr := exec.Command("umount", "-l", dir).CombinedOutput(); lerr != nil {
			t.Errorf("couldn't unmount the tmpfs on %s: %v: %s (lazily: %v: %s)", dir, err, out, lerr, lout)
		}
	})
	return dir
}

// Fill writes a file in dir until the file system is full and returns its path. Removing it gives the
// room back.
func Fill(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return p
		}
	}
}

// Free removes the filler file Fill made.
func Free(t testing.TB, filler string) {
	t.Helper()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
}
