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
//     scanning the file on Open. While the log is open the file ends in
//     zeros written ahead of the data (see Durability and recovery); Close and Open
//     truncate them.
//   - hashes: every stored hash of the tree (tlog.StoredHashCount(n) hashes
//     of 32 bytes for n entries, in stored-hash-index order), appended per
//     batch, and like entries followed by zeros while the log is open. All
//     hashes are also kept in memory, so proofs and hash tiles
//     are served without disk access. Memory cost: about 64 bytes of hashes
//     per entry, 72 bytes per entry including the offsets.
//   - checkpoints: the latest signed checkpoint note, exactly as served,
//     and the one before it, in two slots of 4096 bytes (the file is
//     exactly 8192 bytes). It is created, written in full and fsynced, with
//     its directory (which also makes the names of entries and hashes
//     durable), once when the log is created, and afterwards only
//     overwritten in place. It is the authority on what has been committed.
//   - lock: an advisory lock (flock where available) held while the log is
//     open, so two processes can't append to the same directory.
//
// Each slot of checkpoints holds, from its first byte:
//
//	magic        4 bytes  "GBC1"
//	sequence     8 bytes  big-endian uint64, incremented by every checkpoint
//	length       4 bytes  big-endian uint32, the note's length, 1 to 4076
//	crc          4 bytes  big-endian CRC-32C (Castagnoli) of the sequence,
//	                      length and note bytes, in that order
//	note         length bytes, the signed checkpoint note
//	padding      zero bytes up to the end of the slot, but for a pending
//	             mark (below)
//
// A slot is valid if its magic, length and CRC are; the padding isn't
// checked. A new log has the size-0 checkpoint with sequence number 1 in
// slot 0 and zeros in slot 1. Each later checkpoint, with the next sequence
// number, goes to the slot not holding the current one, so the slots
// alternate and the current checkpoint stays intact until the next is
// durable.
//
// A slot written by an Append also carries, in the padding right after the
// note, a pending mark:
//
//	magic        4 bytes  "GBP1"
//	prev size    8 bytes  big-endian uint64, the size of the checkpoint
//	                      before this one (in the other slot)
//	crc          4 bytes  big-endian CRC-32C of the slot's crc field and
//	                      the prev size, in that order
//
// It says that the slot was made durable in the same round as the entries
// it covers, so that a crash during that round can leave the slot durable
// and some of those entries not. Close clears the mark of the current slot
// (it writes zeros over the mark and fdatasyncs: a torn write leaves the
// slot valid, with or without its mark), and so does Open once it has
// checked the slot against the data and made the data durable. Builds
// before the mark ignore it, as they ignore all padding.
//
// # Durability and recovery
//
// [Log.Append] writes a whole batch with one write per data file, then the
// new signed checkpoint, with a pending mark, in place to the slot not
// holding the current one, and then fdatasyncs the three files in
// parallel: one durability round per batch. It returns once all three are
// durable. Before the round, the previous round made the previous
// checkpoint and all it covers durable, and this round overwrites nothing
// they need. Nothing creates, renames or syncs a directory. Where
// fdatasync is unavailable, fsync is used. On Linux the round's fdatasyncs
// are handed to the kernel as asynchronous I/O (io_submit with
// IOCB_CMD_FDSYNC, run by the kernel as the same fdatasync), and Append
// waits for their completions on an eventfd through the Go runtime's
// poller, so that the goroutine waiting for the disk holds no Go processor;
// where the kernel refuses asynchronous I/O, each file is fdatasynced by a
// goroutine of its own. (For an origin and key name so
// long that a checkpoint leaves no room for the mark in its slot, Append
// falls back to two rounds: the data files, then the slot, unmarked.)
//
// Each data file is kept ahead of its data by zeros written beyond it: an
// append that outgrows them writes the next zeros with its data, a quarter
// of the file's data (at least 4 KiB, at most 4 MiB), up to a multiple of
// 4 KiB. Small, so that on a full disk appends soon fail rather than live
// on the room reserved; geometric, so that a large log grows its files
// once every few thousand appends at most. Most appends therefore overwrite blocks that are already allocated
// and within the file's size, and their fdatasync flushes only data, with
// no commit of the file system's journal, which every other file of the
// file system shares. The zeros are data past the checkpoint, which Open
// truncates like any other.
//
// A crash can therefore leave bytes in entries and hashes past the newest
// checkpoint's size, a torn slot, or, during a round, a durable pending
// slot whose entries or hashes did not all reach the disk.
//
// [Open] reads both slots and ignores an invalid one: a slot write torn by
// a crash, whose batch was never acknowledged. (Damage that
// invalidates the newer slot after its Append returned looks the same, and
// rolls the log back by that one batch.) The valid
// slot with the higher sequence number is authoritative: Open checks that
// its checkpoint is for the log's origin and signed with the log's key
// name and hash, truncates uncommitted data past the checkpoint's size,
// rehashes every committed entry, checks each stored hash against the
// recomputed one and the tree hash against the checkpoint's, and refuses
// to open a log that doesn't match (corruption). It falls back to the
// older slot only when the newer one has an intact pending mark, the older
// one holds the checkpoint just before it (sequence number one less, the
// size the mark names) and matches the data: a crash interrupted the
// newer one's round, which was never acknowledged. (Damage after that
// Append returned, to its entries or hashes, while the slot is still
// pending, looks the same and rolls the log back by that batch, as a
// damaged slot does.) Open then voids the newer slot (zeros over its
// header, fdatasynced) so that no later Open mistakes it for the newest.
// Otherwise it never falls back, as that could silently drop acknowledged
// entries. If neither slot is valid, Open starts
// a new log if the data files are empty (a crash while creating the log)
// and refuses otherwise. If Open has to create a missing data file of an
// existing (empty) log, it syncs the directory. The check costs one pass
// over the log, O(size).
//
// A torn write of the pending mark reads as no mark. The note and the mark
// that follows it are written together, and for any checkpoint of this
// package (a few hundred bytes) both lie in the slot's first 512-byte
// sector; only a write torn inside that sector, right between the note and
// the mark, after which the round didn't finish, would leave a slot that
// is valid, unmarked and ahead of its data: Open then refuses the log as
// corrupt rather than guess.
//
// A failed Append leaves the committed log as it was. When the data files
// could not be written (a full disk), it truncates what it wrote past
// the committed end and the zeros ahead of it, and the next Append writes
// at the same indexes. Once the slot has been written, a failure (of that
// write, or of any sync of the round) leaves the slot holding the new
// checkpoint or not, and its data durable or not, so the Log refuses
// further appends until it is closed and reopened, and Open settles which
// checkpoint is current; the batch its caller was told had failed may then
// turn out to be committed. The slots are written in place over blocks
// allocated when the log was created, so a full disk does not fail them.
//
// # Concurrency
//
// One goroutine appends (the sequencer); any number of goroutines read
// concurrently. Readers only see committed state: a batch becomes visible
// after its checkpoint is durable. Appends publish the new size, offsets and
// hashes under a short write lock; the disk I/O and syncs happen outside
// it, so readers never wait for a sync.
//
// It imports no other Glovebox package and knows nothing of what the entries mean.
package tlog
