package ledger

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// recoverCases are transactions whose signers, or refusal, the Recoverer must give exactly as
// Domain.Signers does.
func recoverCases(t *testing.T) []struct {
	name string
	tx   *Tx
	want []common.Address
	code Code
} {
	unsigned := sampleTx(t, TypeBurnVehicle)
	unsigned.Signatures = nil
	highSTx := sampleTx(t, TypeBurnVehicle)
	highSTx.Signatures[0] = highS(highSTx.Signatures[0])
	twice := sign(t, message(TypeBurnVehicle, 7, testStart), alice, alice)
	return []struct {
		name string
		tx   *Tx
		want []common.Address
		code Code
	}{
		{"one signer", sampleTx(t, TypeBurnVehicle), []common.Address{alice.addr}, ""},
		{"two signers in order", sampleTx(t, TypePairDevice), []common.Address{alice.addr, connector.addr}, ""},
		{"two other signers", sampleTx(t, TypeRegisterDevice), []common.Address{spare.addr, maker.addr}, ""},
		{"no signature", unsigned, nil, CodeMissingSignature},
		{"a high-s signature", highSTx, nil, CodeBadSignature},
		{"the same signer twice", twice, nil, CodeMalformed},
	}
}

func checkRecovered(t *testing.T, name string, got []common.Address, err error, want []common.Address, code Code) {
	t.Helper()
	if code != "" {
		var e *Error
		if !errors.As(err, &e) || e.Code != code {
			t.Errorf("%s: err = %v, want code %s", name, err, code)
		}
		return
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("%s: signers = %v, %v; want %v", name, got, err, want)
	}
}

func TestRecovererGivesWhatSignersGives(t *testing.T) {
	cases := recoverCases(t)
	for _, workers := range []int{1, 2, 5} {
		t.Run(fmt.Sprintf("%d workers, 40 concurrent callers", workers), func(t *testing.T) {
			r := NewRecoverer(testDomain, workers)
			var wg sync.WaitGroup
			for g := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range 3 {
						c := cases[(g+k)%len(cases)]
						got, err := r.Signers(c.tx)
						checkRecovered(t, c.name, got, err, c.want, c.code)
					}
				}()
			}
			wg.Wait()
		})
		t.Run(fmt.Sprintf("%d workers, a batch with gaps", workers), func(t *testing.T) {
			r := NewRecoverer(testDomain, workers)
			var txs []*Tx
			for range 25 {
				for _, c := range cases {
					txs = append(txs, c.tx, nil)
				}
			}
			signers, errs := make([][]common.Address, len(txs)), make([]error, len(txs))
			r.SignersOf(txs, signers, errs)
			for i, tx := range txs {
				if tx == nil {
					if signers[i] != nil || errs[i] != nil {
						t.Errorf("position %d has no transaction but got %v, %v", i, signers[i], errs[i])
					}
					continue
				}
				c := cases[i/2%len(cases)]
				checkRecovered(t, c.name, signers[i], errs[i], c.want, c.code)
			}
		})
	}
}
