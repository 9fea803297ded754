package api_test

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"
)

func removeIfExists(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

// atomicTime is a settable clock for the sequencer.
type atomicTime struct {
	mu sync.Mutex
	t  time.Time
}

func (a *atomicTime) get() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.t
}

func (a *atomicTime) set(t time.Time) {
	a.mu.Lock()
	a.t = t
	a.mu.Unlock()
}

func (a *atomicTime) add(d time.Duration) {
	a.mu.Lock()
	a.t = a.t.Add(d)
	a.mu.Unlock()
}
