package tlog

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// File names inside a log directory. See the package documentation.
const (
	entriesName     = "entries"
	hashesName      = "hashes"
	checkpointsName = "checkpoints"
	lockName        = "lock"
)

// checkpointName is the tlog-tiles path at which the latest checkpoint is
// served (from memory; it is not a file).
const checkpointName = "checkpoint"

const (
	// maxEntrySize is the largest entry a log accepts: its length must fit
	// the uint16 prefix of C2SP entry bundles.
	maxEntrySize = 1<<16 - 1

	// tileHeight is the height of C2SP tiles: each holds up to 256 items.
	tileHeight = 8
	tileWidth  = 1 << tileHeight

	// ioBufSize is the read buffer used when scanning files on Open.
	ioBufSize = 1 << 20
)

// errClosed is returned by every method of a closed Log.
var errClosed = fmt.Errorf("tlog: log is closed: %w", os.ErrClosed)

// Log is a durable, append-only Merkle log stored in a directory. One
// goroutine appends (the sequencer); any number read concurrently.
//
// A Log must be created with [Open] and released with [Log.Close].
type Log struct {
	dir    string
	origin string
	signer note.Signer

	// entries and hashes are the data files and ckpts the checkpoint
	// slots. They are opened by Open and closed by Close; readers use
	// ReadAt, the writer WriteAt, so none depends on the file offset.
	entries *os.File
	hashes  *os.File
	ckpts   *os.File
	lock    *os.File // holds the advisory lock on the directory

	// wlock serializes Append and Close. The writer state below, and
	// writes to st, happen only while holding it.
	wlock   sync.Mutex
	werr    error // sticky error from an Append that failed writing the checkpoint
	wclosed bool
	slot    int    // the slot of ckpts holding the current checkpoint
	seq     uint64 // the sequence number of the current checkpoint
	slotBuf []byte // scratch space for encoding a slot
	// pendingAt is the offset in ckpts of the current slot's pending mark,
	// which Close clears, or -1 if it has none.
	pendingAt int64
	// entriesEnd and hashesEnd are the sizes of the data files: the
	// committed data, then zeros written ahead of it (see grow), and after
	// a failed Append whatever it wrote.
	entriesEnd, hashesEnd int64
	// oneRound says whether every checkpoint leaves room for a pending mark
	// in its slot, so that Append writes it in the same durability round as
	// its data; otherwise Append syncs the data first, then the slot.
	oneRound bool
	// syncs makes a round's files durable (syncer_linux.go).
	syncs *syncer

	// mu guards the committed state that readers see. The writer holds
	// it only to publish a new state, never during I/O.
	mu     sync.RWMutex
	closed bool
	st     state
}

// state is a committed, immutable view of the log. Slices in a state may
// share backing arrays with later states, but a state never reads past its
// own lengths and the writer only ever writes past the published lengths.
type state struct {
	size       int64
	offsets    []int64   // len size+1; offsets[i] is where entry i's length prefix starts in entries
	stored     hashSlice // len tlog.StoredHashCount(size)
	root       tlog.Hash // tree hash at size
	checkpoint []byte    // signed checkpoint note for size; never modified
}

// hashSlice is an in-memory tlog.HashReader over stored hashes indexed by
// stored hash index.
type hashSlice []tlog.Hash

// ReadHashes implements tlog.HashReader.
func (s hashSlice) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(s)) {
			return nil, fmt.Errorf("tlog: stored hash %d is not in the log (have %d)", x, len(s))
		}
		out[i] = s[x]
	}
	return out, nil
}

