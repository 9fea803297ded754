package ledger

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/holiman/uint256"
)

// MaxTxJSON is the largest JSON transaction accepted, in bytes.
const MaxTxJSON = 16 << 10

// wireTx is the JSON form of a submitted transaction.
type wireTx struct {
	Type       string                     `json:"type"`
	Message    map[string]json.RawMessage `json:"message"`
	Signatures []string                   `json:"signatures"`
}

// DecodeTxJSON decodes one transaction in the submission format
// {"type":"Grant","message":{...},"signatures":["0x…"]}. Message values are as eth_signTypedData_v4 takes
// them: addresses as hex strings (mixed case must be a valid EIP-55 checksum), integers as decimal strings,
// 0x-hex strings or JSON integers. Unknown or missing fields are refused.
func DecodeTxJSON(data []byte) (*Tx, error) {
	if len(data) > MaxTxJSON {
		return nil, errorf(CodeMalformed, "transaction is larger than %d bytes", MaxTxJSON)
	}
	var w wireTx
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, errorf(CodeMalformed, "bad transaction JSON: %v", err)
	}
	if dec.More() {
		return nil, errorf(CodeMalformed, "trailing data after the transaction")
	}
	return w.tx()
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

func (w *wireTx) tx() (*Tx, error) {
	t, ok := ParseTxType(w.Type)
	if !ok {
		return nil, errorf(CodeMalformed, "unknown transaction type %q", w.Type)
	}
	tx := &Tx{Type: t}
	s := schemas[t]
	if w.Message == nil {
		return nil, errorf(CodeMalformed, "missing message")
	}
	for _, f := range s.fields {
		raw, ok := w.Message[f.name]
		if !ok {
			return nil, errorf(CodeMalformed, "%s: missing field %q", s.name, f.name)
		}
		if err := tx.decodeField(f, raw); err != nil {
			return nil, errorf(CodeMalformed, "%s.%s: %v", s.name, f.name, err)
		}
	}
	if len(w.Message) != len(s.fields) {
		for k := range w.Message {
			if !s.has(k) {
				return nil, errorf(CodeMalformed, "%s: unknown field %q", s.name, k)
			}
		}
	}
	if len(w.Signatures) == 0 {
		return nil, errorf(CodeMissingSignature, "the transaction carries no signature")
	}
	if len(w.Signatures) > maxSignatures {
		return nil, errorf(CodeMalformed, "at most %d signatures", maxSignatures)
	}
	tx.Signatures = make([]Signature, len(w.Signatures))
	for i, sh := range w.Signatures {
		sig, err := ParseSignature(sh)
		if err != nil {
			return nil, err
		}
		tx.Signatures[i] = sig
	}
	return tx, nil
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

// ParseAddress parses a hex address. All-lower or all-upper case is accepted; mixed case must be a correct
// EIP-55 checksum, since it is then most likely a typo.
func ParseAddress(s string) (common.Address, error) {
	if !common.IsHexAddress(s) || !strings.HasPrefix(s, "0x") {
		return common.Address{}, fmt.Errorf("%q is not a 0x-prefixed 20-byte hex address", s)
	}
	a := common.HexToAddress(s)
	body := s[2:]
	if strings.ToLower(body) != body && strings.ToUpper(body) != body && a.Hex() != s {
		return common.Address{}, fmt.Errorf("%q has a bad EIP-55 checksum", s)
	}
	return a, nil
}

func (tx *Tx) decodeField(f field, raw json.RawMessage) error {
	switch f.kind {
	case kindAddress:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("want an address string")
		}
		a, err := ParseAddress(s)
		if err != nil {
			return err
		}
		*tx.address(f.id) = a
	case kindString:
		// json.Unmarshal takes null for "" without error; a wallet refuses to sign null as a string.
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, tx.str(f.id)) != nil {
			return fmt.Errorf("want a string")
		}
	case kindStringArray:
		var items []*string // a null item stays nil instead of becoming ""
		if err := json.Unmarshal(raw, &items); err != nil || items == nil {
			return fmt.Errorf("want an array of strings")
		}
		list := make([]string, len(items))
		for i, item := range items {
			if item == nil {
				return fmt.Errorf("want an array of strings")
			}
			list[i] = *item
		}
		*tx.strs(f.id) = list
	case kindUint16:
		v, err := parseUint(raw)
		if err != nil {
			return err
		}
		if !v.IsUint64() || v.Uint64() > math.MaxUint16 {
			return fmt.Errorf("does not fit in uint16")
		}
		tx.Year = uint16(v.Uint64())
	case kindUint256:
		v, err := parseUint(raw)
		if err != nil {
			return err
		}
		*tx.u256(f.id) = v
	}
	return nil
}

// parseUint accepts a JSON integer, a decimal string or a 0x-hex string.
func parseUint(raw json.RawMessage) (uint256.Int, error) {
	var v uint256.Int
	var s string
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return v, fmt.Errorf("want an integer")
		}
	} else {
		s = string(raw)
	}
	if s == "" {
		return v, fmt.Errorf("want an integer")
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		// Wallets pad hex integers ("0x01"); uint256's parser wants them minimal.
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
			b.WriteString(strconv.Quote(strconv.Itoa(int(tx.Year))))
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
