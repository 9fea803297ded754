package tlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
)

// The checkpoints file holds two fixed-size slots, each able to hold one
// signed checkpoint note. See the package documentation for the layout.
const (
	slotSize        = 4096
	slotCount       = 2
	checkpointsSize = slotCount * slotSize

	slotMagic      = "GBC1"
	slotHeaderSize = 4 + 8 + 4 + 4 // magic, sequence number, note length, CRC-32C

	// maxNoteSize is the largest checkpoint note a slot holds.
	maxNoteSize = slotSize - slotHeaderSize

	// pendingMagic opens the pending mark, which follows the note of a
	// slot written in the same durability round as its data (see the
	// package documentation).
	pendingMagic = "GBP1"
	pendingSize  = 4 + 8 + 4 // magic, previous size, CRC-32C
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// slotCRC returns the CRC-32C of a slot's sequence number and note length
// (hdr, the 12 bytes after the magic) followed by its note.
func slotCRC(hdr, note []byte) uint32 {
	return crc32.Update(crc32.Checksum(hdr, castagnoli), castagnoli, note)
}

// encodeSlot fills slot, slotSize bytes long, with the checkpoint note and
// its sequence number, padded with zeros. The note must be 1 to maxNoteSize
// bytes long.
func encodeSlot(slot []byte, seq uint64, note []byte) {
	copy(slot, slotMagic)
	binary.BigEndian.PutUint64(slot[4:], seq)
	binary.BigEndian.PutUint32(slot[12:], uint32(len(note)))
	n := copy(slot[slotHeaderSize:], note)
	clear(slot[slotHeaderSize+n:])
	binary.BigEndian.PutUint32(slot[16:], slotCRC(slot[4:16], note))
}

// parseSlot returns the sequence number and note held by slot (at most
// slotSize bytes; fewer if the file is short). ok is false if the slot
// doesn't hold a complete note: a bad magic, a length of zero or past the
// slot, or a CRC mismatch, as a torn slot write leaves behind. The note
// aliases slot. The padding is not checked.
func parseSlot(slot []byte) (seq uint64, note []byte, ok bool) {
	if len(slot) < slotHeaderSize || string(slot[:4]) != slotMagic {
		return 0, nil, false
	}
	n := int64(binary.BigEndian.Uint32(slot[12:]))
	if n == 0 || n > maxNoteSize || n > int64(len(slot)-slotHeaderSize) {
		return 0, nil, false
	}
	note = slot[slotHeaderSize : slotHeaderSize+n]
	if slotCRC(slot[4:16], note) != binary.BigEndian.Uint32(slot[16:]) {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(slot[4:]), note, true
}

// markPending writes the pending mark after the note of slot, which
// encodeSlot filled: it says that the slot was written in the same
// durability round as the data it covers, and that the checkpoint before it
// was of prevSize entries. The note must leave pendingSize bytes free.
func markPending(slot []byte, prevSize int64) {
	n := int(binary.BigEndian.Uint32(slot[12:]))
	m := slot[slotHeaderSize+n : slotHeaderSize+n+pendingSize]
	copy(m, pendingMagic)
	binary.BigEndian.PutUint64(m[4:], uint64(prevSize))
	binary.BigEndian.PutUint32(m[12:], pendingCRC(slot[16:20], m[4:12]))
}

// pendingCRC returns the CRC-32C of a slot's CRC followed by the previous
// size of its pending mark, which ties the mark to the note it follows.
func pendingCRC(slotCRC, prevSize []byte) uint32 {
	return crc32.Update(crc32.Checksum(slotCRC, castagnoli), castagnoli, prevSize)
}

// parsePending returns the previous size of the pending mark following the
// note of slot, a valid slot, and whether it has an intact one. A mark torn
// by a crash, or cleared, reads as none.
func parsePending(slot []byte) (prevSize int64, ok bool) {
	end := slotHeaderSize + int(binary.BigEndian.Uint32(slot[12:]))
	if end+pendingSize > len(slot) {
		return 0, false
	}
	m := slot[end : end+pendingSize]
	if string(m[:4]) != pendingMagic || pendingCRC(slot[16:20], m[4:12]) != binary.BigEndian.Uint32(m[12:]) {
		return 0, false
	}
	prev := binary.BigEndian.Uint64(m[4:])
	if prev > math.MaxInt64 {
		return 0, false
	}
	return int64(prev), true
}

// slotState is a parsed slot of the checkpoints file.
type slotState struct {
	ok   bool
	seq  uint64
	note []byte
	// pending says whether the slot has an intact pending mark, and
	// prevSize is then the size of the checkpoint before it.
	pending  bool
	prevSize int64
}

// readSlots reads and parses both slots of the checkpoints file f and
// returns them with the file's size. A short file gives slots that are
// invalid or cut short.
func readSlots(f *os.File) (size int64, slots [slotCount]slotState, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, slots, err
	}
	buf := make([]byte, checkpointsSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, slots, fmt.Errorf("reading %s: %w", checkpointsName, err)
	}
	for i := range slots {
		lo, hi := i*slotSize, min((i+1)*slotSize, n)
		if lo >= hi {
			continue
		}
		if seq, note, ok := parseSlot(buf[lo:hi]); ok {
			slots[i] = slotState{ok: true, seq: seq, note: note}
			slots[i].prevSize, slots[i].pending = parsePending(buf[lo:hi])
		}
	}
	return fi.Size(), slots, nil
}

// newestSlot returns the index of the valid slot with the highest sequence
// number, or -1 if no slot is valid.
func newestSlot(slots [slotCount]slotState) int {
	cur := -1
	for i, s := range slots {
		if s.ok && (cur < 0 || s.seq > slots[cur].seq) {
			cur = i
		}
	}
	return cur
}

// writeCheckpoint durably writes cp, the signed checkpoint that follows the
// current one, to the slot not holding the current checkpoint, so that the
// current one stays intact until cp is durable. It writes the whole slot in
// place and fdatasyncs the file; the file's blocks were allocated when the
// log was created, so this changes no metadata. It must be called with
// wlock held (or from Open).
func (l *Log) writeCheckpoint(cp []byte) error {
	if len(cp) > maxNoteSize {
		return fmt.Errorf("checkpoint note of %d bytes doesn't fit a %s slot (at most %d)", len(cp), checkpointsName, maxNoteSize)
	}
	slot, seq := (l.slot+1)%slotCount, l.seq+1
	if l.slotBuf == nil {
		l.slotBuf = make([]byte, slotSize)
	}
	encodeSlot(l.slotBuf, seq, cp)
	if _, err := l.ckpts.WriteAt(l.slotBuf, int64(slot)*slotSize); err != nil {
		return fmt.Errorf("writing %s: %w", checkpointsName, err)
	}
	if err := datasync(l.ckpts); err != nil {
		return fmt.Errorf("syncing %s: %w", checkpointsName, err)
	}
	l.slot, l.seq, l.pendingAt = slot, seq, -1
	return nil
}

// writePendingCheckpoint writes cp, the signed checkpoint that follows the
// current one, of prevSize entries, with a pending mark to the slot not
// holding the current checkpoint, without syncing: the caller makes it
// durable in the same round as the data it covers and then calls
// committedPending. It must be called with wlock held.
func (l *Log) writePendingCheckpoint(cp []byte, prevSize int64) error {
	if len(cp) > maxNoteSize-pendingSize {
		return fmt.Errorf("checkpoint note of %d bytes leaves no room for a pending mark in a %s slot (at most %d)", len(cp), checkpointsName, maxNoteSize-pendingSize)
	}
	if l.slotBuf == nil {
		l.slotBuf = make([]byte, slotSize)
	}
	encodeSlot(l.slotBuf, l.seq+1, cp)
	markPending(l.slotBuf, prevSize)
	if _, err := l.ckpts.WriteAt(l.slotBuf, int64((l.slot+1)%slotCount)*slotSize); err != nil {
		return fmt.Errorf("writing %s: %w", checkpointsName, err)
	}
	return nil
}

// committedPending records that the slot writePendingCheckpoint wrote is
// durable with its data, and now holds the current checkpoint, of noteLen
// bytes.
func (l *Log) committedPending(noteLen int) {
	l.slot, l.seq = (l.slot+1)%slotCount, l.seq+1
	l.pendingAt = int64(l.slot)*slotSize + slotHeaderSize + int64(noteLen)
}

// settlePending clears the pending mark of the current checkpoint's slot,
// if it has one, and makes that durable: from then on Open treats the slot
// as it treats one written after its data, and refuses to open the log
// rather than fall back if the data doesn't match it. Only the mark's bytes
// change, so a torn write leaves the slot valid, with or without its mark.
// It must be called with wlock held (or from Open).
func (l *Log) settlePending() error {
	if l.pendingAt < 0 {
		return nil
	}
	if _, err := l.ckpts.WriteAt(make([]byte, pendingSize), l.pendingAt); err != nil {
		return fmt.Errorf("clearing the pending mark in %s: %w", checkpointsName, err)
	}
	if err := datasync(l.ckpts); err != nil {
		return fmt.Errorf("syncing %s: %w", checkpointsName, err)
	}
	l.pendingAt = -1
	return nil
}

// initCheckpoints durably (re)initializes the checkpoints file of a new
// log: cp with sequence number 1 in slot 0, an empty slot 1, and a file
// size of exactly checkpointsSize. It writes real zeros rather than
// extending the file, so the blocks of both slots are allocated now and
// later slot writes change no metadata. It then syncs the directory, which
// makes the names of all the log's files durable.
func (l *Log) initCheckpoints(cp []byte) error {
	if len(cp) > maxNoteSize {
		return fmt.Errorf("checkpoint note of %d bytes doesn't fit a %s slot (at most %d)", len(cp), checkpointsName, maxNoteSize)
	}
	buf := make([]byte, checkpointsSize)
	encodeSlot(buf[:slotSize], 1, cp)
	if _, err := l.ckpts.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("creating %s: %w", checkpointsName, err)
	}
	if err := l.ckpts.Truncate(checkpointsSize); err != nil {
		return fmt.Errorf("creating %s: %w", checkpointsName, err)
	}
	if err := l.ckpts.Sync(); err != nil {
		return fmt.Errorf("creating %s: %w", checkpointsName, err)
	}
	if err := syncDir(l.dir); err != nil {
		return fmt.Errorf("creating %s: %w", checkpointsName, err)
	}
	l.slot, l.seq, l.pendingAt = 0, 1, -1
	return nil
}

// syncDir fsyncs the directory dir, making the names in it durable.
// Windows can't fsync a directory; there this is a no-op.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", filepath.Base(dir), err)
	}
	return nil
}
