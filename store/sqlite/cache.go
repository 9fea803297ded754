package sqlite

import "fmt"

// Page caches. SQLite keeps a private cache of database pages for each connection, in the pure-Go driver's
// own allocator (outside Go's heap and its collector). A cache grows as its file is read and written until
// it reaches its bound, and then holds: with 1,000 vehicles sending, the node's resident memory rises for
// about 20 minutes as the files outgrow the caches (docs/soak). The bounds below are chosen so that the
// caches stay a small part of the node's memory; each page cached costs up to twice its 4 KiB in that
// allocator (its slots are powers of two and a page carries a header). Reads that miss the cache are
// served from the operating system's file cache, which is not the node's memory.
const (
	// RecordsCacheKiB bounds each connection's cache of the records file (telemetry.db): records are
	// appended, and read back in time ranges (raw records, credentials, exports).
	RecordsCacheKiB = 4096
	// SignalsCacheKiB bounds each connection's cache of the derived file (signals.db): latest values,
	// roll-ups and the values of recent hours are what reads and the indexer touch most.
	SignalsCacheKiB = 8192
	// IdentityCacheKiB bounds each connection's cache of the identity read model (identity.db).
	IdentityCacheKiB = 8192
)

// cachePragma is the DSN parameter that bounds a connection's page cache to kib KiB.
func cachePragma(kib int) string { return fmt.Sprintf("&_pragma=cache_size(-%d)", kib) }

// mapPragma is the DSN parameter that lets a connection read its file through a memory map of up to n
// bytes; none when n is 0.
func mapPragma(n int64) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("&_pragma=mmap_size(%d)", n)
}
