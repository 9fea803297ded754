package ledger

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/holiman/uint256"
	"github.com/valyala/fastjson"
)

// MaxTxJSON is the largest JSON transaction accepted, in bytes.
const MaxTxJSON = 16 << 10

// parsers reuses fastjson parsers: decoding a transaction is on the hot path of every submission, and a
// reused parser allocates next to nothing.
var parsers fastjson.ParserPool

// DecodeTxJSON decodes one transaction in the submission format
// {"type":"Grant","message":{...},"signatures":["0x…"]}. Message values are as eth_signTypedData_v4 takes
// them: addresses as hex strings (mixed case must be a valid EIP-55 checksum), integers as decimal strings,
// 0x-hex strings or JSON integers. Member names are exact (case-sensitive); unknown, missing or duplicate
// members are refused, as are strings that are not valid UTF-8 and anything after the object.
func DecodeTxJSON(data []byte) (*Tx, error) {
	if len(data) > MaxTxJSON {
		return nil, errorf(CodeMalformed, "transaction is larger than %d bytes", MaxTxJSON)
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(data)
	if err != nil {
		return nil, errorf(CodeMalformed, "bad transaction JSON: %v", err)
	}
	top, err := v.Object()
	if err != nil {
		return nil, errorf(CodeMalformed, "a transaction is a JSON object")
	}
	var typ, msg, sigs *fastjson.Value
	var bad error
	top.Visit(func(k []byte, v *fastjson.Value) {
		var slot **fastjson.Value
		switch string(k) {
		case "type":
			slot = &typ
		case "message":
			slot = &msg
		case "signatures":
			slot = &sigs
		default:
			if bad == nil {
				bad = errorf(CodeMalformed, "unknown member %q", k)
			}
			return
		}
		if *slot != nil && bad == nil {
			bad = errorf(CodeMalformed, "member %q appears twice", k)
		}
		*slot = v
	})
	if bad != nil {
		return nil, bad
	}
	if typ == nil || typ.Type() != fastjson.TypeString {
		return nil, errorf(CodeMalformed, "missing or non-string \"type\"")
	}
	t, ok := ParseTxType(string(typ.GetStringBytes()))
	if !ok {
		return nil, errorf(CodeMalformed, "unknown transaction type %q", typ.GetStringBytes())
	}
	tx := &Tx{Type: t}
	if err := tx.decodeMessage(msg); err != nil {
		return nil, err
	}
	if sigs == nil || sigs.Type() == fastjson.TypeNull {
		return nil, errorf(CodeMissingSignature, "the transaction carries no signature")
	}
	if sigs.Type() != fastjson.TypeArray {
		return nil, errorf(CodeMalformed, "signatures is an array of 0x-hex strings")
	}
	list, _ := sigs.Array()
	if len(list) == 0 {
		return nil, errorf(CodeMissingSignature, "the transaction carries no signature")
	}
	if len(list) > maxSignatures {
		return nil, errorf(CodeMalformed, "at most %d signatures", maxSignatures)
	}
	tx.Signatures = make([]Signature, len(list))
	for i, sv := range list {
		if sv.Type() != fastjson.TypeString {
			return nil, errorf(CodeMalformed, "a signature is a 0x-hex string")
		}
		sig, err := ParseSignature(string(sv.GetStringBytes()))
		if err != nil {
			return nil, err
		}
		tx.Signatures[i] = sig
	}
	return tx, nil
}

// UnmarshalJSON implements json.Unmarshaler with the rules of DecodeTxJSON.
func (tx *Tx) UnmarshalJSON(data []byte) error {
	t, err := DecodeTxJSON(data)
	if err != nil {
		return err
	}
	*tx = *t
	return nil
}

// decodeMessage fills tx's members from the message object, in schema order.
func (tx *Tx) decodeMessage(msg *fastjson.Value) error {
	s := schemas[tx.Type]
	if msg == nil {
		return errorf(CodeMalformed, "missing message")
	}
	obj, err := msg.Object()
	if err != nil {
		return errorf(CodeMalformed, "the message is a JSON object")
	}
	var vals [8]*fastjson.Value // no schema has more members
	var bad error
	obj.Visit(func(k []byte, v *fastjson.Value) {
		if bad != nil {
			return
		}
		for i, f := range s.fields {
			if f.name == string(k) {
				if vals[i] != nil {
					bad = errorf(CodeMalformed, "%s: member %q appears twice", s.name, k)
				}
				vals[i] = v
				return
			}
		}
		bad = errorf(CodeMalformed, "%s: unknown field %q", s.name, k)
	})
	if bad != nil {
		return bad
	}
	for i, f := range s.fields {
		if vals[i] == nil {
			return errorf(CodeMalformed, "%s: missing field %q", s.name, f.name)
		}
		if err := tx.decodeField(f, vals[i]); err != nil {
			return errorf(CodeMalformed, "%s.%s: %v", s.name, f.name, err)
		}
	}
	return nil
}

const maxSignatures = 3

func (s *schema) has(name string) bool {
	for _, f := range s.fields {
		if f.name == name {
			return true
		}
	}
	return false
}

// ParseSignature parses a 0x-prefixed 65-byte hex signature. A v of 0 or 1 is taken as 27 or 28.
func ParseSignature(s string) (Signature, error) {
	var sig Signature
	if len(s) != 2+130 || !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return sig, errorf(CodeBadSignature, "a signature is 0x and 130 hex digits (65 bytes)")
	}
	if _, err := hex.Decode(sig[:], []byte(s[2:])); err != nil {
		return sig, errorf(CodeBadSignature, "signature is not hex")
	}
	if sig[64] < 2 {
		sig[64] += 27
	}
	return sig, nil
}

