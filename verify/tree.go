package verify

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/tlog"
)

// C2SP tlog-tiles tiles have height 8: 256 hashes or entries each.
const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight
)

// The kinds of failure the pure checks tell apart. A *Failure wraps at most one of them (test with
// errors.Is); its message is the detailed one, and its Stage says which step found it.
var (
	// ErrCheckpoint: a checkpoint that is malformed, for another origin, or not signed by the log key
	// (a checkpoint signed by another key). Stage StageCheckpoint, or StageConsistency for the previous
	// checkpoint.
	ErrCheckpoint = errors.New("the checkpoint does not verify with the log key")
	// ErrFork: two checkpoints signed by the log key that no single append-only log has: a later one
	// smaller than an earlier one, or whose entries hash to another root for the earlier one's size.
	// Stage StageConsistency.
	ErrFork = errors.New("the log forked")
	// ErrEntryMissing: an entry of the checkpoint's tree that the tiles do not hold: an entry bundle
	// that is absent or has fewer entries than the tree gives it. Stage StageTree.
	ErrEntryMissing = errors.New("an entry is missing")
	// ErrEntryChanged: an entry that is not the checkpoint's leaf at its index (changed or reordered),
	// or an entry of an already verified tree served differently. Stage StageTree.
	ErrEntryChanged = errors.New("an entry is not the log's")
	// ErrTileMismatch: a hash tile that is absent or does not match the verified entries. Stage
	// StageTiles, or StageTree when the entries are wrong too.
	ErrTileMismatch = errors.New("a hash tile does not match the entries")
	// ErrState: a state digest the node reported that is not the replay's at its size. Stage StageState.
	ErrState = errors.New("the node's state is not the log's")
	// ErrMalformed: an entry bundle that does not parse or has more entries than its path says. Stage
	// StageDownload.
	ErrMalformed = errors.New("a tile is malformed")
)

// kindError is an error of one of the kinds above: it reads as err and matches both kind and err.
type kindError struct{ kind, err error }

func (k *kindError) Error() string   { return k.err.Error() }
func (k *kindError) Unwrap() []error { return []error{k.kind, k.err} }

// failKind returns a *Failure at stage about entry index (-1: none) of the given kind.
func failKind(stage string, index int64, kind error, format string, args ...any) *Failure {
	return &Failure{Index: index, Stage: stage, Err: &kindError{kind, fmt.Errorf(format, args...)}}
}

// Checkpoint is a signed checkpoint that verified with the log key.
type Checkpoint struct {
	Origin string     // the log's origin, the key's name
	Size   int64      // the tree size it signs
	Root   xtlog.Hash // the root hash it signs
	Signed []byte     // the signed note, as served
}

// CheckCheckpoint verifies a signed checkpoint (C2SP tlog-checkpoint, signed-note) with the log's note
// verifier key "<origin>+<hash>+<base64 key>": it must carry a valid signature by that key, and its origin
// must be the key's name. Errors are *Failure at StageCheckpoint wrapping ErrCheckpoint.
func CheckCheckpoint(key string, signed []byte) (Checkpoint, error) {
	v, err := note.NewVerifier(key)
	if err != nil {
		return Checkpoint{}, fail(StageCheckpoint, "bad log key %q: %w", key, err)
	}
	return checkCheckpoint(v, key, signed)
}

func checkCheckpoint(v note.Verifier, key string, signed []byte) (Checkpoint, error) {
	size, root, err := tlog.OpenCheckpoint(signed, v.Name(), v)
	if err != nil {
		return Checkpoint{}, failKind(StageCheckpoint, -1, ErrCheckpoint, "the checkpoint does not verify with the log key %s: %w", key, err)
	}
	return Checkpoint{Origin: v.Name(), Size: size, Root: root, Signed: signed}, nil
}

// hashSlice is a tlog.HashReader over stored hashes in stored-hash-index order.
type hashSlice []xtlog.Hash

func (s hashSlice) ReadHashes(indexes []int64) ([]xtlog.Hash, error) {
	out := make([]xtlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(s)) {
			return nil, fmt.Errorf("stored hash %d is not known (have %d)", x, len(s))
		}
		out[i] = s[x]
	}
	return out, nil
}

