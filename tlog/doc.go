// Package tlog implements Glovebox's append-only Merkle transparency log,
// stored in a directory on local disk.
//
// It implements:
//
//   - the read paths of C2SP tlog-tiles (https://c2sp.org/tlog-tiles):
//     "checkpoint", hash tiles "tile/<L>/<N>[.p/<W>]" of height 8, and
//     entry bundles "tile/entries/<N>[.p/<W>]", served by [Log.ReadTile]
//     and over HTTP by [Log.Handler];
//   - C2SP tlog-checkpoint checkpoints (https://c2sp.org/tlog-checkpoint),
//     encoded with github.com/transparency-dev/formats/log and signed as
//     C2SP signed notes (https://c2sp.org/signed-note) with an Ed25519 key
//     through golang.org/x/mod/sumdb/note;
//   - RFC 6962 Merkle tree hashing, inclusion proofs and consistency proofs,
//     all computed by golang.org/x/mod/sumdb/tlog. This package contains no
//     Merkle hashing or signing code of its own.
//
// The helpers [TilePath], [ParseEntryBundle] and [OpenCheckpoint] let a
// remote verifier that downloaded tiles over HTTP check them with
// tlog.TileHashReader, tlog.CheckRecord and tlog.CheckTree.
//
// # Storage layout
//
// A log directory holds these files:
//
//   - entries: the concatenation, for every entry in order, of the entry's
//     length as a big-endian uint16 followed by the entry (1 to 65535
//     bytes). A run of 256 consecutive records is therefore byte for byte
//     the C2SP entry bundle, so bundles are served with one read. Entry
//     offsets are kept in memory (8 bytes per entry) and rebuilt by
//     scanning the file on Open.
//   - hashes: every stored hash of the tree (tlog.StoredHashCount(n) hashes
//     of 32 bytes for n entries, in stored-hash-index order), appended per
//     batch. All hashes are also kept in memory, so proofs and hash tiles
//     are served without disk access. Memory cost: about 64 bytes of hashes
//     per entry, 72 bytes per entry including the offsets.
//   - checkpoint: the latest signed checkpoint note, exactly as served.
//     It is replaced atomically (write checkpoint.tmp, fsync, rename, fsync
//     the directory) and is the authority on what has been committed.
//   - lock: an advisory lock (flock where available) held while the log is
//     open, so two processes can't append to the same directory.
//
// # Durability and recovery
//
// [Log.Append] writes a whole batch with one write per data file, fsyncs
// both, and only then signs and installs the new checkpoint. A crash can
// therefore leave bytes in entries and hashes past the checkpoint's size,
// but never a checkpoint that covers missing data. [Open] treats the
// checkpoint as authoritative: it truncates uncommitted data past the
// checkpoint's size, rehashes every committed entry, checks each stored
// hash against the recomputed one and the tree hash against the
// checkpoint's, and refuses to open a log that doesn't match (corruption).
// This check costs one pass over the log, O(size).
//
// # Concurrency
//
// One goroutine appends (the sequencer); any number of goroutines read
// concurrently. Readers only see committed state: a batch becomes visible
// after its checkpoint is durable. Appends publish the new size, offsets and
// hashes under a short write lock; the disk I/O and fsyncs happen outside
// it, so readers never wait for an fsync.
package tlog
