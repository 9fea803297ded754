package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/ledger"
)

// BenchmarkSaveRegisterVehicles saves the changes of 1,000 RegisterVehicle transactions per iteration: the
// read model's cost per transaction on the sequencer's hot path.
func BenchmarkSaveRegisterVehicles(b *testing.B) {
	s, err := OpenIdentity(filepath.Join(b.TempDir(), "identity.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	next := uint64(1)
	owner := common.BigToAddress(common.Big1).Hex()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var c ledger.Changes
		for j := 0; j < 1000; j++ {
			c.Vehicles = append(c.Vehicles, ledger.Vehicle{ID: next, Owner: owner, Make: "Volvo", Model: fmt.Sprint("XC", j), Year: 2023, RegisteredAt: int64(next)})
			var n ledger.Nonce
			n.Signer = common.BigToAddress(common.Big1)
			n.Nonce.SetUint64(next)
			c.Nonces = append(c.Nonces, n)
			next++
		}
		c.Size = int64(next)
		if err := s.Save(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000)/1000, "µs/tx")
}