// Tree is a verified prefix of a log: its first Size entries, every stored hash of their Merkle tree,
// and the checkpoint that signs them. The zero Tree is the empty log. A Tree is a value: Extend returns
// a new one and leaves its receiver as it was.
type Tree struct {
	size    int64
	root    xtlog.Hash
	cp      Checkpoint
	entries [][]byte
	stored  hashSlice
}

// emptyRoot is the root hash of the empty tree.
var emptyRoot, _ = xtlog.TreeHash(0, hashSlice(nil))

// Size returns the number of verified entries.
func (t *Tree) Size() int64 { return t.size }

// Root returns the tree's root hash.
func (t *Tree) Root() xtlog.Hash {
	if t.size == 0 {
		return emptyRoot
	}
	return t.root
}

// Checkpoint returns the checkpoint that signs the tree (the zero Checkpoint for the zero Tree).
func (t *Tree) Checkpoint() Checkpoint { return t.cp }

// Entries returns the verified entries, in log order. The caller must not modify them.
func (t *Tree) Entries() [][]byte { return t.entries }

// TilesFor returns the C2SP tile paths (relative to the log prefix) that Tree.Extend reads to grow a
// verified tree of from entries to size entries: the entry bundles covering [from, size), the first one
// possibly a wider version of a partial bundle already verified, then the hash tiles that changed, as
// tlog.NewTiles lists them.
func TilesFor(from, size int64) []string {
	bundles, hashTiles := tilesFor(from, size)
	paths := make([]string, 0, len(bundles)+len(hashTiles))
	for _, t := range bundles {
		paths = append(paths, tlog.TilePath(t))
	}
	for _, t := range hashTiles {
		paths = append(paths, tlog.TilePath(t))
	}
	return paths
}

func tilesFor(from, size int64) (bundles, hashTiles []xtlog.Tile) {
	if size <= from {
		return nil, nil
	}
	for n := from / tileWidth; n <= (size-1)/tileWidth; n++ {
		bundles = append(bundles, xtlog.Tile{H: tileHeight, L: -1, N: n, W: int(min(size-n*tileWidth, tileWidth))})
	}
	return bundles, xtlog.NewTiles(tileHeight, from, size)
}

