package ledger

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// BenchmarkDigest hashes the largest message type, Grant.
func BenchmarkDigest(b *testing.B) {
	tx := sampleTx(b, TypeGrant)
	b.ReportAllocs()
	for b.Loop() {
		testDomain.Digest(tx)
	}
}

// BenchmarkRecover recovers the signer of a one-signature transaction, digest included.
func BenchmarkRecover(b *testing.B) {
	tx := sampleTx(b, TypeBurnVehicle)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := testDomain.Signers(tx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply registers vehicles into a growing state. Signers are given, as the sequencer has them
// from Signers already; only Apply is measured.
func BenchmarkApply(b *testing.B) {
	s := NewState()
	tx := message(TypeRegisterVehicle, 0, testStart)
	tx.Signatures = make([]Signature, 1)
	signers := []common.Address{alice.addr}
	e := &Entry{AcceptTime: testStart, Tx: tx}
	var n uint64
	b.ReportAllocs()
	for b.Loop() {
		n++
		tx.Nonce.SetUint64(n)
		if _, err := s.Apply(e, signers, s.Size()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeTxJSON decodes a Grant submission.
func BenchmarkDecodeTxJSON(b *testing.B) {
	data, err := sampleTx(b, TypeGrant).MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTxJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}