// Open opens (creating if needed) the log stored in dir with the given
// origin line and checkpoint signer.
//
// On open it recovers from a crash: of the two checkpoint slots, the valid
// one with the higher sequence number is authoritative (a slot torn by a
// crash is invalid and ignored); entry and hash data past the checkpoint's
// size (written but never committed) are truncated. It then rehashes every
// committed entry, compares the result with the stored hashes, and
// compares the tree hash with the checkpoint's; any difference is reported
// as corruption and Open fails, without falling back to the older slot. A
// new log gets a signed checkpoint of size 0 immediately.
//
// Open also fails if the checkpoint is not for origin or carries no
// signature by signer's key name and hash, if the directory has entry or
// hash data but no valid checkpoint slot (rather than discard that data),
// or if a checkpoint note for origin signed by signer could outgrow a slot.
// The signature itself can't be verified with a signer alone; the tree
// hash check is what detects damage.
func Open(dir, origin string, signer note.Signer) (_ *Log, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("tlog: opening log in %s: %w", dir, err)
		}
	}()
	if err := checkOrigin(origin); err != nil {
		return nil, err
	}
	if signer == nil {
		return nil, errors.New("nil signer")
	}
	// The longest checkpoint this log can sign has the largest size.
	longest, err := signCheckpoint(origin, math.MaxInt64, tlog.Hash{}, signer)
	if err != nil {
		return nil, err
	} else if len(longest) > maxNoteSize {
		return nil, fmt.Errorf("origin and key name too long: checkpoints could take %d bytes, more than a %s slot holds (%d)", len(longest), checkpointsName, maxNoteSize)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, origin: origin, signer: signer, pendingAt: -1, oneRound: len(longest) <= maxNoteSize-pendingSize,
		syncs: newSyncer()}
	defer func() {
		if err != nil {
			l.closeFiles()
		}
	}()

	if l.lock, err = os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, err
	}
	if err := lockFile(l.lock); err != nil {
		return nil, fmt.Errorf("locking %s: %w", lockName, err)
	}
	// Appends sync only file data, so the names of data files this Open
	// creates must be made durable by a sync of the directory.
	created := false
	openData := func(name string) (*os.File, error) {
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			created = true
			f, err = os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		}
		return f, err
	}
	if l.entries, err = openData(entriesName); err != nil {
		return nil, err
	}
	if l.hashes, err = openData(hashesName); err != nil {
		return nil, err
	}

	if err := l.load(created); err != nil {
		return nil, err
	}
	return l, nil
}

// checkOrigin reports whether origin can be the first line of a checkpoint
// note: non-empty UTF-8 without control characters.
func checkOrigin(origin string) error {
	if origin == "" {
		return errors.New("empty origin")
	}
	if !utf8.ValidString(origin) || strings.ContainsFunc(origin, func(r rune) bool { return r < 0x20 }) {
		return fmt.Errorf("origin %q has a control character or invalid UTF-8", origin)
	}
	return nil
}

// load opens the checkpoints file and loads the log from the authoritative
// checkpoint, or creates a new log if there is none and no data. created
// says whether Open created a data file.
func (l *Log) load(created bool) error {
	cpath := filepath.Join(l.dir, checkpointsName)
	var err error
	l.ckpts, err = os.OpenFile(cpath, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// A new log. Don't create the file if create will refuse.
		if err := l.checkNoData(); err != nil {
			return err
		}
		if l.ckpts, err = os.OpenFile(cpath, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
			return err
		}
		return l.create()
	}
	if err != nil {
		return err
	}
	fsize, slots, err := readSlots(l.ckpts)
	if err != nil {
		return err
	}
	cur := newestSlot(slots)
	if cur < 0 {
		// No valid slot: a crash while creating the log left the file
		// short or empty, or the file was damaged. Start over only if
		// there is nothing to lose.
		if err := l.checkNoData(); err != nil {
			return err
		}
		return l.create()
	}
	if fsize != checkpointsSize {
		return corruptf("%s holds %d bytes, want %d", checkpointsName, fsize, checkpointsSize)
	}
	other := slots[(cur+1)%slotCount]
	if other.ok && other.seq == slots[cur].seq {
		return corruptf("both %s slots hold sequence number %d", checkpointsName, other.seq)
	}
	// The newer valid slot is authoritative. If it doesn't match the data,
	// that is corruption (falling back to the older slot could silently
	// drop acknowledged entries), unless it is pending: written in the same
	// durability round as its data, and that round may not have finished.
	where := fmt.Sprintf("checkpoint %d in slot %d of %s", slots[cur].seq, cur, checkpointsName)
	if rerr := l.recover(slices.Clone(slots[cur].note), where); rerr != nil {
		prev, ok := l.interruptedRound(slots, cur, rerr)
		if !ok {
			return rerr
		}
		if err := l.recover(slices.Clone(slots[prev].note), fmt.Sprintf("checkpoint %d in slot %d of %s", slots[prev].seq, prev, checkpointsName)); err != nil {
			return fmt.Errorf("%w (and the checkpoint before it, of an append that may not have finished: %w)", rerr, err)
		}
		// Void the unfinished checkpoint, so that no later Open mistakes
		// it for the newest. A torn write leaves it voided or pending.
		if _, err := l.ckpts.WriteAt(make([]byte, slotHeaderSize), int64(cur)*slotSize); err != nil {
			return fmt.Errorf("voiding the checkpoint of an unfinished append: %w", err)
		}
		if err := datasync(l.ckpts); err != nil {
			return fmt.Errorf("voiding the checkpoint of an unfinished append: %w", err)
		}
		cur = prev
		if slots[cur].pending { // its round finished before the next began: Close settles it
			l.pendingAt = int64(cur)*slotSize + slotHeaderSize + int64(len(slots[cur].note))
		}
	} else if slots[cur].pending {
		// Its round may not have finished before a crash, though the data
		// matches (in the page cache): make it durable, then settle.
		if err := l.syncs.syncAll(l.entries, l.hashes); err != nil {
			return err
		}
		l.slot, l.seq = cur, slots[cur].seq
		l.pendingAt = int64(cur)*slotSize + slotHeaderSize + int64(len(slots[cur].note))
		if err := l.settlePending(); err != nil {
			return err
		}
	}
	if created {
		// Only an empty log can be missing a data file.
		if err := syncDir(l.dir); err != nil {
			return err
		}
	}
	l.slot, l.seq = cur, slots[cur].seq
	return nil
}

