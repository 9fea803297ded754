//go:build unix

package main

import "syscall"

// openFileLimit returns the process's limit on open files (RLIMIT_NOFILE, as Go raised it at start), 0 if
// unknown.
func openFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur >= 1<<62 { // unlimited
		return 0
	}
	return r.Cur
}
