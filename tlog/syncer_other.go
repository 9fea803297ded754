//go:build !linux

package tlog

import "os"

// syncer makes the data of several files durable at once. Only Linux has asynchronous syncs here
// (syncer_linux.go); elsewhere each file is synced by a goroutine of its own.
type syncer struct{}

func newSyncer() *syncer { return &syncer{} }

// async reports whether the syncer hands its syncs to the kernel as asynchronous I/O: never here.
func (s *syncer) async() bool { return false }

// syncAll syncs files in parallel and returns the first error.
func (s *syncer) syncAll(files ...*os.File) error { return datasyncAll(files...) }

// close releases nothing.
func (s *syncer) close() {}