// interruptedRound reports whether err, the failure to recover the log from
// the newest slot cur, is what a crash during the durability round of that
// slot's Append leaves: the slot is pending, the other slot holds the
// checkpoint just before it (its sequence number and size), and the data
// doesn't match the newest (err is corruption). It returns the other slot,
// which Open then recovers from; if the damage isn't confined to the
// interrupted append's entries, that fails too.
func (l *Log) interruptedRound(slots [slotCount]slotState, cur int, err error) (prev int, ok bool) {
	prev = (cur + 1) % slotCount
	newest, older := slots[cur], slots[prev]
	if !errors.Is(err, errCorrupt) || !newest.pending || !older.ok || older.seq != newest.seq-1 {
		return 0, false
	}
	size, _, perr := parseOwnCheckpoint(older.note, l.origin, l.signer)
	if perr != nil || size != newest.prevSize {
		return 0, false
	}
	return prev, true
}

// checkNoData returns an error unless the data files are empty, for a log
// without a valid checkpoint: rather than discard data, Open refuses.
func (l *Log) checkNoData() error {
	for _, f := range []*os.File{l.entries, l.hashes} {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.Size() != 0 {
			return fmt.Errorf("no valid checkpoint in %s but %s holds %d bytes; refusing to discard them (restore the %s file)",
				checkpointsName, filepath.Base(f.Name()), fi.Size(), checkpointsName)
		}
	}
	return nil
}

// create initializes an empty log, whose data files the caller checked are
// empty: it commits a checkpoint of size 0 in a new checkpoints file.
func (l *Log) create() error {
	root, err := tlog.TreeHash(0, hashSlice(nil))
	if err != nil {
		return err
	}
	cp, err := signCheckpoint(l.origin, 0, root, l.signer)
	if err != nil {
		return err
	}
	if err := l.initCheckpoints(cp); err != nil {
		return err
	}
	l.st = state{size: 0, offsets: []int64{0}, root: root, checkpoint: cp}
	return nil
}

