package graphql

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/api/graphql/internal/exec"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// The page sizes of rawRecords.
const (
	DefaultRawPageSize = 100
	MaxRawPageSize     = 1000
)

// A rawRecords cursor is the (time, seq) of the last record of a page, opaque to clients.
func encodeRawCursor(ms, seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("raw:" + strconv.FormatInt(ms, 10) + ":" + strconv.FormatInt(seq, 10)))
}

func decodeRawCursor(c *string) (ms, seq int64, ok bool, err error) {
	if c == nil || *c == "" {
		return 0, 0, false, nil
	}
	bad := codedError(CodeBadRequest, "after: %q is not a cursor of this list", *c)
	b, err := base64.RawURLEncoding.DecodeString(*c)
	if err != nil {
		return 0, 0, false, bad
	}
	rest, found := strings.CutPrefix(string(b), "raw:")
	t, s, found2 := strings.Cut(rest, ":")
	if !found || !found2 {
		return 0, 0, false, bad
	}
	ms, err1 := strconv.ParseInt(t, 10, 64)
	seq, err2 := strconv.ParseInt(s, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false, bad
	}
	return ms, seq, true, nil
}

// ceilMilli is the first whole unix millisecond at or after t.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

func (q *queryResolver) RawRecords(ctx context.Context, tokenID int, from, to time.Time, first *int, after *string) (*exec.RawRecordConnection, error) {
	if tokenID < 0 {
		return nil, codedError(CodeBadRequest, "tokenId %d: vehicle ids are not negative", tokenID)
	}
	if !from.Before(to) {
		return nil, codedError(CodeBadRequest, "from (%s) must be before to (%s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	if span := to.Sub(from); span > MaxRange {
		return nil, codedError(CodeBadRequest, "from and to are %s apart; at most 31 days are allowed", span)
	}
	n := DefaultRawPageSize
	if first != nil {
		if *first < 0 || *first > MaxRawPageSize {
			return nil, codedError(CodeBadRequest, "first is %d; it must be 0 to %d", *first, MaxRawPageSize)
		}
		n = *first
	}
	afterMS, afterSeq, hasAfter, err := decodeRawCursor(after)
	if err != nil {
		return nil, err
	}
	if q.cfg.Log == nil {
		return nil, errors.New("graphql: no log configured")
	}
	vehicle := uint64(tokenID)
	// @requires already decided; this decision (from a view of the ledger as fresh) says since when.
	d, err := (*resolver)(q).check(ctx, vehicle, ledger.PermRaw)
	if err != nil {
		return nil, accessError(err)
	}
	g := grants{owner: d.Role == access.RoleOwner, since: d.Since}
	// A record is handed out only if the caller may read every signal in it that raw does not cover by
	// itself: signed bytes cannot be redacted, and raw must not be a way around location or credentials.
	held := map[string]bool{}
	for _, p := range rawGuarded {
		_, err := (*resolver)(q).check(ctx, vehicle, p)
		held[p] = err == nil
	}
	lo, hi := max(ceilMilli(from), d.Since.UnixMilli()), ceilMilli(to)
	if !hasAfter {
		afterMS, afterSeq = lo, 0 // seq starts at 1
	}

	out := &exec.RawRecordConnection{Edges: []exec.RawRecordEdge{}, Nodes: []exec.RawRecord{}, PageInfo: &exec.PageInfo{}}
	perms := []string{ledger.PermRaw}
	if lo < hi {
		used, err := q.readRaw(ctx, vehicle, lo, hi, afterMS, afterSeq, n, held, out)
		if err != nil {
			return nil, err
		}
		for _, p := range rawGuarded {
			if used[p] {
				perms = append(perms, p)
			}
		}
	}
	q.recordEntry(ctx, vehicle, g, perms, time.UnixMilli(lo).UTC(), to, len(out.Nodes), "ok")
	return out, nil
}

// rawGuarded are the permissions a record's signals may need beyond raw: a record carrying a signal guarded
// by one of them (a position, altitude or heading; the VIN) goes only to a caller holding it.
var rawGuarded = []string{ledger.PermLocation, ledger.PermCredentials}

// readRaw reads up to n records of vehicle measured in [lo, hi) after the cursor (afterMS, afterSeq) into
// out. Records carrying a signal guarded by a permission of rawGuarded that held does not grant are passed
// over and counted in out.Withheld. It returns the guarded permissions the records it returned used.
func (q *queryResolver) readRaw(ctx context.Context, vehicle uint64, lo, hi, afterMS, afterSeq int64, n int, held map[string]bool,
	out *exec.RawRecordConnection) (used map[string]bool, err error) {
	used = map[string]bool{}
	size, checkpoint := q.cfg.Log.Latest()
	proofs := map[int64]*exec.PairingProof{}
	batch := n + 1
	for {
		recs, err := q.cfg.Telemetry.Records(ctx, telemetry.RecordsQuery{Vehicle: vehicle, Lo: lo, Hi: hi, AfterTime: afterMS, AfterSeq: afterSeq, Limit: batch})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if len(out.Nodes) == n {
				out.PageInfo.HasNextPage = true
				return used, nil
			}
			afterMS, afterSeq = r.Time, r.Seq
			c := encodeRawCursor(r.Time, r.Seq)
			out.PageInfo.EndCursor = &c
			needs := q.guardedBy(r.Event)
			if !held[ledger.PermLocation] && needs[ledger.PermLocation] || !held[ledger.PermCredentials] && needs[ledger.PermCredentials] {
				out.Withheld++
				continue
			}
			for p := range needs {
				used[p] = true
			}
			p := proofs[r.Pairing]
			if p == nil {
				if p, err = q.pairingProof(ctx, r.Pairing, size, checkpoint); err != nil {
					return nil, err
				}
				proofs[r.Pairing] = p
			}
			node := exec.RawRecord{ID: r.ID, Source: r.Source.Hex(), VehicleID: int(vehicle),
				Time: time.UnixMilli(r.Time).UTC(), ReceivedAt: time.UnixMilli(r.Received).UTC(), Event: string(r.Event),
				Signature: "0x" + hex.EncodeToString(r.Signature), Pairing: p}
			out.Edges = append(out.Edges, exec.RawRecordEdge{Cursor: c, Node: &node})
			out.Nodes = append(out.Nodes, node)
		}
		if len(recs) < batch {
			return used, nil
		}
	}
}

