package tlog

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzParseEntryBundle(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add(bundle([]byte("hello"), []byte("world")))
	f.Add(bundle([]byte("a"), nil))
	f.Add([]byte{0xff, 0xff, 1, 2, 3})
	f.Add(append(bundle([]byte("a")), 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseEntryBundle(data)
		if err != nil {
			return
		}
		if len(entries) < 1 || len(entries) > 256 {
			t.Fatalf("accepted a bundle of %d entries", len(entries))
		}
		// A bundle that parses is exactly the encoding of its entries.
		if again := bundle(entries...); !bytes.Equal(again, data) {
			t.Fatalf("bundle %x parsed to entries that encode as %x", data, again)
		}
	})
}

func FuzzReadTilePath(f *testing.F) {
	s, _ := testKeys(f, testOrigin)
	l := openLog(f, f.TempDir(), s)
	appendAll(f, l, testEntries("e", 0, 600), 600)
	for _, p := range []string{
		"checkpoint", "tile/0/000", "tile/0/002.p/88", "tile/1/000.p/2", "tile/entries/001",
		"tile/entries/002.p/88", "tile/0/1", "tile/0/x000/000", "tile/entries/000.p/0",
		"tile/entries/000.p/256", "../x", "tile/data/000", "tile/8/0/000",
		"tile/0/x999/x999/x999/x999/x999/x999/x999/999", "tile/63/000.p/1", "tile/0/000.p/-1",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		data, err := l.ReadTile(path)
		switch {
		case err == nil:
		case errors.Is(err, ErrBadPath) && !errors.Is(err, ErrNotFound):
			return
		case errors.Is(err, ErrNotFound) && !errors.Is(err, ErrBadPath):
			if _, perr := parseTilePath(path); perr != nil {
				t.Fatalf("ReadTile(%q) = ErrNotFound for a path that doesn't parse", path)
			}
			return
		default:
			t.Fatalf("ReadTile(%q) error = %v", path, err)
		}
		if path == "checkpoint" {
			return
		}
		// Whatever is served is a canonical path of the right length.
		tile, err := parseTilePath(path)
		if err != nil || TilePath(tile) != path {
			t.Fatalf("ReadTile served %q, which doesn't parse canonically (%v)", path, err)
		}
		if tile.L >= 0 && len(data) != tile.W*32 {
			t.Fatalf("ReadTile(%q) returned %d bytes, want %d", path, len(data), tile.W*32)
		}
		if tile.L == -1 {
			entries, err := ParseEntryBundle(data)
			if err != nil || len(entries) != tile.W {
				t.Fatalf("ReadTile(%q) returned a bundle of %d entries (%v), want %d", path, len(entries), err, tile.W)
			}
		}
	})
}

func FuzzParseSlot(f *testing.F) {
	valid := make([]byte, slotSize)
	encodeSlot(valid, 3, []byte("example.com/log\n3\n"))
	f.Add(valid)
	f.Add(valid[:slotHeaderSize+5])
	f.Add(make([]byte, slotSize))
	f.Add([]byte(slotMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > slotSize {
			data = data[:slotSize]
		}
		seq, note, ok := parseSlot(data)
		if !ok {
			return
		}
		// A valid slot is exactly the encoding of its contents, up to the
		// padding, which isn't checked.
		again := make([]byte, slotSize)
		encodeSlot(again, seq, note)
		if n := slotHeaderSize + len(note); !bytes.Equal(again[:n], data[:n]) {
			t.Fatalf("slot %x parsed to %d, %q, which encodes as %x", data[:n], seq, note, again[:n])
		}
	})
}

func FuzzParsePending(f *testing.F) {
	marked := make([]byte, slotSize)
	encodeSlot(marked, 3, []byte("example.com/log\n3\n"))
	markPending(marked, 2)
	f.Add(marked)
	f.Add(marked[:slotHeaderSize+18+pendingSize-1])
	f.Add(marked[:slotHeaderSize+18+pendingSize])
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > slotSize {
			data = data[:slotSize]
		}
		_, note, ok := parseSlot(data)
		if !ok {
			return
		}
		prev, pending := parsePending(data)
		if !pending {
			return
		}
		// An intact mark is exactly the one markPending writes after that note.
		again := make([]byte, slotSize)
		copy(again, data[:slotHeaderSize+len(note)])
		markPending(again, prev)
		if n := slotHeaderSize + len(note) + pendingSize; !bytes.Equal(again[:n], data[:n]) {
			t.Fatalf("slot %x parsed to a mark of %d, which encodes as %x", data[:n], prev, again[:n])
		}
	})
}
