package verify_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/tlog"
	"github.com/glovebox/glovebox/verify"
	"github.com/glovebox/glovebox/verify/verifytest"
)

// mirrored populates a node, writes its mirror with WriteMirror and returns the mirror in memory, with
// the node and a signer of its log key (to forge what only the log could sign).
func mirrored(t *testing.T) (*verifytest.Node, verifytest.Population, fstest.MapFS, note.Signer) {
	t.Helper()
	n, p := populated(t)
	dir := t.TempDir()
	if _, err := verify.WriteMirror(t.Context(), n.Client, dir, nil); err != nil {
		t.Fatalf("WriteMirror: %v", err)
	}
	m := fstest.MapFS{}
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(name)
		rel, _ := filepath.Rel(dir, name)
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	skey, err := os.ReadFile(filepath.Join(n.DataDir, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	return n, p, m, s
}

// clone copies a mirror so that a test case can change it.
func clone(m fstest.MapFS) fstest.MapFS {
	out := fstest.MapFS{}
	for k, v := range m {
		out[k] = &fstest.MapFile{Data: bytes.Clone(v.Data)}
	}
	return out
}

func TestMirrorNamesEachKindOfFault(t *testing.T) {
	n, p, good, signer := mirrored(t)
	origin := n.Log.Origin()
	// The log has p.Entries entries: bundle 000 is full, 001 partial; hash tiles 0/000, 0/001.p/W, 1/000.p/1.
	w := strconv.FormatInt(p.Entries-256, 10)
	partial := "tile/entries/001.p/" + w
	cp, err := verify.CheckCheckpoint(n.LogKey, good[verify.MirrorCheckpoint].Data)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(t *testing.T, s note.Signer, size int64, root xtlog.Hash) []byte {
		b, err := tlog.SignCheckpoint(origin, size, root, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	otherKey := func(t *testing.T) note.Signer {
		skey, _, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			t.Fatal(err)
		}
		s, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	flipEntry := func(k int) func(*testing.T, fstest.MapFS) {
		return func(t *testing.T, m fstest.MapFS) {
			f := m["tile/entries/000"]
			f.Data = editBundle(t, f.Data, func(l [][]byte) [][]byte { l[k][len(l[k])/2] ^= 0x01; return l })
		}
	}

	tests := []struct {
		name     string
		change   func(*testing.T, fstest.MapFS) // nil: the good mirror
		previous func(*testing.T) []byte        // nil: none
		kind     error                          // nil: passes
		stage    string
		index    int64
		want     string
	}{
		{name: "the mirror as written passes"},
		{name: "the mirror passes against a checkpoint of its own past",
			// The first hash of the level-1 tile is the root of the first 256 entries.
			previous: func(t *testing.T) []byte { return sign(t, signer, 256, xtlog.Hash(good["tile/1/000.p/1"].Data[:32])) }},
		{name: "a flipped byte in a hash tile",
			change: func(t *testing.T, m fstest.MapFS) { m["tile/0/000"].Data[100] ^= 0x80 },
			kind:   verify.ErrTileMismatch, stage: verify.StageTiles, index: -1, want: "hash tile tile/0/000 does not match the entries: its hash 3 "},
		{name: "a hash tile missing",
			change: func(t *testing.T, m fstest.MapFS) { delete(m, "tile/1/000.p/1") },
			kind:   verify.ErrTileMismatch, stage: verify.StageTiles, index: -1, want: "hash tile tile/1/000.p/1 is missing"},
		{name: "a flipped byte in an entry",
			change: flipEntry(17),
			kind:   verify.ErrEntryChanged, stage: verify.StageTree, index: 17, want: "entry 17: the entry served is not leaf 17 of the checkpoint's tree"},
		{name: "the last entry missing from the partial bundle",
			change: func(t *testing.T, m fstest.MapFS) {
				f := m[partial]
				f.Data = editBundle(t, f.Data, func(l [][]byte) [][]byte { return l[:len(l)-1] })
			},
			kind: verify.ErrEntryMissing, stage: verify.StageTree, index: p.Entries - 1,
			want: "the entry is missing (entry bundle " + partial + " has " + strconv.FormatInt(p.Entries-257, 10) + " entries, want " + w + ")"},
		{name: "an entry dropped from the middle of a full bundle",
			change: func(t *testing.T, m fstest.MapFS) {
				f := m["tile/entries/000"]
				f.Data = editBundle(t, f.Data, func(l [][]byte) [][]byte { return append(l[:40], l[41:]...) })
			},
			kind: verify.ErrEntryMissing, stage: verify.StageTree, index: 40, want: "has 255 entries, want 256"},
		{name: "an entry bundle missing",
			change: func(t *testing.T, m fstest.MapFS) { delete(m, partial) },
			kind:   verify.ErrEntryMissing, stage: verify.StageTree, index: 256, want: "entry 256: the entry is missing (entry bundle " + partial + " is missing)"},
		{name: "a checkpoint signed by another key",
			change: func(t *testing.T, m fstest.MapFS) {
				m[verify.MirrorCheckpoint].Data = sign(t, otherKey(t), cp.Size, cp.Root)
			},
			kind: verify.ErrCheckpoint, stage: verify.StageCheckpoint, index: -1, want: "checkpoint: the checkpoint does not verify with the log key"},
		{name: "a forked checkpoint: the log signed another root for the same size",
			previous: func(t *testing.T) []byte { return sign(t, signer, cp.Size, xtlog.Hash{1}) },
			kind:     verify.ErrFork, stage: verify.StageConsistency, index: -1, want: "fork: the log's first " + strconv.FormatInt(p.Entries, 10) + " entries hash to"},
		{name: "a forked checkpoint: the log signed a larger tree before",
			previous: func(t *testing.T) []byte { return sign(t, signer, cp.Size+1, cp.Root) },
			kind:     verify.ErrFork, stage: verify.StageConsistency, index: -1, want: "the log was rolled back or forked"},
		{name: "a previous checkpoint signed by another key",
			previous: func(t *testing.T) []byte { return sign(t, otherKey(t), 1, cp.Root) },
			kind:     verify.ErrCheckpoint, stage: verify.StageConsistency, index: -1, want: "the previous checkpoint does not verify with the log key"},
		{name: "a state digest that is not the replay's",
			change: func(t *testing.T, m fstest.MapFS) {
				m[verify.MirrorStateDigest].Data = []byte(`{"treeSize":` + strconv.FormatInt(p.Entries, 10) + `,"digest":"0x` + strings.Repeat("ab", 32) + `"}`)
			},
			kind: verify.ErrState, stage: verify.StageState, index: -1, want: "is 0x" + strings.Repeat("ab", 32) + ", but replaying the log gives"},
	}
	kinds := []error{verify.ErrCheckpoint, verify.ErrFork, verify.ErrEntryMissing, verify.ErrEntryChanged, verify.ErrTileMismatch, verify.ErrState, verify.ErrMalformed}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := clone(good)
			if tt.change != nil {
				tt.change(t, m)
			}
			opts := verify.MirrorOptions{Key: n.LogKey}
			if tt.previous != nil {
				opts.Previous = tt.previous(t)
			}
			s, err := verify.Mirror(t.Context(), m, opts)
			if tt.kind == nil {
				if err != nil {
					t.Fatalf("Mirror: %v", err)
				}
				if s.TreeSize != p.Entries || s.Entries != p.Entries || s.Signatures != p.Signatures || s.Vehicles != p.Vehicles ||
					s.Devices != p.Devices || s.Apps != p.Apps || s.Grants != p.Grants || s.RootHash != cp.Root {
					t.Errorf("Mirror = %+v, want %d entries and signatures %d, %d vehicles, %d devices, %d apps, %d grants, root %v",
						s, p.Entries, p.Signatures, p.Vehicles, p.Devices, p.Apps, p.Grants, cp.Root)
				}
				return
			}
			var f *verify.Failure
			if !errors.As(err, &f) {
				t.Fatalf("Mirror = %v, %v; want a *verify.Failure", s, err)
			}
			if f.Stage != tt.stage || f.Index != tt.index || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Mirror failed at stage %q, entry %d: %v\nwant stage %q, entry %d, a message containing %q", f.Stage, f.Index, err, tt.stage, tt.index, tt.want)
			}
			for _, k := range kinds {
				if errors.Is(err, k) != (k == tt.kind) {
					t.Errorf("errors.Is(err, %q) = %v, want %v", k, errors.Is(err, k), k == tt.kind)
				}
			}
		})
	}
}

