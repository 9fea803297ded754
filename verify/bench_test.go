package verify

import (
	"context"
	"crypto/ecdsa"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/ledger"
)

const benchOrigin = "glovebox.bench/replay"

var bench100k struct {
	once    sync.Once
	entries [][]byte
	err     error
}

// entries100k returns 100,000 encoded RegisterVehicle entries signed by 8 owners, generated once per
// process on all cores (signing dominates: a few seconds).
func entries100k(b *testing.B) [][]byte {
	bench100k.once.Do(func() {
		const n, owners = 100_000, 8
		d := ledger.NewDomain(benchOrigin)
		keys := make([]*ecdsa.PrivateKey, owners)
		for i := range keys {
			if keys[i], bench100k.err = crypto.GenerateKey(); bench100k.err != nil {
				return
			}
		}
		at := time.Now()
		out := make([][]byte, n)
		errs := make([]error, n)
		workers := runtime.GOMAXPROCS(0)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					k := keys[i%owners]
					tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: crypto.PubkeyToAddress(k.PublicKey),
						Make: "Volkswagen", Model: "ID.3", Year: 2023}
					tx.Nonce.SetUint64(uint64(i) + 1) // unique per signer
					tx.Deadline.SetUint64(uint64(at.Unix() + 3600))
					if errs[i] = d.Sign(tx, k); errs[i] != nil {
						continue
					}
					out[i], errs[i] = (&ledger.Entry{AcceptTime: at.UnixMilli(), Tx: tx}).MarshalBinary()
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				bench100k.err = err
				return
			}
		}
		bench100k.entries = out
	})
	if bench100k.err != nil {
		b.Fatal(bench100k.err)
	}
	return bench100k.entries
}

// BenchmarkReplay100k measures the auditor's replay of 100,000 entries: decoding, recovering and
// checking every signature, applying every rule, counting signatures.
func BenchmarkReplay100k(b *testing.B) {
	entries := entries100k(b)
	b.ResetTimer()
	for b.Loop() {
		sigs, err := Replay(context.Background(), benchOrigin, ledger.NewState(), entries, int64(len(entries)), nil)
		if err != nil {
			b.Fatal(err)
		}
		if sigs != int64(len(entries)) {
			b.Fatalf("counted %d signatures, want %d", sigs, len(entries))
		}
	}
	b.ReportMetric(float64(len(entries))*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
