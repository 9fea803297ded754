package api_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
)

// TestAnOffTheShelfTlogClientReadsTheLog reads the node's /log/ with transparency-dev/tessera's client
// (checkpoint, tiles, entry bundles) and checks its proofs with transparency-dev/merkle: nothing of
// Glovebox's own is used on the reading side.
func TestAnOffTheShelfTlogClientReadsTheLog(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	ctx := context.Background()
	owner := testnode.NewKey(t)
	var txs []*ledger.Tx
	for i := 0; i < 600; i++ { // more than two full tiles and entry bundles, and a partial one
		txs = append(txs, n.Sign(t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Fiat", Model: "500e", Year: 2022}, owner))
	}
	if _, err := n.Client.SubmitBatch(ctx, txs[:300]); err != nil {
		t.Fatal(err)
	}
	smaller := n.Log.Size()
	if _, err := n.Client.SubmitBatch(ctx, txs[300:]); err != nil {
		t.Fatal(err)
	}

	root, _ := url.Parse(n.URL + "/log/")
	f, err := tclient.NewHTTPFetcher(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(n.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	cp, _, _, err := tclient.FetchCheckpoint(ctx, f.ReadCheckpoint, v, n.Log.Origin())
	if err != nil {
		t.Fatalf("tessera's client refuses the checkpoint: %v", err)
	}
	if cp.Size != 600 {
		t.Fatalf("checkpoint size %d, want 600", cp.Size)
	}
	pb, err := tclient.NewProofBuilder(ctx, cp.Size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < cp.Size; i++ {
		b, err := tclient.GetEntryBundle(ctx, f.ReadEntryBundle, i/256, cp.Size)
		if err != nil {
			t.Fatalf("entry bundle of %d: %v", i, err)
		}
		entry := b.Entries[i%256]
		want, _ := n.Log.Entry(context.Background(), int64(i))
		if string(entry) != string(want) {
			t.Fatalf("entry %d differs in its bundle", i)
		}
		p, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatalf("inclusion proof of %d: %v", i, err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, rfc6962.DefaultHasher.HashLeaf(entry), p, cp.Hash); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if i%97 == 0 {
			i += 50 // sample the rest, fetching bundles is the slow part
		}
	}
	old, err := n.Log.RootHash(smaller)
	if err != nil {
		t.Fatal(err)
	}
	cproof, err := pb.ConsistencyProof(ctx, uint64(smaller), cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(smaller), cp.Size, cproof, old[:], cp.Hash); err != nil {
		t.Fatalf("consistency %d → %d: %v", smaller, cp.Size, err)
	}
}
