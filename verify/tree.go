package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/tlog"
)

// C2SP tlog-tiles tiles have height 8: 256 hashes or entries each.
const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight
)

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

// extend verifies the checkpoint signed (of size entries with root hash root, already opened) as an
// extension of the verified tree: it downloads the entry bundles and hash tiles that cover
// [a.size, size), recomputes the tree from the verified entries plus the new ones, and checks the root and
// every downloaded hash tile. On success the tree and its entries grow to size.
func (a *auditor) extend(ctx context.Context, signed []byte, size int64, root xtlog.Hash) error {
	from := a.size
	switch {
	case size < from:
		return fail(StageConsistency, "fork: the log's checkpoint has %d entries, fewer than the %d it signed earlier in this run", size, from)
	case size == from:
		if root != a.root {
			return fail(StageConsistency, "fork: the checkpoint of %d entries has root %v, but those entries hash to %v", size, root, a.root)
		}
		a.cp = signed
		return nil
	}

	// The entry bundles covering [from, size), the first one possibly a wider version of a partial bundle
	// already seen, then the hash tiles that changed.
	var bundles []xtlog.Tile
	for n := from / tileWidth; n <= (size-1)/tileWidth; n++ {
		bundles = append(bundles, xtlog.Tile{H: tileHeight, L: -1, N: n, W: int(min(size-n*tileWidth, tileWidth))})
	}
	hashTiles := xtlog.NewTiles(tileHeight, from, size)
	paths := make([]string, 0, len(bundles)+len(hashTiles))
	for _, t := range bundles {
		paths = append(paths, tlog.TilePath(t))
	}
	for _, t := range hashTiles {
		paths = append(paths, tlog.TilePath(t))
	}
	bodies, err := a.fetchAll(ctx, paths)
	if err != nil {
		return err
	}

	// Lay the entries out by index. A bundle with entries missing leaves nil holes.
	f := &fetched{from: from, size: size, root: root, entries: make([][]byte, size-from),
		problems: map[int64]string{}, tiles: hashTiles, tileData: bodies[len(bundles):]}
	for i, t := range bundles {
		list, err := tlog.ParseEntryBundle(bodies[i])
		if err != nil {
			f.problems[t.N] = fmt.Sprintf("entry bundle %s is malformed: %v", paths[i], err)
			continue
		}
		if len(list) != t.W {
			f.problems[t.N] = fmt.Sprintf("entry bundle %s has %d entries, want %d", paths[i], len(list), t.W)
		}
		start := t.N * tileWidth
		for j, e := range list {
			switch idx := start + int64(j); {
			case idx < from:
				if !bytes.Equal(e, a.entries[idx]) {
					return &Failure{Index: idx, Stage: StageTree, Err: fmt.Errorf("entry bundle %s holds a different entry %d than the log served for its tree of %d entries: the log changed an entry", paths[i], idx, from)}
				}
			case idx < size:
				f.entries[idx-from] = e
			}
		}
	}

	if !slices.ContainsFunc(f.entries, func(e []byte) bool { return e == nil }) {
		stored := slices.Grow(a.stored, int(xtlog.StoredHashCount(size))-len(a.stored))
		for k, e := range f.entries {
			hs, err := xtlog.StoredHashes(from+int64(k), e, stored)
			if err != nil {
				return fail(StageTree, "%w", err)
			}
			stored = append(stored, hs...)
		}
		th, err := xtlog.TreeHash(size, stored)
		if err != nil {
			return fail(StageTree, "%w", err)
		}
		if th == root {
			// The entries are the log's. Now hold every hash tile the node serves against them.
			for i, t := range f.tiles {
				if err := checkTile(t, f.tileData[i], stored); err != nil {
					return &Failure{Index: -1, Stage: StageTiles, Err: err}
				}
			}
			for _, t := range bundles {
				if p, ok := f.problems[t.N]; ok {
					return fail(StageDownload, "%s", p)
				}
			}
			a.entries = append(a.entries, f.entries...)
			a.stored, a.size, a.root, a.cp = stored, size, root, signed
			return nil
		}
	}
	return a.locate(f)
}

