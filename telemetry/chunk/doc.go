// Package chunk encodes the signal values of one vehicle's signal over a span of time (the stores keep
// one chunk per vehicle, signal and UTC hour, docs/columnar.md) as compressed bytes, and decodes them,
// together with each chunk's summary: count, first and last time and value, minimum, maximum and the
// exact sum (Sum) that makes an average independent of how values were grouped.
//
// It owns the byte formats below and nothing else: it imports only the standard library, none of this
// module's packages (not telemetry, not a store), so that both stores and the benchmark can use it and
// the format can be checked on its own. It must never import a database driver or Prometheus.
//
// # The XOR format
//
// Numbers are kept in the Gorilla XOR format (Pelkonen et al., "Gorilla: A Fast, Scalable, In-Memory
// Time Series Database", VLDB 2015) in the exact byte layout of the XOR chunks of Prometheus's
// tsdb/chunkenc, so that either codec reads the other's chunks (internal/enginebench checks this byte for
// byte). Times are int64 (the stores use unix milliseconds), values float64, bits written most
// significant first:
//
//   - 2 bytes: the number of samples, big-endian (at most 65,535).
//   - the first sample: its time as a signed varint (encoding/binary's zig-zag varint), then the
//     value's 64 bits.
//   - the second sample: the time minus the first time as an unsigned varint of its two's complement,
//     then the value XOR-encoded (below).
//   - every later sample: the delta of deltas d (this time minus the last, minus the last such delta):
//     '0' if d is 0; '10' and d's low 14 bits if -8191 ≤ d ≤ 8192; '110' and 17 bits if -65535 ≤ d ≤
//     65536; '1110' and 20 bits if -524287 ≤ d ≤ 524288; otherwise '1111' and all 64 bits. Then the
//     value XOR-encoded.
//   - a value XOR-encoded: x is its bits XOR the previous value's bits. '0' if x is 0; otherwise '1',
//     then '0' and the bits of x between the previous leading and trailing zero counts if x fits inside
//     them (not for the first x written), or else '1', the count of x's leading zeros (5 bits, at most
//     31), the count of its meaningful bits (6 bits, 64 written as 0) and those bits.
//   - zero bits up to the end of the last byte.
//
// A regular 1 Hz series costs about one bit a time, an unchanged value one bit. Any int64 times are
// encoded as chunkenc encodes them; Floats, Strings and Locations demand strictly increasing times (one
// value per millisecond, as the stores' keys do) and at most MaxValues values.
//
// # Strings and locations
//
// A Strings chunk is a dictionary of its distinct strings in order of first use and one XOR stream of
// (time, index in the dictionary): the unsigned varint length of the stream, the stream, the unsigned
// varint count of entries, then each entry as an unsigned varint length and its bytes. A Locations chunk
// is three XOR streams with the same times, of latitude, longitude and HDOP: the varint length and bytes
// of the first two, then the third up to the end. Booleans are the numbers 0 and 1.
//
// # Decoding
//
// Decoders take bytes read from disk: they never panic, and they accept only what the encoders write
// (a count that matches, no bytes or nonzero bits after the last value, times increasing, every
// dictionary entry used once in order of first use). Every error wraps ErrCorrupt with what was wrong
// and where.
package chunk
