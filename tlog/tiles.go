package tlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

var (
	// ErrNotFound is wrapped by errors for tiles, entries and proofs
	// beyond the committed tree.
	ErrNotFound = errors.New("not found")

	// ErrBadPath is wrapped by errors for paths that are not canonical
	// C2SP tlog-tiles paths.
	ErrBadPath = errors.New("malformed tile path")
)

// ReadTile serves a C2SP tlog-tiles path relative to the log prefix:
//
//   - "checkpoint": the latest signed checkpoint;
//   - "tile/<L>/<N>[.p/<W>]": a hash tile of height 8, the W (or 256)
//     hashes at tree level 8·L, nodes 256·N to 256·N+W-1, 32 bytes each;
//   - "tile/entries/<N>[.p/<W>]": an entry bundle, entries 256·N to
//     256·N+W-1, each prefixed by its length as a big-endian uint16.
//
// N uses the x001/x234/067 encoding. Only canonical paths are accepted
// (whatever doesn't re-encode identically, including ".p/0" and ".p/256"),
// otherwise the error wraps [ErrBadPath]. A full tile is served only once
// complete at the current size; a partial tile .p/W for any W < 256 as long
// as W items exist, so clients holding an older checkpoint can fetch the
// smaller partials it implies. Tiles beyond the tree give an error
// wrapping [ErrNotFound].
//
// Hash tiles are built from memory; an entry bundle costs one read.
func (l *Log) ReadTile(path string) ([]byte, error) {
	if path == checkpointName {
		st, err := l.view()
		if err != nil {
			return nil, err
		}
		return slices.Clone(st.checkpoint), nil
	}
	t, err := parseTilePath(path)
	if err != nil {
		return nil, err
	}
	st, err := l.view()
	if err != nil {
		return nil, err
	}
	notFound := func() error {
		return fmt.Errorf("tlog: tile %s: %w (log size %d)", path, ErrNotFound, st.size)
	}

	if t.L == -1 {
		start, ok := tileStart(t, st.size)
		if !ok {
			return nil, notFound()
		}
		lo, hi := st.offsets[start], st.offsets[start+int64(t.W)]
		data := make([]byte, hi-lo)
		if _, err := l.entries.ReadAt(data, lo); err != nil {
			return nil, fmt.Errorf("tlog: reading tile %s: %w", path, err)
		}
		return data, nil
	}

	// Level 8·L of the tree has size>>(8·L) nodes; none for L ≥ 8.
	if t.L >= 64/tileHeight {
		return nil, notFound()
	}
	level := tileHeight * t.L
	start, ok := tileStart(t, st.size>>level)
	if !ok {
		return nil, notFound()
	}
	data := make([]byte, 0, t.W*tlog.HashSize)
	for n := start; n < start+int64(t.W); n++ {
		data = append(data, st.stored[tlog.StoredHashIndex(level, n)][:]...)
	}
	return data, nil
}

// tileStart returns the index of the first item of t, if all of its t.W
// items are among the first count items of its level.
func tileStart(t tlog.Tile, count int64) (int64, bool) {
	// Compare before multiplying, so a huge N can't overflow.
	if t.N > count>>tileHeight {
		return 0, false
	}
	start := t.N << tileHeight
	return start, start+int64(t.W) <= count
}

// ParseTilePath parses a canonical C2SP tile path relative to the log prefix ("checkpoint" is not a
// tile): an entry bundle has L == -1. Errors wrap [ErrBadPath].
func ParseTilePath(path string) (tlog.Tile, error) { return parseTilePath(path) }

// TileStart returns the index of the first item of t, if all of its t.W items are among the first count
// items of its level (for entry bundles, of the log).
func TileStart(t tlog.Tile, count int64) (int64, bool) { return tileStart(t, count) }

// parseTilePath parses a canonical C2SP tile path relative to the log
// prefix, reusing tlog.ParseTilePath: "tile/L/..." is parsed as
// "tile/8/L/..." and "tile/entries/..." as "tile/8/data/..."; the result
// must re-encode to exactly path.
func parseTilePath(path string) (tlog.Tile, error) {
	bad := func() (tlog.Tile, error) {
		return tlog.Tile{}, fmt.Errorf("tlog: %w %q", ErrBadPath, path)
	}
	rest, ok := strings.CutPrefix(path, "tile/")
	if !ok {
		return bad()
	}
	level, tail, ok := strings.Cut(rest, "/")
	if !ok {
		return bad()
	}
	switch level {
	case "entries":
		level = "data"
	case "data":
		return bad()
	}
	t, err := tlog.ParseTilePath("tile/" + strconv.Itoa(tileHeight) + "/" + level + "/" + tail)
	if err != nil || t.H != tileHeight || TilePath(t) != path {
		return bad()
	}
	return t, nil
}

