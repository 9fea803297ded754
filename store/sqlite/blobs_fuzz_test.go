package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/chunk"
)

const fuzzHour = int64(1_793_491_200_000) // 2026-11-01T00:00:00Z

// openBlob encodes vals as an open_values blob of the hour fuzzHour.
func openBlob(vals []openValue) ([]byte, error) {
	var b []byte
	for _, v := range vals {
		b = binary.AppendUvarint(b, uint64(v.name))
		b = binary.AppendUvarint(b, uint64(v.p.T-fuzzHour))
		var err error
		if b, err = appendTagged(b, v.p.V); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// FuzzDecodeOpenValues feeds open_values blobs (stored bytes a damaged file could hold) to their
// decoder: damage is an error wrapping chunk.ErrCorrupt, never a panic, and what decodes, encoded again,
// decodes to the same values.
func FuzzDecodeOpenValues(f *testing.F) {
	for _, v := range []telemetry.Value{
		{Signal: &telemetry.Signal{Kind: telemetry.KindNumber}, Time: fuzzHour + 1234, Number: 42.5},
		{Signal: &telemetry.Signal{Kind: telemetry.KindString}, Time: fuzzHour + 99, String: "COMBUSTION"},
		{Signal: &telemetry.Signal{Kind: telemetry.KindLocation}, Time: fuzzHour + 3_599_999, Lat: 52.52, Lon: 13.405, HDOP: 0.9},
	} {
		f.Add(appendOpenValue(nil, 7, fuzzHour, &v))
	}
	f.Add([]byte{0x07, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := decodeOpenValues(nil, b, fuzzHour, 0)
		if err != nil {
			if !errors.Is(err, chunk.ErrCorrupt) {
				t.Fatalf("an error that is not ErrCorrupt: %v", err)
			}
			return
		}
		again, err := openBlob(vals)
		if err != nil {
			t.Fatalf("decoded values that do not encode: %v", err)
		}
		back, err := decodeOpenValues(nil, again, fuzzHour, 0)
		if err != nil || fmt.Sprint(back) != fmt.Sprint(vals) {
			t.Fatalf("decoded %v from %x, then %v (%v)", vals, b, back, err)
		}
	})
}

// FuzzDecodeNewest feeds latest_values blobs to their decoder, as FuzzDecodeOpenValues does.
func FuzzDecodeNewest(f *testing.F) {
	seed, err := encodeNewest([]newest{{name: 1, t: fuzzHour, v: 3.5}, {name: 2, t: -5, v: "x"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		ns, err := decodeNewest(nil, b)
		if err != nil {
			if !errors.Is(err, chunk.ErrCorrupt) {
				t.Fatalf("an error that is not ErrCorrupt: %v", err)
			}
			return
		}
		again, err := encodeNewest(ns)
		if err != nil {
			t.Fatalf("decoded values that do not encode: %v", err)
		}
		back, err := decodeNewest(nil, again)
		if err != nil || fmt.Sprint(back) != fmt.Sprint(ns) {
			t.Fatalf("decoded %v from %x, then %v (%v)", ns, b, back, err)
		}
	})
}