// recover loads a log whose committed state is described by the checkpoint
// cp, found where (for errors): it truncates uncommitted data and checks
// everything committed.
func (l *Log) recover(cp []byte, where string) error {
	size, root, err := parseOwnCheckpoint(cp, l.origin, l.signer)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	efi, err := l.entries.Stat()
	if err != nil {
		return err
	}
	hfi, err := l.hashes.Stat()
	if err != nil {
		return err
	}

	// Every entry takes at least 3 bytes. Checking this first also keeps
	// the arithmetic below far from overflow.
	if size > efi.Size()/3 {
		return corruptf("%s holds %d bytes, too few for %d committed entries", entriesName, efi.Size(), size)
	}

	// Rebuild the offsets and recompute every stored hash from the entries.
	// The hashes capacity is bounded by the file size, not the checkpoint,
	// so a damaged checkpoint can't make us allocate absurd amounts.
	offsets := make([]int64, 1, size+1)
	stored := make(hashSlice, 0, min(tlog.StoredHashCount(size), hfi.Size()/tlog.HashSize))
	r := bufio.NewReaderSize(io.NewSectionReader(l.entries, 0, efi.Size()), ioBufSize)
	buf := make([]byte, maxEntrySize)
	var end int64
	for i := int64(0); i < size; i++ {
		if _, err := io.ReadFull(r, buf[:2]); err != nil {
			return corruptf("%s ends after %d of %d committed entries", entriesName, i, size)
		}
		n := int(binary.BigEndian.Uint16(buf))
		if n == 0 {
			return corruptf("%s has an empty entry at index %d (offset %d)", entriesName, i, end)
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return corruptf("%s ends inside entry %d of %d committed entries", entriesName, i, size)
		}
		end += 2 + int64(n)
		offsets = append(offsets, end)
		hs, err := tlog.StoredHashes(i, buf[:n], stored)
		if err != nil {
			return err
		}
		stored = append(stored, hs...)
	}

	// Compare with the stored hashes.
	want := tlog.StoredHashCount(size)
	if hfi.Size() < want*tlog.HashSize {
		return corruptf("%s holds %d bytes, want at least %d for %d committed entries", hashesName, hfi.Size(), want*tlog.HashSize, size)
	}
	r = bufio.NewReaderSize(io.NewSectionReader(l.hashes, 0, want*tlog.HashSize), ioBufSize)
	var h tlog.Hash
	for i := range want {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return fmt.Errorf("reading %s: %w", hashesName, err)
		}
		if h != stored[i] {
			level, n := tlog.SplitStoredHashIndex(i)
			return corruptf("stored hash %d (level %d, node %d) in %s doesn't match the entries", i, level, n, hashesName)
		}
	}
	got, err := tlog.TreeHash(size, stored)
	if err != nil {
		return err
	}
	if got != root {
		return corruptf("%s has root %v for size %d but the stored entries hash to %v", where, root, size, got)
	}

	// Drop anything written after the last commit.
	for _, t := range []struct {
		f         *os.File
		have, end int64
	}{{l.entries, efi.Size(), end}, {l.hashes, hfi.Size(), want * tlog.HashSize}} {
		if t.have == t.end {
			continue
		}
		if err := t.f.Truncate(t.end); err != nil {
			return fmt.Errorf("truncating uncommitted data: %w", err)
		}
		if err := t.f.Sync(); err != nil {
			return fmt.Errorf("truncating uncommitted data: %w", err)
		}
	}

	l.st = state{size: size, offsets: offsets, stored: stored, root: root, checkpoint: cp}
	l.entriesEnd, l.hashesEnd = end, want*tlog.HashSize
	return nil
}

// errCorrupt marks the errors of corruptf.
var errCorrupt = errors.New("corrupt log")

// corruptf returns an error describing a log whose files don't match its
// checkpoint.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
}