// TilePath returns the C2SP path (relative, e.g. "tile/0/x001/234.p/7" or
// "tile/entries/000") of t; L == -1 means an entry bundle. C2SP tiles have
// height 8, so t.H is ignored and t.W must be 1 to 256, 256 being a full
// tile.
func TilePath(t tlog.Tile) string {
	t.H = tileHeight
	// t.Path is "tile/8/<L or data>/<N>[.p/<W>]".
	p := strings.TrimPrefix(t.Path(), "tile/"+strconv.Itoa(tileHeight)+"/")
	if rest, ok := strings.CutPrefix(p, "data/"); ok {
		return "tile/entries/" + rest
	}
	return "tile/" + p
}

// ParseEntryBundle splits a C2SP entry bundle into entries, rejecting
// trailing bytes or truncation, an empty bundle, and more than 256
// entries. The entries alias data. A caller that asked for a bundle of
// width W must still check that it got W entries.
func ParseEntryBundle(data []byte) ([][]byte, error) {
	if len(data) == 0 {
		return nil, errors.New("tlog: empty entry bundle")
	}
	var entries [][]byte
	for off := 0; off < len(data); {
		if len(entries) == tileWidth {
			return nil, fmt.Errorf("tlog: entry bundle has %d trailing bytes after %d entries", len(data)-off, tileWidth)
		}
		if len(data)-off < 2 {
			return nil, fmt.Errorf("tlog: entry bundle truncated: %d byte(s) left at offset %d, want a 2-byte length", len(data)-off, off)
		}
		n := int(binary.BigEndian.Uint16(data[off:]))
		off += 2
		if len(data)-off < n {
			return nil, fmt.Errorf("tlog: entry bundle truncated: entry %d has %d bytes, want %d", len(entries), len(data)-off, n)
		}
		entries = append(entries, data[off:off+n:off+n])
		off += n
	}
	return entries, nil
}

// Cache-Control values for the HTTP handler.
const (
	cacheCheckpoint  = "no-cache"
	cacheFullTile    = "public, max-age=31536000, immutable"
	cachePartialTile = "public, max-age=60"
)

// Handler returns an http.Handler serving GET and HEAD of the paths
// [Log.ReadTile] accepts, under prefix (e.g. "/log/"; a missing final slash
// is added).
//
// The checkpoint is served as "text/plain; charset=utf-8" with
// Cache-Control: no-cache; tiles as application/octet-stream, full ones
// with Cache-Control: public, max-age=31536000, immutable, partial ones
// with a short max-age. Paths outside prefix and [ErrNotFound] give 404,
// [ErrBadPath] 400, other methods 405 and other errors 500.
func (l *Log) Handler(prefix string) http.Handler {
	return TileHandler(prefix, func(_ context.Context, path string) ([]byte, error) { return l.ReadTile(path) })
}

// TileHandler serves read (which follows the contract of [Log.ReadTile]) under prefix, as [Log.Handler]
// does: other log stores (store/postgres) serve the same paths, headers and errors through it. read gets
// the request's context, so that a store that reads a database gives up with the request.
func TileHandler(prefix string, read func(ctx context.Context, path string) ([]byte, error)) http.Handler {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		path, ok := strings.CutPrefix(r.URL.Path, prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		data, err := read(r.Context(), path)
		switch {
		case errors.Is(err, ErrBadPath):
			http.Error(w, "malformed log path", http.StatusBadRequest)
			return
		case errors.Is(err, ErrNotFound):
			h.Set("Cache-Control", cacheCheckpoint)
			http.Error(w, "not found", http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		switch {
		case path == checkpointName:
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Cache-Control", cacheCheckpoint)
		case strings.Contains(path, ".p/"):
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Cache-Control", cachePartialTile)
		default:
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Cache-Control", cacheFullTile)
		}
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(data)))
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Write(data)
	})
}
