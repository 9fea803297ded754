package ledger

import (
	"bytes"
	"reflect"
	"testing"
)

// fuzzSeeds are signed transactions of every type, with empty, single and multiple lists and unicode.
func fuzzSeeds(f *testing.F) []*Tx {
	var txs []*Tx
	for _, typ := range TxTypes() {
		txs = append(txs, sampleTx(f, typ))
	}
	for _, c := range entryCases(f) {
		txs = append(txs, c.tx)
	}
	return txs
}

func FuzzDecodeTxJSON(f *testing.F) {
	for _, tx := range fuzzSeeds(f) {
		b, err := tx.MarshalJSON()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"BurnVehicle","message":{"vehicleId":1,"nonce":"0x10","deadline":"1772370000"},"signatures":["0x` +
		"00000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000001" + `00"]}`))
	f.Add([]byte(`{"type":"Grant","message":null,"signatures":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := DecodeTxJSON(data)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("refusal without a rule code: %v", err)
			}
			return
		}
		if !tx.Type.valid() || len(tx.Signatures) == 0 || len(tx.Signatures) > maxSignatures {
			t.Fatalf("decoded an impossible transaction %+v", tx)
		}
		if _, err := testDomain.Signers(tx); err != nil && CodeOf(err) == "" {
			t.Fatalf("Signers: error without a rule code: %v", err)
		}
		b, err := tx.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a decoded transaction: %v", err)
		}
		if len(b) > MaxTxJSON {
			// Only an input near the limit gets here (quoting bare numbers, expanding invalid UTF-8 to
			// U+FFFD); no transaction the state accepts does (TestLargestAcceptedTransactionsReencode).
			return
		}
		back, err := DecodeTxJSON(b)
		if err != nil {
			t.Fatalf("the re-encoding %s does not decode: %v", b, err)
		}
		if !reflect.DeepEqual(back, tx) {
			t.Fatalf("round trip changed the transaction\n got %+v\nwant %+v", back, tx)
		}
		if again, _ := back.MarshalJSON(); !bytes.Equal(again, b) {
			t.Fatalf("MarshalJSON is not a fixed point:\n%s\n%s", b, again)
		}
		if testDomain.Digest(back) != testDomain.Digest(tx) {
			t.Fatal("digest changed over the round trip")
		}
	})
}

func FuzzUnmarshalEntry(f *testing.F) {
	for i, tx := range fuzzSeeds(f) {
		e := &Entry{AcceptTime: testStart + int64(i), Tx: tx}
		b, err := e.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := UnmarshalEntry(data)
		if err != nil {
			if CodeOf(err) != CodeMalformed {
				t.Fatalf("refusal is not malformed: %v", err)
			}
			return
		}
		b, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("a decoded entry does not encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", b, data)
		}
		// Replaying a decoded entry must never panic, whatever it says.
		if signers, err := testDomain.Signers(e.Tx); err == nil {
			if _, err := NewState().Apply(e, signers, 0); err != nil && CodeOf(err) == "" {
				t.Fatalf("Apply: error without a rule code: %v", err)
			}
		}
		if j, err := e.Tx.MarshalJSON(); err != nil {
			t.Fatalf("MarshalJSON of a decoded entry: %v", err)
		} else if back, err := DecodeTxJSON(j); err == nil && !reflect.DeepEqual(back, e.Tx) {
			t.Fatal("the JSON of a decoded entry decodes to another transaction")
		}
	})
}