// Extend verifies cp, a checkpoint already checked with CheckCheckpoint, as an extension of the tree,
// from the tiles (path → bytes, the paths TilesFor(t.Size(), cp.Size) lists; others are ignored): it
// recomputes the Merkle tree from the verified entries plus the new ones and checks the root against
// cp's, then checks every hash tile against the recomputed hashes. It reads nothing but its arguments.
//
// When the entries do not hash to cp's root it names the first entry that is not the log's, from the
// hash tiles authenticated against cp's root (Failure.Index; ErrEntryMissing or ErrEntryChanged). Other
// failures: ErrFork (cp is smaller than the tree, or the same size with another root), ErrTileMismatch,
// ErrMalformed.
func (t *Tree) Extend(cp Checkpoint, tiles map[string][]byte) (*Tree, error) {
	from, size, root := t.size, cp.Size, cp.Root
	switch {
	case size < from:
		return nil, failKind(StageConsistency, -1, ErrFork, "fork: the log's checkpoint has %d entries, fewer than the %d it signed earlier", size, from)
	case size == from:
		if root != t.Root() {
			return nil, failKind(StageConsistency, -1, ErrFork, "fork: the checkpoint of %d entries has root %v, but those entries hash to %v", size, root, t.Root())
		}
		next := *t
		next.cp = cp
		return &next, nil
	}

	bundles, hashTiles := tilesFor(from, size)
	f := &fetched{from: from, size: size, root: root, entries: make([][]byte, size-from),
		problems: map[int64]bundleProblem{}, tiles: hashTiles, tileData: make([][]byte, len(hashTiles))}
	for i, ht := range hashTiles {
		f.tileData[i] = tiles[tlog.TilePath(ht)]
	}
	// Lay the entries out by index. A bundle with entries missing leaves nil holes.
	for _, b := range bundles {
		path := tlog.TilePath(b)
		body, ok := tiles[path]
		if !ok {
			f.problems[b.N] = bundleProblem{ErrEntryMissing, fmt.Sprintf("entry bundle %s is missing", path)}
			continue
		}
		list, err := tlog.ParseEntryBundle(body)
		if err != nil {
			f.problems[b.N] = bundleProblem{ErrMalformed, fmt.Sprintf("entry bundle %s is malformed: %v", path, err)}
			continue
		}
		switch {
		case len(list) < b.W:
			f.problems[b.N] = bundleProblem{ErrEntryMissing, fmt.Sprintf("entry bundle %s has %d entries, want %d", path, len(list), b.W)}
		case len(list) > b.W:
			f.problems[b.N] = bundleProblem{ErrMalformed, fmt.Sprintf("entry bundle %s has %d entries, want %d", path, len(list), b.W)}
		}
		start := b.N * tileWidth
		for j, e := range list {
			switch idx := start + int64(j); {
			case idx < from:
				if !bytes.Equal(e, t.entries[idx]) {
					return nil, failKind(StageTree, idx, ErrEntryChanged, "entry bundle %s holds a different entry %d than the log served for its tree of %d entries: the log changed an entry", path, idx, from)
				}
			case idx < size:
				f.entries[idx-from] = e
			}
		}
	}

	if !slices.ContainsFunc(f.entries, func(e []byte) bool { return e == nil }) {
		// Clip first: the receiver's hashes stay its own.
		stored := slices.Grow(slices.Clip(t.stored), int(xtlog.StoredHashCount(size))-len(t.stored))
		for k, e := range f.entries {
			hs, err := xtlog.StoredHashes(from+int64(k), e, stored)
			if err != nil {
				return nil, fail(StageTree, "%w", err)
			}
			stored = append(stored, hs...)
		}
		th, err := xtlog.TreeHash(size, stored)
		if err != nil {
			return nil, fail(StageTree, "%w", err)
		}
		if th == root {
			// The entries are the log's. Now hold every hash tile against them.
			for i, ht := range f.tiles {
				if err := checkTile(ht, f.tileData[i], stored); err != nil {
					return nil, &Failure{Index: -1, Stage: StageTiles, Err: &kindError{ErrTileMismatch, err}}
				}
			}
			for _, b := range bundles {
				if p, ok := f.problems[b.N]; ok {
					return nil, failKind(StageDownload, -1, ErrMalformed, "%s", p.why)
				}
			}
			return &Tree{size: size, root: root, cp: cp, entries: append(slices.Clip(t.entries), f.entries...), stored: stored}, nil
		}
	}
	return nil, t.locate(f)
}

// CheckExtends checks that the tree extends prev, a checkpoint of the same log verified earlier (with
// CheckCheckpoint): prev is no larger than the tree, and the tree's first prev.Size entries hash to
// prev's root. Otherwise the log forked (ErrFork).
func (t *Tree) CheckExtends(prev Checkpoint) error {
	if prev.Size > t.size {
		return failKind(StageConsistency, -1, ErrFork, "fork: the log's checkpoint has %d entries, but it signed a checkpoint of %d entries before: the log was rolled back or forked", t.size, prev.Size)
	}
	th, err := xtlog.TreeHash(prev.Size, t.stored)
	if err != nil {
		return fail(StageConsistency, "%w", err)
	}
	if th != prev.Root {
		return failKind(StageConsistency, -1, ErrFork, "fork: the log's first %d entries hash to %v, but the checkpoint seen before signed root %v for them: the log was rewritten or forked", prev.Size, th, prev.Root)
	}
	return nil
}

