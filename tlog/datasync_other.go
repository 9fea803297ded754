//go:build !linux

package tlog

import "os"

// datasync flushes f to stable storage. Only Linux has a data-only sync
// here; elsewhere it is File.Sync.
func datasync(f *os.File) error { return f.Sync() }
