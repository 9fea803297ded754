package testnode

import "runtime"

// HeapInUse returns the bytes of this process's heap in use after a collection: what a test that
// reproduces a memory attack on an in-process node compares before and after.
func HeapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
