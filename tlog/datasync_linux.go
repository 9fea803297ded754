package tlog

import (
	"errors"
	"os"
	"syscall"
)

// datasync flushes f's data, and the metadata needed to read it back (such
// as its size), to stable storage with fdatasync(2). Unlike fsync it
// doesn't wait for timestamps, so overwriting allocated blocks of a file
// needs no metadata journal commit.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
