//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package tlog

import "os"

// lockFile is a no-op where flock is unavailable: callers must make sure
// only one Log at a time uses a directory.
func lockFile(f *os.File) error { return nil }
