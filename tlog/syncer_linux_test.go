package tlog

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// kernelAllowsAIO reports whether this kernel lets the process set up asynchronous I/O at all.
func kernelAllowsAIO(t *testing.T) bool {
	t.Helper()
	var ctx uintptr
	if _, _, e := syscall.Syscall(syscall.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		t.Logf("io_setup: %v", e)
		return false
	}
	syscall.Syscall(syscall.SYS_IO_DESTROY, ctx, 0, 0)
	return true
}

// openFiles creates n files in a temporary directory, each holding some data not yet synced.
func openFiles(t *testing.T, n int) []*os.File {
	t.Helper()
	dir := t.TempDir()
	var fs []*os.File
	for i := range n {
		f, err := os.Create(filepath.Join(dir, string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if _, err := f.Write([]byte(strings.Repeat("x", 4096*(i+1)))); err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	return fs
}

func TestTheSyncerUsesAsynchronousIOWhereTheKernelAllowsIt(t *testing.T) {
	s := newSyncer()
	defer s.close()
	if allowed := kernelAllowsAIO(t); s.async() != allowed {
		t.Fatalf("async() = %v where the kernel allows asynchronous I/O: %v", s.async(), allowed)
	}
	if !s.async() {
		t.Skip("this kernel refuses asynchronous I/O: the fallback is what runs")
	}
	// Many rounds in a row: each waits for its own completions only.
	fs := openFiles(t, 3)
	for round := range 200 {
		if _, err := fs[round%3].Write([]byte("more")); err != nil {
			t.Fatal(err)
		}
		if err := s.syncAll(fs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if !s.async() {
		t.Fatal("the syncer gave up asynchronous I/O on files that allow it")
	}
}

func TestTheSyncerReportsAFileItCannotSync(t *testing.T) {
	for _, tc := range []struct {
		name  string
		async bool
	}{{"asynchronous I/O", true}, {"fdatasync per file", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSyncer()
			defer s.close()
			if !tc.async {
				s.close() // from then on, the fallback
			} else if !s.async() {
				t.Skip("this kernel refuses asynchronous I/O")
			}
			fs := openFiles(t, 3)
			if err := s.syncAll(fs...); err != nil {
				t.Fatalf("syncing open files: %v", err)
			}
			// The second of three is closed: the kernel takes the first, refuses the second, and the
			// third is synced without it. The error names the closed file; the others are synced.
			fs[1].Close()
			err := s.syncAll(fs...)
			if err == nil || !strings.Contains(err.Error(), "syncing b") {
				t.Fatalf("syncAll with a closed file = %v, want an error about b", err)
			}
			if strings.Contains(err.Error(), "syncing a") || strings.Contains(err.Error(), "syncing c") {
				t.Fatalf("syncAll blamed an open file: %v", err)
			}
			// A closed file does not make the syncer give up asynchronous I/O.
			if s.async() != tc.async {
				t.Fatalf("async() = %v after a refused file, want %v", s.async(), tc.async)
			}
			if err := s.syncAll(fs[0], fs[2]); err != nil {
				t.Fatalf("syncing the open files after the refusal: %v", err)
			}
		})
	}
}
