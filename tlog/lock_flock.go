//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package tlog

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f without blocking. The lock
// is released when f is closed (or the process exits).
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errors.New("the log is already open (locked by another Log or process)")
		default:
			return err
		}
	}
}