// Append adds entries (each 1..65535 bytes, else error and nothing written)
// at the end of the log and makes them durable with a signed checkpoint
// covering them, in one durability round: one write to each data file, one
// in-place write of the new checkpoint, marked pending, to the slot not
// holding the current one, then fdatasync of the three files in parallel.
// It returns the index of the first new entry and the new signed
// checkpoint.
//
// A batch costs one durability round, whatever its length, and creates,
// renames or syncs no directory. The previous checkpoint stays intact until
// the new one is durable, and if a crash interrupts the round, Open falls
// back to it (see the package documentation). Readers see the new entries
// only once the round is over.
// Appending no entries writes nothing and returns the current size and
// checkpoint.
//
// Append is meant for a single writer; concurrent calls are serialized.
// An error while writing the data files (a full disk), or while signing,
// leaves the committed log as it was: the bytes written past the committed
// end are truncated (best effort: Open truncates them anyway), and the next
// Append writes its entries at the same indexes. An error once the
// checkpoint slot is being written (that write, or any sync of the round)
// is different: the slot may or may not hold the new checkpoint, and the
// data may or may not be durable, so the Log refuses further appends with
// that error, and the caller must Close and reopen it (Open settles which
// checkpoint is current). Rejected entries are not an error of either
// kind, nor is a ctx already done, which writes nothing (file writes, once
// begun, are not cancelled).
func (l *Log) Append(ctx context.Context, entries [][]byte) (first int64, checkpoint []byte, err error) {
	if err := ctx.Err(); err != nil { // file writes cannot be cancelled once begun
		return 0, nil, fmt.Errorf("tlog: append: %w", err)
	}
	for i, e := range entries {
		if len(e) == 0 || len(e) > maxEntrySize {
			return 0, nil, fmt.Errorf("tlog: append: entry %d has %d bytes, want 1 to %d", i, len(e), maxEntrySize)
		}
	}
	l.wlock.Lock()
	defer l.wlock.Unlock()
	if l.wclosed {
		return 0, nil, errClosed
	}
	if l.werr != nil {
		return 0, nil, l.werr
	}
	// l.st is only written by the writer, so it may read it without mu.
	if len(entries) == 0 {
		return l.st.size, slices.Clone(l.st.checkpoint), nil
	}
	st, err := l.write(entries)
	if errors.Is(err, errCheckpointWrite) {
		l.werr = fmt.Errorf("tlog: append at %d failed, reopen the log: %w", l.st.size, err)
		return 0, nil, l.werr
	}
	if err != nil {
		// Give back what the failed write took (on a full disk, the room the next try needs).
		old := l.st
		terr := errors.Join(l.entries.Truncate(l.entriesEnd), l.hashes.Truncate(l.hashesEnd))
		if terr != nil {
			err = fmt.Errorf("%w (and truncating it: %w)", err, terr)
		}
		return 0, nil, fmt.Errorf("tlog: append at %d failed, nothing stored: %w", old.size, err)
	}
	first = l.st.size
	l.mu.Lock()
	l.st = st
	l.mu.Unlock()
	return first, slices.Clone(st.checkpoint), nil
}

// errCheckpointWrite marks a failure to write or sync the checkpoint slot, after which Append can't tell
// which checkpoint is durable.
var errCheckpointWrite = errors.New("checkpoint slot not written")

// write makes entries durable after the committed state and returns the new
// state, which the caller publishes. It must be called with wlock held.
func (l *Log) write(entries [][]byte) (state, error) {
	old := l.st
	total := 0
	for _, e := range entries {
		total += 2 + len(e)
	}
	buf := make([]byte, 0, total)

	// Appending to old's slices only writes past their lengths, which no
	// reader looks at; if they must grow, readers keep the old arrays.
	offsets := slices.Grow(old.offsets, len(entries))
	stored := slices.Grow(old.stored, 2*len(entries)+tileHeight)
	end := old.offsets[old.size]
	for i, e := range entries {
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(e)))
		buf = append(buf, e...)
		end += 2 + int64(len(e))
		offsets = append(offsets, end)
		hs, err := tlog.StoredHashes(old.size+int64(i), e, stored)
		if err != nil {
			return state{}, err
		}
		stored = append(stored, hs...)
	}
	newHashes := stored[len(old.stored):]
	hbuf := make([]byte, 0, len(newHashes)*tlog.HashSize)
	for _, h := range newHashes {
		hbuf = append(hbuf, h[:]...)
	}

	size := old.size + int64(len(entries))
	root, err := tlog.TreeHash(size, stored)
	if err != nil {
		return state{}, err
	}
	cp, err := signCheckpoint(l.origin, size, root, l.signer)
	if err != nil {
		return state{}, err
	}
	if _, err := l.entries.WriteAt(buf, old.offsets[old.size]); err != nil {
		return state{}, fmt.Errorf("writing %s: %w", entriesName, err)
	}
	if _, err := l.hashes.WriteAt(hbuf, int64(len(old.stored))*tlog.HashSize); err != nil {
		return state{}, fmt.Errorf("writing %s: %w", hashesName, err)
	}
	l.entriesEnd = grow(l.entries, l.entriesEnd, end)
	l.hashesEnd = grow(l.hashes, l.hashesEnd, int64(len(stored))*tlog.HashSize)
	next := state{size: size, offsets: offsets, stored: stored, root: root, checkpoint: cp}
	if !l.oneRound {
		if err := l.syncs.syncAll(l.entries, l.hashes); err != nil {
			return state{}, err
		}
		if err := l.writeCheckpoint(cp); err != nil {
			return state{}, fmt.Errorf("%w: %w", errCheckpointWrite, err)
		}
		return next, nil
	}
	// One round: the pending slot and the data it covers are synced
	// together. From the slot write on, a failure leaves the slot holding
	// the new checkpoint or not, and its data durable or not.
	if err := l.writePendingCheckpoint(cp, old.size); err != nil {
		return state{}, fmt.Errorf("%w: %w", errCheckpointWrite, err)
	}
	if err := l.syncs.syncAll(l.entries, l.hashes, l.ckpts); err != nil {
		return state{}, fmt.Errorf("%w: %w", errCheckpointWrite, err)
	}
	l.committedPending(len(cp))
	return next, nil
}