func TestCheckInclusionFromHashTilesAlone(t *testing.T) {
	n, _, m, _ := mirrored(t)
	cp, err := verify.CheckCheckpoint(n.LogKey, m[verify.MirrorCheckpoint].Data)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := tlog.ParseEntryBundle(m["tile/entries/000"].Data)
	if err != nil {
		t.Fatal(err)
	}
	hashTiles := map[string][]byte{}
	for k, f := range m {
		if strings.HasPrefix(k, "tile/") && !strings.HasPrefix(k, "tile/entries/") {
			hashTiles[k] = f.Data
		}
	}
	flipped := bytes.Clone(entries[17])
	flipped[3] ^= 1
	badTiles := maps.Clone(hashTiles)
	badTiles["tile/0/000"] = bytes.Clone(badTiles["tile/0/000"])
	badTiles["tile/0/000"][17*32] ^= 1
	tests := []struct {
		name  string
		index int64
		entry []byte
		tiles map[string][]byte
		kind  error
	}{
		{"entry 17 is included", 17, entries[17], hashTiles, nil},
		{"entry 17 is not entry 18", 18, entries[17], hashTiles, verify.ErrEntryChanged},
		{"a changed entry is not included", 17, flipped, hashTiles, verify.ErrEntryChanged},
		{"a flipped hash tile proves nothing", 17, entries[17], badTiles, verify.ErrTileMismatch},
		{"an index past the tree", cp.Size, entries[17], hashTiles, verify.ErrEntryMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify.CheckInclusion(cp, tt.index, tt.entry, tt.tiles)
			if (tt.kind == nil) != (err == nil) || tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("CheckInclusion(%d) = %v, want %v", tt.index, err, tt.kind)
			}
		})
	}
}

