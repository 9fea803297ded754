package wire

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/glovebox/glovebox/ledger"
)

// Receipts are the bulk of every submission's answer (a batch of 1,000 is about a megabyte), so they are
// encoded by hand rather than by reflection. The output is what encoding/json would produce for the
// struct tags (TestReceiptEncodingMatchesEncodingJSON checks this).

// MarshalJSON implements json.Marshaler.
func (rc *Receipt) MarshalJSON() ([]byte, error) { return rc.AppendJSON(make([]byte, 0, 1536)), nil }

// AppendJSON appends the receipt as MarshalJSON encodes it.
func (rc *Receipt) AppendJSON(b []byte) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, rc.Index, 10)
	b = append(b, `,"hash":`...)
	b = AppendString(b, rc.Hash)
	b = append(b, `,"treeSize":`...)
	b = strconv.AppendInt(b, rc.TreeSize, 10)
	b = append(b, `,"checkpoint":`...)
	b = AppendString(b, rc.Checkpoint)
	b = append(b, `,"inclusionProof":`...)
	b = appendStrings(b, rc.InclusionProof)
	if rc.Result != nil {
		b = AppendResult(b, rc.Result)
	}
	if rc.Entry != "" {
		b = append(b, `,"entry":`...)
		b = AppendString(b, rc.Entry)
	}
	if rc.AcceptTime != 0 {
		b = append(b, `,"acceptTime":`...)
		b = strconv.AppendInt(b, rc.AcceptTime, 10)
	}
	if rc.Type != "" {
		b = append(b, `,"type":`...)
		b = AppendString(b, rc.Type)
	}
	if len(rc.Message) > 0 {
		b = append(b, `,"message":`...)
		b = append(b, rc.Message...)
	}
	if len(rc.Signatures) > 0 {
		b = append(b, `,"signatures":`...)
		b = appendStrings(b, rc.Signatures)
	}
	if len(rc.Signers) > 0 {
		b = append(b, `,"signers":`...)
		b = appendStrings(b, rc.Signers)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler (needed: the embedded Receipt's method would be promoted).
func (it BatchItem) MarshalJSON() ([]byte, error) { return it.AppendJSON(nil), nil }

// AppendJSON appends the item as MarshalJSON encodes it.
func (it *BatchItem) AppendJSON(b []byte) []byte {
	if it.Error != nil {
		e, _ := json.Marshal(struct {
			Error *ErrorDetail `json:"error"`
		}{it.Error})
		return append(b, e...)
	}
	if it.Receipt == nil {
		return append(b, "{}"...)
	}
	return it.Receipt.AppendJSON(b)
}

func appendStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, s)
	}
	return append(b, ']')
}

// AppendString appends s as a JSON string, escaped as encoding/json escapes it.
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendResult appends `,"result":{…}` with encoding/json's omitempty rules.
func AppendResult(b []byte, r *ledger.Result) []byte {
	b = append(b, `,"result":{`...)
	sep := ""
	if r.VehicleID != 0 {
		b = append(b, `"vehicleId":`...)
		b = strconv.AppendUint(b, r.VehicleID, 10)
		sep = ","
	}
	if r.Device != "" {
		b = append(b, sep+`"device":`...)
		b = AppendString(b, r.Device)
		sep = ","
	}
	if r.App != "" {
		b = append(b, sep+`"app":`...)
		b = AppendString(b, r.App)
	}
	return append(b, '}')
}