// Zeros written ahead of the data. See grow.
const (
	minGrowth = 4 << 10
	maxGrowth = 4 << 20
)

// grow makes f, whose size was size before an append that wrote up to end,
// hold zeros past end (a quarter of end, at least minGrowth and at most
// maxGrowth, then up to a multiple of minGrowth) whenever end passed size,
// and returns its new size. Later appends then overwrite blocks that are
// already allocated and within the file's size, so the fdatasync that makes
// them durable needs no file-system journal commit, which (shared by every
// file of the file system) is the slow part of a sync. The zeros are
// uncommitted data: Open truncates them, and so does Close. Growing is
// best effort; a write that fails (a full disk) leaves what it wrote.
func grow(f *os.File, size, end int64) int64 {
	if end <= size {
		return size
	}
	ahead := min(max(end/4, minGrowth), maxGrowth)
	target := (end + ahead + minGrowth - 1) / minGrowth * minGrowth
	n, _ := f.WriteAt(make([]byte, target-end), end)
	return end + int64(n)
}

// datasyncAll fdatasyncs files concurrently, one goroutine each but the
// first, which the caller's goroutine syncs.
func datasyncAll(files ...*os.File) error {
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files[1:] {
		wg.Go(func() { errs[i+1] = datasync(f) })
	}
	errs[0] = datasync(files[0])
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("syncing %s: %w", filepath.Base(files[i].Name()), err)
		}
	}
	return nil
}

// view returns the committed state.
func (l *Log) view() (state, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return state{}, errClosed
	}
	return l.st, nil
}

// Size returns the committed tree size: the number of entries covered by
// the latest checkpoint.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.st.size
}

// Checkpoint returns the latest signed checkpoint note, exactly as served
// at "checkpoint". The caller may modify the returned slice.
func (l *Log) Checkpoint() []byte {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return slices.Clone(l.st.checkpoint)
}

// Origin returns the log's origin line.
func (l *Log) Origin() string { return l.origin }

// Entry returns the committed entry at index. An index outside the
// committed log gives an error wrapping [ErrNotFound]. It reads a local
// file and ignores ctx, which the api.Log interface carries for logs in a
// database.
func (l *Log) Entry(_ context.Context, index int64) ([]byte, error) {
	st, err := l.view()
	if err != nil {
		return nil, err
	}
	if index < 0 || index >= st.size {
		return nil, fmt.Errorf("tlog: entry %d: %w (log size %d)", index, ErrNotFound, st.size)
	}
	start, end := st.offsets[index]+2, st.offsets[index+1]
	buf := make([]byte, end-start)
	if _, err := l.entries.ReadAt(buf, start); err != nil {
		return nil, fmt.Errorf("tlog: reading entry %d: %w", index, err)
	}
	return buf, nil
}

