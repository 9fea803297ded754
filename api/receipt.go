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
// checkpoint per transaction.
func (s *Server) appendOutcome(b []byte, o *ledger.Outcome) ([]byte, error) {
	proof, err := s.log.InclusionProof(o.Index, o.TreeSize)
	if err != nil {
		return b, err
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
