package ledger

import (
	"context"
	"testing"
	"time"

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

// BenchmarkCommit sequences batches of 1,000 vehicle registrations (signers given, the log in memory and
// instant): what the sequencer itself costs a transaction in a group commit — validation, entry encoding,
// the state's changes and the read model's hand-off — without signatures or disk.
func BenchmarkCommit(b *testing.B) {
	const per = 1000
	log := &memLog{}
	q, err := OpenSequencer(context.Background(), NewDomain("bench/commit"), log, log.read, discardStore{},
		SequencerOptions{Now: func() time.Time { return time.UnixMilli(testStart) }})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	signers := make([][]common.Address, per)
	for i := range signers {
		signers[i] = []common.Address{alice.addr}
	}
	var nonce uint64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		txs := make([]*Tx, per)
		for i := range txs {
			nonce++
			txs[i] = message(TypeRegisterVehicle, nonce, testStart)
			txs[i].Signatures = make([]Signature, 1)
		}
		b.StartTimer()
		out, err := q.Submit(context.Background(), txs, signers)
		if err != nil || out[0].Err != nil || out[per-1].Err != nil {
			b.Fatalf("submit: %v %v", err, out[0].Err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*per), "ns/tx")
}

// discardStore is a read model that keeps nothing: BenchmarkCommit measures the hand-off of the changes,
// not a store that grows with every iteration (memStore's merges were a fifth of its time).
type discardStore struct{}

func (discardStore) Load(context.Context) (Changes, error) { return Changes{NextVehicle: 1}, nil }
func (discardStore) Save(context.Context, Changes) error   { return nil }
func (discardStore) Reset(context.Context) error           { return nil }