// RootHash returns the RFC 6962 tree hash of the log's first size entries,
// for 0 ≤ size ≤ Size().
func (l *Log) RootHash(size int64) (tlog.Hash, error) {
	st, err := l.view()
	if err != nil {
		return tlog.Hash{}, err
	}
	if size < 0 || size > st.size {
		return tlog.Hash{}, fmt.Errorf("tlog: root hash for size %d: want 0 to %d", size, st.size)
	}
	if size == st.size {
		return st.root, nil
	}
	h, err := tlog.TreeHash(size, st.stored)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("tlog: root hash for size %d: %w", size, err)
	}
	return h, nil
}

// InclusionProof returns the proof, computed by tlog.ProveRecord, that the
// tree of the given size contains the entry at index, for
// 0 ≤ index < size ≤ Size(). Check it with tlog.CheckRecord against
// tlog.RecordHash of the entry.
func (l *Log) InclusionProof(index, size int64) (tlog.RecordProof, error) {
	st, err := l.view()
	if err != nil {
		return nil, err
	}
	if index < 0 || index >= size || size > st.size {
		return nil, fmt.Errorf("tlog: inclusion proof of %d in size %d: want 0 ≤ index < size ≤ %d", index, size, st.size)
	}
	p, err := tlog.ProveRecord(size, index, st.stored)
	if err != nil {
		return nil, fmt.Errorf("tlog: inclusion proof of %d in size %d: %w", index, size, err)
	}
	return p, nil
}

// InclusionProofs returns InclusionProof(n, size) for each n of indexes, computing the hashes the proofs
// share once (ProveRecords): the receipts of a batch of transactions.
func (l *Log) InclusionProofs(indexes []int64, size int64) ([]tlog.RecordProof, error) {
	st, err := l.view()
	if err != nil {
		return nil, err
	}
	if size > st.size {
		return nil, fmt.Errorf("tlog: inclusion proofs in size %d: want size ≤ %d", size, st.size)
	}
	return ProveRecords(size, indexes, st.stored)
}

// ConsistencyProof returns the proof, computed by tlog.ProveTree, that the
// tree of the given size extends the tree of oldSize, for
// 1 ≤ oldSize ≤ size ≤ Size(). Check it with tlog.CheckTree. (Every tree
// extends the empty tree, and tlog has no proof for that case.)
func (l *Log) ConsistencyProof(oldSize, size int64) (tlog.TreeProof, error) {
	st, err := l.view()
	if err != nil {
		return nil, err
	}
	if oldSize < 1 || oldSize > size || size > st.size {
		return nil, fmt.Errorf("tlog: consistency proof from %d to %d: want 1 ≤ old size ≤ size ≤ %d", oldSize, size, st.size)
	}
	p, err := tlog.ProveTree(size, oldSize, st.stored)
	if err != nil {
		return nil, fmt.Errorf("tlog: consistency proof from %d to %d: %w", oldSize, size, err)
	}
	return p, nil
}

// Close waits for an Append in progress, clears the pending mark of the
// current checkpoint's slot (durably; not after a failed Append, whose
// slot Open settles), truncates the zeros written ahead of the data, then
// closes the log's files and releases its directory lock. Afterwards every
// method returns an error (Size, Checkpoint and Origin keep answering).
// Closing twice is a no-op.
func (l *Log) Close() error {
	l.wlock.Lock()
	defer l.wlock.Unlock()
	if l.wclosed {
		return nil
	}
	l.wclosed = true
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	var serr error
	if l.werr == nil { // after a failed append, Open settles what the slot holds
		serr = l.settlePending()
	}
	// Drop the zeros written ahead (Open would anyway).
	for _, t := range []struct {
		f         *os.File
		have, end int64
	}{{l.entries, l.entriesEnd, l.st.offsets[l.st.size]}, {l.hashes, l.hashesEnd, int64(len(l.st.stored)) * tlog.HashSize}} {
		if t.have > t.end {
			serr = errors.Join(serr, t.f.Truncate(t.end))
		}
	}
	if err := errors.Join(serr, l.closeFiles()); err != nil {
		return fmt.Errorf("tlog: closing log in %s: %w", l.dir, err)
	}
	return nil
}

// closeFiles closes whichever files are open.
func (l *Log) closeFiles() error {
	l.syncs.close()
	var errs []error
	for _, f := range []*os.File{l.entries, l.hashes, l.ckpts, l.lock} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}