// jsonString returns the value of a JSON string, which must be valid UTF-8.
func jsonString(v *fastjson.Value) (string, error) {
	if v.Type() != fastjson.TypeString {
		return "", fmt.Errorf("want a string")
	}
	b := v.GetStringBytes()
	if !utf8.Valid(b) {
		return "", fmt.Errorf("not UTF-8")
	}
	return string(b), nil
}

func (tx *Tx) decodeField(f field, v *fastjson.Value) error {
	switch f.kind {
	case kindAddress:
		str, err := jsonString(v)
		if err != nil {
			return fmt.Errorf("want an address string")
		}
		a, err := ParseAddress(str)
		if err != nil {
			return err
		}
		*tx.address(f.id) = a
	case kindString:
		str, err := jsonString(v)
		if err != nil {
			return err
		}
		*tx.str(f.id) = str
	case kindStringArray:
		items, err := v.Array()
		if err != nil {
			return fmt.Errorf("want an array of strings")
		}
		list := make([]string, len(items))
		for i, it := range items {
			if list[i], err = jsonString(it); err != nil {
				return fmt.Errorf("want an array of strings")
			}
		}
		*tx.strs(f.id) = list
	case kindUint16:
		n, err := parseUint(v)
		if err != nil {
			return err
		}
		if !n.IsUint64() || n.Uint64() > math.MaxUint16 {
			return fmt.Errorf("does not fit in uint16")
		}
		*tx.u16(f.id) = uint16(n.Uint64())
	case kindUint64:
		n, err := parseUint(v)
		if err != nil {
			return err
		}
		if !n.IsUint64() {
			return fmt.Errorf("does not fit in uint64")
		}
		*tx.u64(f.id) = n.Uint64()
	case kindUint256:
		n, err := parseUint(v)
		if err != nil {
			return err
		}
		*tx.u256(f.id) = n
	}
	return nil
}

// parseUint accepts a JSON integer, a decimal string or a 0x-hex string (zero padding allowed, as wallets
// pad).
func parseUint(jv *fastjson.Value) (uint256.Int, error) {
	var v uint256.Int
	var s string
	switch jv.Type() {
	case fastjson.TypeString:
		s = string(jv.GetStringBytes())
	case fastjson.TypeNumber:
		s = string(jv.MarshalTo(nil))
	default:
		return v, fmt.Errorf("want an integer")
	}
	if s == "" {
		return v, fmt.Errorf("want an integer")
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		digits := strings.TrimLeft(s[2:], "0")
		if digits == "" && len(s) > 2 {
			digits = "0"
		}
		if err := v.SetFromHex("0x" + digits); err != nil {
			return v, fmt.Errorf("bad hex integer %q", s)
		}
		return v, nil
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return v, fmt.Errorf("want a non-negative integer, got %q", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return v, fmt.Errorf("leading zero in %q", s)
	}
	if err := v.SetFromDecimal(s); err != nil {
		return v, fmt.Errorf("integer %q out of range", s)
	}
	return v, nil
}

// MessageJSON returns the message as eth_signTypedData_v4 JSON, members in declaration order, addresses
// EIP-55 checksummed and integers as decimal strings.
func (tx *Tx) MessageJSON() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range schemas[tx.Type].fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(f.name))
		b.WriteByte(':')
		switch f.kind {
		case kindAddress:
			b.WriteString(strconv.Quote(tx.address(f.id).Hex()))
		case kindString:
			writeJSONString(&b, *tx.str(f.id))
		case kindUint16:
			b.WriteString(strconv.Quote(strconv.Itoa(int(*tx.u16(f.id)))))
		case kindUint64:
			b.WriteString(strconv.Quote(strconv.FormatUint(*tx.u64(f.id), 10)))
		case kindUint256:
			b.WriteString(strconv.Quote(tx.u256(f.id).Dec()))
		case kindStringArray:
			b.WriteByte('[')
			for j, s := range *tx.strs(f.id) {
				if j > 0 {
					b.WriteByte(',')
				}
				writeJSONString(&b, s)
			}
			b.WriteByte(']')
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// writeJSONString writes s as a JSON string without HTML escaping: json.Marshal turns each of <, > and &
// into six bytes, so a transaction the state accepts (redirect URIs full of &) could re-encode to more
// than MaxTxJSON.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           // cannot fail for a string
	b.Truncate(b.Len() - 1) // Encode's newline
}

// MarshalJSON encodes tx in the submission format accepted by DecodeTxJSON.
func (tx *Tx) MarshalJSON() ([]byte, error) {
	if !tx.Type.valid() {
		return nil, fmt.Errorf("ledger: cannot encode transaction of type %v", tx.Type)
	}
	sigs := make([]string, len(tx.Signatures))
	for i, s := range tx.Signatures {
		sigs[i] = "0x" + hex.EncodeToString(s[:])
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // json.Marshal would escape the message's <, > and & again
	if err := enc.Encode(struct {
		Type       string          `json:"type"`
		Message    json.RawMessage `json:"message"`
		Signatures []string        `json:"signatures"`
	}{tx.Type.String(), tx.MessageJSON(), sigs}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
