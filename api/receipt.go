package api

import (
	"encoding/base64"
	"encoding/hex"
	"strconv"

	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/api/wire"
	"github.com/glovebox/glovebox/ledger"
)

// appendOutcome appends the receipt of an accepted submission, exactly as Receipt.AppendJSON would encode
// the Receipt that receipt() builds, but without building it: no string per proof hash, no copy of the
// checkpoint per transaction. proof is the entry's inclusion proof in the tree of o.TreeSize, or nil to
// have it computed here.
func (s *Server) appendOutcome(b []byte, o *ledger.Outcome, proof xtlog.RecordProof) ([]byte, error) {
	if proof == nil {
		var err error
		if proof, err = s.log.InclusionProof(o.Index, o.TreeSize); err != nil {
			return b, err
		}
	}
	h := xtlog.RecordHash(o.Entry)
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, o.Index, 10)
	b = append(b, `,"hash":"0x`...)
	b = hex.AppendEncode(b, h[:])
	b = append(b, `","treeSize":`...)
	b = strconv.AppendInt(b, o.TreeSize, 10)
	b = append(b, `,"checkpoint":`...)
	b = wire.AppendString(b, string(o.Checkpoint)) // no allocation: the conversion does not escape
	b = append(b, `,"inclusionProof":[`...)
	for i, p := range proof {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, p[:])
		b = append(b, '"')
	}
	b = append(b, ']')
	b = wire.AppendResult(b, &o.Result)
	return append(b, '}'), nil
}

// batchProver is a log that proves many entries of one tree at once, computing the hashes their proofs
// share once (*tlog.Log and *postgres.Log are).
type batchProver interface {
	InclusionProofs(indexes []int64, size int64) ([]xtlog.RecordProof, error)
}

// batchProofs returns the inclusion proof of each outcome that is not nil, those of one tree together
// when the log can; the others, and all of them when the log can't or fails, are nil (appendOutcome then
// proves each alone).
func (s *Server) batchProofs(outcomes []*ledger.Outcome) []xtlog.RecordProof {
	bp, ok := s.log.(batchProver)
	if !ok {
		return nil
	}
	proofs := make([]xtlog.RecordProof, len(outcomes))
	var indexes []int64
	var at []int
	for size := int64(-1); ; size = -1 {
		indexes, at = indexes[:0], at[:0]
		for i, o := range outcomes {
			if o == nil || proofs[i] != nil || (size >= 0 && o.TreeSize != size) {
				continue
			}
			size = o.TreeSize
			indexes, at = append(indexes, o.Index), append(at, i)
		}
		if len(indexes) == 0 {
			return proofs
		}
		ps, err := bp.InclusionProofs(indexes, size)
		if err != nil {
			s.logger.Error("receipts: inclusion proofs", "size", size, "err", err)
			return nil
		}
		for j, i := range at {
			proofs[i] = ps[j] // never nil: a tree of one entry's proof is empty, not missing
		}
	}
}
