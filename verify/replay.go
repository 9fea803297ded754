package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/glovebox/glovebox/ledger"
)

// Replay applies entries [st.Size(), to) of a verified log (Tree.Entries) to st, under the ledger's rules
// and the EIP-712 domain of the log's origin, with ledger.Replay: every entry decoded, every signature
// recovered and checked, every rule applied. It returns the signatures the replayed entries carry. An
// entry that breaks a rule or does not decode fails with a *Failure at StageReplay naming it. Replay
// reads nothing but its arguments; st.Digest() afterwards is the state digest a node must report at
// st.Size() entries.
func Replay(ctx context.Context, origin string, st *ledger.State, entries [][]byte, to int64, progress func(done int64)) (signatures int64, err error) {
	src := func(ctx context.Context, from, n int64) ([][]byte, error) {
		if from+n > int64(len(entries)) {
			return nil, fmt.Errorf("only %d entries were given", len(entries))
		}
		raw := entries[from : from+n]
		for _, r := range raw {
			// ledger.Replay decodes them again and reports any that don't decode.
			if e, err := ledger.UnmarshalEntry(r); err == nil {
				signatures += int64(len(e.Tx.Signatures))
			}
		}
		return raw, nil
	}
	err = ledger.Replay(ctx, ledger.NewDomain(origin), st, to, src, progress)
	var ee *ledger.EntryError
	switch {
	case errors.As(err, &ee):
		return signatures, &Failure{Index: ee.Index, Stage: StageReplay, Err: ee.Err}
	case err != nil:
		return signatures, fail(StageReplay, "%w", err)
	}
	return signatures, nil
}
