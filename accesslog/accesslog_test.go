package accesslog_test

import (
	"runtime"
	"testing"

	"github.com/glovebox/glovebox/accesslog"
)

// TestAnIdleRecorderTakesNoMemory: the recorder's queue used to be a channel of DefaultQueue entries,
// 11 MiB allocated up front and scanned by the garbage collector at every cycle. It now takes memory as
// entries arrive.
func TestAnIdleRecorderTakesNoMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rec := accesslog.NewRecorder(nil, nil)
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(rec)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<10 {
		t.Fatalf("a new recorder allocated %d bytes; want at most 64 KiB (the queue grows as entries arrive)", grown)
	}
}
