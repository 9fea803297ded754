package sqlite

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Events of 4 KiB or more are stored as zstd frames when that saves a tenth or more: a record that
// batches many samples (a dongle uploading every half minute) shrinks about tenfold, for about as much
// CPU per value as a small record's would cost. Small records (one sample of a few signals, about 1 kB)
// stay as they are: compressing them would save two thirds of their bytes but cost the single ingest
// writer some 15 µs per record, a quarter of a signature recovery. The frame's magic number tells the two
// apart: a JSON event never starts with it (it starts with '{' or white space). DecodeEvent gives back
// the exact bytes the device signed.

// compressMin is the smallest event worth compressing.
const compressMin = 4096

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// The encoder and decoder are made on first use: their buffers cost memory a node that never stores a
// large event should not pay.
var (
	zenc = sync.OnceValue(func() *zstd.Encoder {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		return e
	})
	zdec = sync.OnceValue(func() *zstd.Decoder {
		d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(16<<20))
		return d
	})
)

// encodeEvent returns the bytes to store for event.
func encodeEvent(event []byte) []byte {
	if len(event) < compressMin {
		return event
	}
	c := zenc().EncodeAll(event, make([]byte, 0, len(event)/4))
	if len(c) > len(event)*9/10 {
		return event
	}
	return c
}

// DecodeEvent returns the event bytes a records row stores (the column event), decompressing them if
// they were stored compressed.
func DecodeEvent(stored []byte) ([]byte, error) {
	if !bytes.HasPrefix(stored, zstdMagic) {
		return stored, nil
	}
	ev, err := zdec().DecodeAll(stored, nil)
	if err != nil {
		return nil, fmt.Errorf("couldn't decompress a stored event: %w", err)
	}
	return ev, nil
}
