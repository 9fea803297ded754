package ledger

import (
	"encoding/binary"
	"unicode/utf8"
)

// EntryVersion is the version byte of the entry encoding written by this package.
const EntryVersion = 1

// MaxEntrySize is the largest encoded entry; tlog-tiles entry bundles prefix each entry with a uint16.
const MaxEntrySize = 65535

// Entry is one log entry: an accepted transaction with its signatures and the sequencer's accept time.
//
// The encoding (version 1) is canonical, big-endian, with no padding:
//
//	version      1 byte   = 1
//	acceptTime   8 bytes  unix milliseconds
//	type         1 byte   TxType (1 RegisterVehicle … 11 Renounce, 12 SetRetention, 13 EraseData)
//	members      in EIP-712 declaration order:
//	               address   20 bytes
//	               string    2-byte length, UTF-8 bytes
//	               uint16    2 bytes
//	               uint64    8 bytes
//	               uint256   32 bytes
//	               string[]  2-byte count, then each string as above
//	sigCount     1 byte   1..3
//	signatures   65 bytes each: r || s || v, v in {27, 28}
//
// Decoding refuses anything that would not re-encode to the same bytes (trailing data, bad UTF-8, bad v).
type Entry struct {
	AcceptTime int64 // unix milliseconds, set by the sequencer
	Tx         *Tx
}

// AcceptSeconds returns the accept time in whole unix seconds, the clock that deadlines and grant
// expiries are judged against.
func (e *Entry) AcceptSeconds() int64 { return e.AcceptTime / 1000 }

// MarshalBinary encodes the entry.
func (e *Entry) MarshalBinary() ([]byte, error) {
	tx := e.Tx
	if !tx.Type.valid() {
		return nil, errorf(CodeMalformed, "unknown transaction type %d", tx.Type)
	}
	if len(tx.Signatures) == 0 || len(tx.Signatures) > maxSignatures {
		return nil, errorf(CodeMalformed, "an entry carries 1 to %d signatures", maxSignatures)
	}
	if e.AcceptTime < 0 {
		return nil, errorf(CodeMalformed, "negative accept time")
	}
	b := make([]byte, 0, 256)
	b = append(b, EntryVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(e.AcceptTime))
	b = append(b, byte(tx.Type))
	for _, f := range schemas[tx.Type].fields {
		switch f.kind {
		case kindAddress:
			b = append(b, tx.address(f.id)[:]...)
		case kindString:
			var err error
			if b, err = appendString(b, *tx.str(f.id)); err != nil {
				return nil, err
			}
		case kindUint16:
			b = binary.BigEndian.AppendUint16(b, *tx.u16(f.id))
		case kindUint64:
			b = binary.BigEndian.AppendUint64(b, *tx.u64(f.id))
		case kindUint256:
			w := tx.u256(f.id).Bytes32()
			b = append(b, w[:]...)
		case kindStringArray:
			list := *tx.strs(f.id)
			if len(list) > 0xffff {
				return nil, errorf(CodeMalformed, "too many strings in %s", f.name)
			}
			b = binary.BigEndian.AppendUint16(b, uint16(len(list)))
			for _, s := range list {
				var err error
				if b, err = appendString(b, s); err != nil {
					return nil, err
				}
			}
		}
	}
	b = append(b, byte(len(tx.Signatures)))
	for _, s := range tx.Signatures {
		b = append(b, s[:]...)
	}
	if len(b) > MaxEntrySize {
		return nil, errorf(CodeMalformed, "entry is %d bytes, more than %d", len(b), MaxEntrySize)
	}
	return b, nil
}

func appendString(b []byte, s string) ([]byte, error) {
	if len(s) > 0xffff {
		return nil, errorf(CodeMalformed, "string of %d bytes is too long", len(s))
	}
	if !utf8.ValidString(s) {
		return nil, errorf(CodeMalformed, "string is not UTF-8")
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...), nil
}

// entryReader consumes an encoded entry; the first error sticks.
type entryReader struct {
	b   []byte
	err *Error
}

func (r *entryReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = errorf(CodeMalformed, "entry is truncated")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *entryReader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *entryReader) str() string {
	n := r.u16()
	b := r.take(int(n))
	if r.err == nil && !utf8.Valid(b) {
		r.err = errorf(CodeMalformed, "string is not UTF-8")
	}
	return string(b)
}

// UnmarshalEntry decodes an entry encoded by MarshalBinary.
func UnmarshalEntry(data []byte) (*Entry, error) {
	if len(data) > MaxEntrySize {
		return nil, errorf(CodeMalformed, "entry is %d bytes, more than %d", len(data), MaxEntrySize)
	}
	r := &entryReader{b: data}
	head := r.take(10)
	if r.err != nil {
		return nil, r.err
	}
	if head[0] != EntryVersion {
		return nil, errorf(CodeMalformed, "unknown entry version %d", head[0])
	}
	e := &Entry{AcceptTime: int64(binary.BigEndian.Uint64(head[1:9]))}
	if e.AcceptTime < 0 {
		return nil, errorf(CodeMalformed, "negative accept time")
	}
	tx := &Tx{Type: TxType(head[9])}
	if !tx.Type.valid() {
		return nil, errorf(CodeMalformed, "unknown transaction type %d", head[9])
	}
	e.Tx = tx
	for _, f := range schemas[tx.Type].fields {
		switch f.kind {
		case kindAddress:
			copy(tx.address(f.id)[:], r.take(20))
		case kindString:
			*tx.str(f.id) = r.str()
		case kindUint16:
			*tx.u16(f.id) = r.u16()
		case kindUint64:
			if b := r.take(8); b != nil {
				*tx.u64(f.id) = binary.BigEndian.Uint64(b)
			}
		case kindUint256:
			if b := r.take(32); b != nil {
				tx.u256(f.id).SetBytes32(b)
			}
		case kindStringArray:
			n := int(r.u16())
			if r.err == nil && n > len(r.b)/2 {
				return nil, errorf(CodeMalformed, "entry is truncated")
			}
			list := make([]string, 0, n)
			for i := 0; i < n && r.err == nil; i++ {
				list = append(list, r.str())
			}
			*tx.strs(f.id) = list
		}
	}
	count := r.take(1)
	if r.err != nil {
		return nil, r.err
	}
	if count[0] == 0 || int(count[0]) > maxSignatures {
		return nil, errorf(CodeMalformed, "an entry carries 1 to %d signatures", maxSignatures)
	}
	tx.Signatures = make([]Signature, count[0])
	for i := range tx.Signatures {
		copy(tx.Signatures[i][:], r.take(65))
		if r.err == nil && tx.Signatures[i][64] != 27 && tx.Signatures[i][64] != 28 {
			return nil, errorf(CodeMalformed, "signature v must be 27 or 28")
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, errorf(CodeMalformed, "%d bytes of trailing data", len(r.b))
	}
	return e, nil
}
