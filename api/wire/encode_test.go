package wire

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/glovebox/glovebox/ledger"
)

// receiptAlias has Receipt's fields and tags without its MarshalJSON, so encoding/json encodes it by
// reflection: the reference the hand-written encoder must match byte for byte.
type receiptAlias Receipt

func TestReceiptEncodingMatchesEncodingJSON(t *testing.T) {
	cases := []Receipt{
		{},
		{Index: 7, Hash: "0xab", TreeSize: 8, Checkpoint: "glovebox.local/x\n8\nAAAA\n\n— glovebox.local/x abc\n",
			InclusionProof: []string{"a+/=", "b"}, Result: &ledger.Result{VehicleID: 3}},
		{Index: 1, Result: &ledger.Result{Device: "0xD", App: "0xA"}, Entry: "AQID", AcceptTime: 1700000000000, Type: "Grant",
			Message: json.RawMessage(`{"a":"b"}`), Signatures: []string{"0x01"}, Signers: []string{"0xS"}},
		{Checkpoint: "quote \" backslash \\ tab \t cr \r nul \x00 ctl \x1f html <>& utf8 é 😀 bad \xff sep \u2028\u2029"},
		{InclusionProof: []string{}, Result: &ledger.Result{}},
	}
	for _, rc := range cases {
		want, err := json.Marshal((*receiptAlias)(&rc))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := rc.MarshalJSON()
		if !bytes.Equal(got, want) {
			t.Errorf("hand-encoded\n%s\nencoding/json\n%s", got, want)
		}
	}
	for _, it := range []BatchItem{{Receipt: &cases[1]}, {Error: &ErrorDetail{Code: "nonce_used", Message: "m <x>", Index: new(int)}}} {
		got, _ := json.Marshal(it)
		var back map[string]any
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if (it.Error != nil) != (back["error"] != nil) {
			t.Errorf("batch item encodes as %s", got)
		}
	}
}

func BenchmarkReceiptJSON(b *testing.B) {
	rc := Receipt{Index: 123456, Hash: "0x" + string(bytes.Repeat([]byte("ab"), 32)), TreeSize: 123457,
		Checkpoint: "glovebox.local/0123456789abcdef\n123457\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— glovebox.local/0123456789abcdef hAiJ2/3JE8hIzl2aO/D4hGiY26ZhEKA8xxpKWLgsEHRGGlj6mXJmvrWldAnuSM8aREzP8crHFBqBG4e8LZfH0FWhtgo=\n",
		Result:     &ledger.Result{VehicleID: 99}}
	for i := 0; i < 17; i++ {
		rc.InclusionProof = append(rc.InclusionProof, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
	}
	b.Run("hand", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			rc.MarshalJSON()
		}
	})
	b.Run("reflection", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			json.Marshal((*receiptAlias)(&rc))
		}
	})
}
