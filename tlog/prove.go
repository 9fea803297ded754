package tlog

import (
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// ProveRecords returns, for each n of indexes, the proof tlog.ProveRecord(t, n, r) returns: that record n
// is in the tree of size t. A receipt for a batch of transactions holds one proof per entry, all in the
// same tree, and most of their hashes are the same — the hashes of the tree's incomplete right edge above
// all, which ProveRecord computes again for each proof. Here each stored hash is read, and each hash of an
// incomplete subtree computed, once for all of the proofs. No proof is nil (a tree of one record's is empty).
func ProveRecords(t int64, indexes []int64, r tlog.HashReader) ([]tlog.RecordProof, error) {
	p := prover{r: r, memo: map[[2]int64]tlog.Hash{}}
	out := make([]tlog.RecordProof, len(indexes))
	for i, n := range indexes {
		if t < 0 || n < 0 || n >= t {
			return nil, fmt.Errorf("tlog: proof of record %d in a tree of size %d: invalid", n, t)
		}
		proof, err := p.leafProof(0, t, n, make(tlog.RecordProof, 0, bits.Len64(uint64(t))))
		if err != nil {
			return nil, err
		}
		out[i] = proof
	}
	return out, nil
}

// prover computes proofs of records in one tree, remembering the hash of every incomplete subtree it
// computes (those of the tree's right edge; a complete one is a stored hash).
type prover struct {
	r    tlog.HashReader
	memo map[[2]int64]tlog.Hash // by [lo, hi): the records the subtree holds
}

// stored returns the stored hash at index i.
func (p *prover) stored(i int64) (tlog.Hash, error) {
	if s, ok := p.r.(hashSlice); ok && i < int64(len(s)) { // the log's own hashes, in memory
		return s[i], nil
	}
	hs, err := p.r.ReadHashes([]int64{i})
	if err != nil {
		return tlog.Hash{}, err
	}
	if len(hs) != 1 {
		return tlog.Hash{}, fmt.Errorf("tlog: read %d hashes for one", len(hs))
	}
	return hs[0], nil
}

// leafProof appends to proof the hashes that prove record n in the subtree of records [lo, hi), from the
// leaf up, as RFC 6962's PATH does (and tlog.ProveRecord): the sibling of the half that holds n, after
// the proof within that half.
func (p *prover) leafProof(lo, hi, n int64, proof tlog.RecordProof) (tlog.RecordProof, error) {
	if lo+1 == hi {
		return proof, nil
	}
	k := splitAt(hi - lo)
	var sibling tlog.Hash
	var err error
	if n < lo+k {
		if proof, err = p.leafProof(lo, lo+k, n, proof); err == nil {
			sibling, err = p.subtreeHash(lo+k, hi)
		}
	} else {
		if proof, err = p.leafProof(lo+k, hi, n, proof); err == nil {
			sibling, err = p.subtreeHash(lo, lo+k)
		}
	}
	if err != nil {
		return nil, err
	}
	return append(proof, sibling), nil
}

// subtreeHash returns the hash of the subtree of records [lo, hi): a stored hash when it is complete
// (leafProof only asks for subtrees that start at a multiple of their size), else the hash of its two
// halves split as RFC 6962 splits them.
func (p *prover) subtreeHash(lo, hi int64) (tlog.Hash, error) {
	size := hi - lo
	if size&(size-1) == 0 {
		level := bits.TrailingZeros64(uint64(size))
		return p.stored(tlog.StoredHashIndex(level, lo>>level))
	}
	key := [2]int64{lo, hi}
	if h, ok := p.memo[key]; ok {
		return h, nil
	}
	k := splitAt(size)
	left, err := p.subtreeHash(lo, lo+k)
	if err != nil {
		return tlog.Hash{}, err
	}
	right, err := p.subtreeHash(lo+k, hi)
	if err != nil {
		return tlog.Hash{}, err
	}
	h := tlog.NodeHash(left, right)
	p.memo[key] = h
	return h, nil
}

// splitAt returns the largest power of two below n (n ≥ 2): where RFC 6962 splits a tree of n records.
func splitAt(n int64) int64 {
	return 1 << (bits.Len64(uint64(n-1)) - 1)
}