// TestWriteMirrorCatchesUp writes a mirror, lets the log grow and writes it again: the new mirror verifies
// against the old checkpoint, and the partial tiles the growth replaced are gone.
func TestWriteMirrorCatchesUp(t *testing.T) {
	n, p := populated(t)
	dir := t.TempDir()
	first, err := verify.WriteMirror(t.Context(), n.Client, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.RegisterVehicles(t, verifytest.NewAccount(t), 512-int(p.Entries))
	if _, err := verify.WriteMirror(t.Context(), n.Client, dir, nil); err != nil {
		t.Fatal(err)
	}
	s, err := verify.Mirror(t.Context(), os.DirFS(dir), verify.MirrorOptions{Key: n.LogKey, Previous: first.Signed})
	if err != nil {
		t.Fatalf("Mirror: %v", err)
	}
	if s.TreeSize != 512 {
		t.Errorf("the mirror's tree has %d entries, want 512", s.TreeSize)
	}
	var files []string
	err = filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, name)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	want := []string{"checkpoint", "key", "state-digest", "tile/0/000", "tile/0/001", "tile/1/000.p/2", "tile/entries/000", "tile/entries/001"}
	if !slices.Equal(files, want) {
		t.Errorf("the mirror holds %q, want %q", files, want)
	}
	var dg struct{ TreeSize int64 }
	if b, err := os.ReadFile(filepath.Join(dir, "state-digest")); err != nil || json.Unmarshal(b, &dg) != nil || dg.TreeSize != 512 {
		t.Errorf("state-digest: %s, %v; want a digest at 512 entries", b, err)
	}
}

func TestCheckConsistencyFromHashTilesAlone(t *testing.T) {
	n, p, m, signer := mirrored(t)
	cp, err := verify.CheckCheckpoint(n.LogKey, m[verify.MirrorCheckpoint].Data)
	if err != nil {
		t.Fatal(err)
	}
	hashTiles := map[string][]byte{}
	for k, f := range m {
		if strings.HasPrefix(k, "tile/") && !strings.HasPrefix(k, "tile/entries/") {
			hashTiles[k] = f.Data
		}
	}
	badTiles := maps.Clone(hashTiles)
	badTiles["tile/0/001.p/"+strconv.FormatInt(p.Entries-256, 10)] = bytes.Repeat([]byte{9}, int(p.Entries-256)*32)
	// The first hash of the level-1 tile is the root of the first 256 entries.
	root256 := xtlog.Hash(m["tile/1/000.p/1"].Data[:32])
	at := func(size int64, root xtlog.Hash) verify.Checkpoint {
		b, err := tlog.SignCheckpoint(n.Log.Origin(), size, root, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := verify.CheckCheckpoint(n.LogKey, b)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	empty, _ := xtlog.TreeHash(0, nil)
	tests := []struct {
		name  string
		prev  verify.Checkpoint
		tiles map[string][]byte
		kind  error
	}{
		{"the tree of 256 entries is a prefix", at(256, root256), hashTiles, nil},
		{"the empty tree is a prefix", at(0, empty), hashTiles, nil},
		{"the checkpoint itself", cp, hashTiles, nil},
		{"another root for 256 entries is a fork", at(256, xtlog.Hash{1}), hashTiles, verify.ErrFork},
		{"another root for the same size is a fork", at(cp.Size, xtlog.Hash{1}), hashTiles, verify.ErrFork},
		{"a larger tree signed before is a fork", at(cp.Size+1, cp.Root), hashTiles, verify.ErrFork},
		{"a wrong hash tile proves nothing", at(256, root256), badTiles, verify.ErrTileMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify.CheckConsistency(tt.prev, cp, tt.tiles)
			if (tt.kind == nil) != (err == nil) || tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("CheckConsistency(%d → %d) = %v, want %v", tt.prev.Size, cp.Size, err, tt.kind)
			}
		})
	}
}