// CheckInclusion checks that entry is entry index of the tree cp signs, from the hash tiles alone (path
// → bytes; entry bundles are not needed): the tiles on the path from the leaf to the root are
// authenticated against cp's root with tlog.TileHashReader. A missing or wrong tile fails with
// ErrTileMismatch, an entry that is not that leaf with ErrEntryChanged.
func CheckInclusion(cp Checkpoint, index int64, entry []byte, tiles map[string][]byte) error {
	if index < 0 || index >= cp.Size {
		return failKind(StageTree, index, ErrEntryMissing, "the checkpoint's tree has %d entries", cp.Size)
	}
	r := xtlog.TileHashReader(xtlog.Tree{N: cp.Size, Hash: cp.Root}, mapTiles(tiles))
	leaf, err := r.ReadHashes([]int64{xtlog.StoredHashIndex(0, index)})
	if err != nil {
		return &Failure{Index: -1, Stage: StageTiles, Err: &kindError{ErrTileMismatch, err}}
	}
	if xtlog.RecordHash(entry) != leaf[0] {
		return failKind(StageTree, index, ErrEntryChanged, "the entry is not leaf %d of the checkpoint's tree", index)
	}
	return nil
}

// CheckConsistency checks that the tree signed by cp extends the one signed by prev (both already checked
// with CheckCheckpoint), from cp's hash tiles alone (path → bytes): the hashes of a consistency proof are
// read through tlog.TileHashReader, which authenticates every tile against cp's root, and the proof is
// checked with tlog.CheckTree against prev's root. Two checkpoints no single log can have fail with ErrFork,
// a missing or wrong tile with ErrTileMismatch.
func CheckConsistency(prev, cp Checkpoint, tiles map[string][]byte) error {
	switch {
	case prev.Size > cp.Size:
		return failKind(StageConsistency, -1, ErrFork, "fork: a checkpoint of %d entries, but one of %d entries was signed before: the log was rolled back or forked", cp.Size, prev.Size)
	case prev.Size == 0 || prev.Size == cp.Size:
		want := cp.Root
		if prev.Size == 0 {
			want = emptyRoot
		}
		if prev.Root != want {
			return failKind(StageConsistency, -1, ErrFork, "fork: two checkpoints of %d entries with roots %v and %v", prev.Size, prev.Root, want)
		}
		return nil
	}
	tree := xtlog.Tree{N: cp.Size, Hash: cp.Root}
	proof, err := xtlog.ProveTree(cp.Size, prev.Size, xtlog.TileHashReader(tree, mapTiles(tiles)))
	if err != nil {
		return &Failure{Index: -1, Stage: StageTiles, Err: &kindError{ErrTileMismatch, err}}
	}
	if err := xtlog.CheckTree(proof, cp.Size, cp.Root, prev.Size, prev.Root); err != nil {
		return failKind(StageConsistency, -1, ErrFork, "fork: the tree of %d entries does not extend the one of %d entries signed before (%v): the log was rewritten or forked", cp.Size, prev.Size, err)
	}
	return nil
}

// mapTiles is a tlog.TileReader over hash tiles held by path.
type mapTiles map[string][]byte

func (m mapTiles) Height() int { return tileHeight }

func (m mapTiles) ReadTiles(tiles []xtlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		d, ok := m[tlog.TilePath(t)]
		if !ok {
			return nil, fmt.Errorf("hash tile %s is missing", tlog.TilePath(t))
		}
		if len(d) != t.W*xtlog.HashSize {
			return nil, fmt.Errorf("hash tile %s has %d bytes, want %d", tlog.TilePath(t), len(d), t.W*xtlog.HashSize)
		}
		out[i] = d
	}
	return out, nil
}

func (m mapTiles) SaveTiles([]xtlog.Tile, [][]byte) {}

// bundleProblem is what was wrong with an entry bundle, and of which kind.
type bundleProblem struct {
	kind error
	why  string
}

// fetched is what Extend was given to verify a checkpoint of size entries with root hash root against
// the tree of the first from entries.
type fetched struct {
	from, size int64
	root       xtlog.Hash
	entries    [][]byte                // entries[i] is entry from+i, nil when missing
	problems   map[int64]bundleProblem // entry bundle number → what was wrong with the bundle
	tiles      []xtlog.Tile            // the hash tiles that changed since from, as tlog.NewTiles lists them
	tileData   [][]byte                // their unverified data (nil when absent)
}