// guardedBy returns the permissions of rawGuarded that the signals of a stored event need. The event is
// parsed as ingest parsed it (strict RFC 8259 JSON, names unescaped, the catalogue's signals), never
// searched as bytes: "currentLocation\u0043oordinates" is the location signal too. An event that does not
// parse (it cannot have been stored so, but this is no place to trust that) needs every one of them.
func (q *queryResolver) guardedBy(event []byte) map[string]bool {
	needs := map[string]bool{}
	r, err := q.cfg.Catalog.Parse(&telemetry.Submission{Event: event, Signature: make([]byte, 65)}, math.MaxInt64/2)
	if err != nil {
		for _, p := range rawGuarded {
			needs[p] = true
		}
		return needs
	}
	for _, v := range r.Values {
		if slices.Contains(rawGuarded, v.Signal.Permission) {
			needs[v.Signal.Permission] = true
		}
	}
	return needs
}

func (q *queryResolver) pairingProof(ctx context.Context, index, size int64, checkpoint []byte) (*exec.PairingProof, error) {
	entry, err := q.cfg.Log.Entry(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the pairing entry %d: %w", index, err)
	}
	proof, err := q.cfg.Log.InclusionProof(index, size)
	if err != nil {
		return nil, fmt.Errorf("couldn't prove the pairing entry %d in tree %d: %w", index, size, err)
	}
	h := xtlog.RecordHash(entry)
	p := &exec.PairingProof{Index: int(index), Entry: base64.StdEncoding.EncodeToString(entry), LeafHash: "0x" + hex.EncodeToString(h[:]),
		TreeSize: int(size), Checkpoint: string(checkpoint), InclusionProof: make([]string, len(proof))}
	for i, x := range proof {
		p.InclusionProof[i] = base64.StdEncoding.EncodeToString(x[:])
	}
	return p, nil
}