// fetched is what extend downloaded to verify a checkpoint of size entries with root hash root against
// the tree of the first from entries.
type fetched struct {
	from, size int64
	root       xtlog.Hash
	entries    [][]byte         // entries[i] is entry from+i, nil when missing
	problems   map[int64]string // entry bundle number → what was wrong with the bundle
	tiles      []xtlog.Tile     // the hash tiles that changed since from, as tlog.NewTiles lists them
	tileData   [][]byte         // their downloaded, unverified data
}

// locate names the first entry in [f.from, f.size) that is not the log's, for entries that do not hash to
// the checkpoint's root (or are missing). It authenticates the node's hash tiles against the root with
// tlog.TileHashReader and compares each entry's record hash with the leaf hash at its index.
func (a *auditor) locate(f *fetched) error {
	src := &tileSource{got: make(map[xtlog.Tile][]byte, len(f.tiles)), known: a.stored}
	for i, t := range f.tiles {
		src.got[t] = f.tileData[i]
	}
	indexes := make([]int64, f.size-f.from)
	for k := range indexes {
		indexes[k] = xtlog.StoredHashIndex(0, f.from+int64(k))
	}
	leaves, err := xtlog.TileHashReader(xtlog.Tree{N: f.size, Hash: f.root}, src).ReadHashes(indexes)
	if err != nil {
		why := "the entries do not hash to the checkpoint's root"
		for n := f.from / tileWidth; n <= (f.size-1)/tileWidth; n++ {
			if p, ok := f.problems[n]; ok {
				why = p
				break
			}
		}
		return fail(StageTree, "%s, and the node's hash tiles don't match the checkpoint either (%v), so the bad entry can't be named", why, err)
	}
	for k, e := range f.entries {
		i := f.from + int64(k)
		p, ok := f.problems[i/tileWidth]
		if ok {
			p = " (" + p + ")"
		}
		if e == nil {
			return &Failure{Index: i, Stage: StageTree, Err: fmt.Errorf("the entry is missing%s", p)}
		}
		if xtlog.RecordHash(e) != leaves[k] {
			return &Failure{Index: i, Stage: StageTree, Err: fmt.Errorf("the entry served is not leaf %d of the checkpoint's tree: it was changed, dropped or reordered%s", i, p)}
		}
	}
	return fail(StageTree, "the entries do not hash to the checkpoint's root")
}

// checkTile compares a downloaded hash tile with the one the verified stored hashes give.
func checkTile(t xtlog.Tile, data []byte, stored hashSlice) error {
	path := tlog.TilePath(t)
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

// tileSource is a tlog.TileReader over the downloaded (unverified) hash tiles; a tile that was not
// downloaded because it did not change since the verified tree is rebuilt from the verified hashes.
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
			return nil, fmt.Errorf("hash tile %s was not downloaded: %w", tlog.TilePath(t), err)
		}
		out[i] = d
	}
	return out, nil
}

func (s *tileSource) SaveTiles([]xtlog.Tile, [][]byte) {}

// fetchAll downloads the log paths with at most maxInFlight requests in flight and returns the bodies in
// order. The first error stops it.
func (a *auditor) fetchAll(ctx context.Context, paths []string) ([][]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([][]byte, len(paths))
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards done and firstErr
		done     int64
		firstErr error
	)
	for range min(maxInFlight, len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body, err := a.fetch(ctx, paths[i])
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fail(StageDownload, "couldn't fetch /log/%s: %w", paths[i], err)
					cancel()
				}
				out[i] = body
				done++
				a.progress(ProgressDownload, done, int64(len(paths)))
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range paths {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(StageDownload, "%w", err)
	}
	return out, nil
}

// fetch downloads one log path, retrying network and server errors.
func (a *auditor) fetch(ctx context.Context, path string) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		body, err := a.c.Tile(ctx, path)
		var ae *client.APIError
		if err == nil || attempt == fetchAttempts || ctx.Err() != nil || errors.As(err, &ae) && ae.Status < 500 {
			return body, err
		}
		select {
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