// locate names the first entry in [f.from, f.size) that is not the log's, for entries that do not hash to
// the checkpoint's root (or are missing). It authenticates the given hash tiles against the root with
// tlog.TileHashReader and compares each entry's record hash with the leaf hash at its index.
func (t *Tree) locate(f *fetched) error {
	src := &tileSource{got: make(map[xtlog.Tile][]byte, len(f.tiles)), known: t.stored}
	for i, ht := range f.tiles {
		if f.tileData[i] != nil {
			src.got[ht] = f.tileData[i]
		}
	}
	indexes := make([]int64, f.size-f.from)
	for k := range indexes {
		indexes[k] = xtlog.StoredHashIndex(0, f.from+int64(k))
	}
	leaves, err := xtlog.TileHashReader(xtlog.Tree{N: f.size, Hash: f.root}, src).ReadHashes(indexes)
	if err != nil {
		why, kind := "the entries do not hash to the checkpoint's root", ErrEntryChanged
		for n := f.from / tileWidth; n <= (f.size-1)/tileWidth; n++ {
			if p, ok := f.problems[n]; ok {
				why, kind = p.why, p.kind
				break
			}
		}
		return failKind(StageTree, -1, kind, "%s, and the hash tiles don't match the checkpoint either (%v), so the bad entry can't be named", why, err)
	}
	for k, e := range f.entries {
		i := f.from + int64(k)
		p, ok := f.problems[i/tileWidth]
		var why string
		if ok {
			why = " (" + p.why + ")"
		}
		if e == nil {
			return failKind(StageTree, i, ErrEntryMissing, "the entry is missing%s", why)
		}
		if xtlog.RecordHash(e) != leaves[k] {
			kind := ErrEntryChanged
			if ok && p.kind == ErrEntryMissing {
				kind = ErrEntryMissing // a bundle short of entries: the others moved up
			}
			return failKind(StageTree, i, kind, "the entry served is not leaf %d of the checkpoint's tree: it was changed, dropped or reordered%s", i, why)
		}
	}
	return failKind(StageTree, -1, ErrEntryChanged, "the entries do not hash to the checkpoint's root")
}

// checkTile compares a hash tile with the one the verified stored hashes give.
func checkTile(t xtlog.Tile, data []byte, stored hashSlice) error {
	path := tlog.TilePath(t)
	if data == nil {
		return fmt.Errorf("hash tile %s is missing", path)
	}
	want, err := xtlog.ReadTileData(t, stored)
	if err != nil {
		return fmt.Errorf("hash tile %s: %w", path, err)
	}
	if len(data) != len(want) {
		return fmt.Errorf("hash tile %s has %d bytes, want %d", path, len(data), len(want))
	}
	for k := 0; k < t.W; k++ {
		got, exp := data[k*xtlog.HashSize:(k+1)*xtlog.HashSize], want[k*xtlog.HashSize:(k+1)*xtlog.HashSize]
		if !bytes.Equal(got, exp) {
			return fmt.Errorf("hash tile %s does not match the entries: its hash %d (tree level %d, node %d) is %x, the entries give %x",
				path, k, t.L*tileHeight, t.N*tileWidth+int64(k), got, exp)
		}
	}
	return nil
}

// tileSource is a tlog.TileReader over the given (unverified) hash tiles; a tile that was not given
// because it did not change since the verified tree is rebuilt from the verified hashes.
type tileSource struct {
	got   map[xtlog.Tile][]byte
	known hashSlice
}

func (s *tileSource) Height() int { return tileHeight }

func (s *tileSource) ReadTiles(tiles []xtlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if d, ok := s.got[t]; ok {
			if len(d) != t.W*xtlog.HashSize {
				return nil, fmt.Errorf("hash tile %s has %d bytes, want %d", tlog.TilePath(t), len(d), t.W*xtlog.HashSize)
			}
			out[i] = d
			continue
		}
		d, err := xtlog.ReadTileData(t, s.known)
		if err != nil {
			return nil, fmt.Errorf("hash tile %s was not given: %w", tlog.TilePath(t), err)
		}
		out[i] = d
	}
	return out, nil
}

func (s *tileSource) SaveTiles([]xtlog.Tile, [][]byte) {}
