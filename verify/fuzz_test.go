package verify_test

import (
	"bytes"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/tlog"
	"github.com/glovebox/glovebox/verify"
)

// FuzzExtend replaces one tile of a good log of 300 entries with arbitrary bytes: Tree.Extend,
// CheckInclusion and CheckConsistency never crash, and Extend passes exactly when the bytes are the tile's.
func FuzzExtend(f *testing.F) {
	const origin, size = "glovebox.test/fuzz", 300
	skey, vkey, err := tlog.GenerateKey(origin)
	if err != nil {
		f.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		f.Fatal(err)
	}
	l, err := tlog.Open(f.TempDir(), origin, signer)
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	entries := make([][]byte, size)
	for i := range entries {
		entries[i] = fmt.Appendf(nil, "entry %d", i)
	}
	if _, _, err := l.Append(f.Context(), entries); err != nil {
		f.Fatal(err)
	}
	cp, err := verify.CheckCheckpoint(vkey, l.Checkpoint())
	if err != nil {
		f.Fatal(err)
	}
	paths := verify.TilesFor(0, size)
	good := map[string][]byte{}
	for _, p := range paths {
		if good[p], err = l.ReadTile(p); err != nil {
			f.Fatal(err)
		}
	}
	prev := verify.Checkpoint{Origin: origin, Size: 256, Root: [32]byte(good["tile/1/000.p/1"][:32])}
	if _, err := (&verify.Tree{}).Extend(cp, good); err != nil {
		f.Fatalf("the good log does not verify: %v", err)
	}
	for i, p := range paths {
		f.Add(i, good[p])
		f.Add(i, good[p][:len(good[p])-1])
	}
	f.Fuzz(func(t *testing.T, which int, data []byte) {
		if which < 0 {
			which = -which
		}
		p := paths[which%len(paths)]
		tiles := map[string][]byte{}
		for k, v := range good {
			tiles[k] = v
		}
		tiles[p] = data
		_, err := (&verify.Tree{}).Extend(cp, tiles)
		if same := bytes.Equal(data, good[p]); same != (err == nil) {
			t.Fatalf("Extend with %s replaced (same bytes: %v) = %v", p, same, err)
		}
		verify.CheckInclusion(cp, int64(which%size), entries[which%size], tiles)
		verify.CheckConsistency(prev, cp, tiles)
	})
}
