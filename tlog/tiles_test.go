package tlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// tileReader is a tlog.TileReader that fetches tiles through ReadTile, as a
// remote client would over HTTP.
type tileReader struct {
	l     *Log
	paths map[string]bool // every path fetched
}

func (r *tileReader) Height() int { return 8 }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		p := TilePath(t)
		r.paths[p] = true
		d, err := r.l.ReadTile(p)
		if err != nil {
			return nil, err
		}
		data[i] = d
	}
	return data, nil
}

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func TestTilesRebuildTheTreeForEveryCheckpoint(t *testing.T) {
	const size = 70_000 // 273 full level-0 tiles + 112, 1 full level-1 tile + 17, level 2 partial
	s, v := testKeys(t, testOrigin)
	l := openLog(t, t.TempDir(), s)
	all := testEntries("e", 0, size)
	appendAll(t, l, all, 10_000)
	_, root, err := OpenCheckpoint(l.Checkpoint(), testOrigin, v)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("every tile of the tree is served with the right length", func(t *testing.T) {
		tiles := tlog.NewTiles(8, 0, size)
		if len(tiles) != 273+1+1+1+1 {
			t.Fatalf("NewTiles gave %d tiles", len(tiles))
		}
		for _, tile := range tiles {
			data, err := l.ReadTile(TilePath(tile))
			if err != nil {
				t.Fatal(err)
			}
			if len(data) != tile.W*tlog.HashSize {
				t.Fatalf("%s has %d bytes, want %d", TilePath(tile), len(data), tile.W*tlog.HashSize)
			}
		}
	})

	t.Run("a client rebuilds and authenticates the root from tiles", func(t *testing.T) {
		for _, n := range []int64{1, 2, 255, 256, 257, 1000, 65535, 65536, 65537, 69999, size} {
			rootN, err := l.RootHash(n)
			if err != nil {
				t.Fatal(err)
			}
			tr := &tileReader{l: l, paths: map[string]bool{}}
			hr := tlog.TileHashReader(tlog.Tree{N: n, Hash: rootN}, tr)
			if got, err := tlog.TreeHash(n, hr); err != nil || got != rootN {
				t.Fatalf("TreeHash(%d) from tiles = %v, %v; want %v", n, got, err, rootN)
			}
			for _, i := range []int64{0, n / 2, n - 1} {
				p, err := tlog.ProveRecord(n, i, hr)
				if err != nil {
					t.Fatal(err)
				}
				if err := tlog.CheckRecord(p, n, rootN, i, tlog.RecordHash(all[i])); err != nil {
					t.Fatalf("inclusion of %d in %d from tiles: %v", i, n, err)
				}
			}
			// The old tree is a prefix of the current one, proven from tiles
			// of the current tree.
			hrNow := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, tr)
			p, err := tlog.ProveTree(size, n, hrNow)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(p, size, root, n, rootN); err != nil {
				t.Fatalf("consistency %d → %d from tiles: %v", n, size, err)
			}
		}
	})

	t.Run("a client holding an old checkpoint gets the partial tiles it asks for", func(t *testing.T) {
		const n = 1000 // tile 0/003 is complete now but was 0/003.p/232
		rootN, _ := l.RootHash(n)
		tr := &tileReader{l: l, paths: map[string]bool{}}
		hr := tlog.TileHashReader(tlog.Tree{N: n, Hash: rootN}, tr)
		if _, err := tlog.TreeHash(n, hr); err != nil {
			t.Fatal(err)
		}
		if !tr.paths["tile/0/003.p/232"] {
			t.Fatalf("client fetched %v, want tile/0/003.p/232 among them", tr.paths)
		}
	})

	t.Run("entry bundles give back the entries and match the level-0 hashes", func(t *testing.T) {
		for n := int64(0); n*256 < size; n++ {
			w := int(min(256, size-n*256))
			bundle, err := l.ReadTile(TilePath(tlog.Tile{L: -1, N: n, W: w}))
			if err != nil {
				t.Fatal(err)
			}
			entries, err := ParseEntryBundle(bundle)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != w {
				t.Fatalf("bundle %d has %d entries, want %d", n, len(entries), w)
			}
			hashes, err := l.ReadTile(TilePath(tlog.Tile{L: 0, N: n, W: w}))
			if err != nil {
				t.Fatal(err)
			}
			for j, e := range entries {
				if !bytes.Equal(e, all[n*256+int64(j)]) {
					t.Fatalf("bundle %d entry %d = %q, want %q", n, j, e, all[n*256+int64(j)])
				}
				h := tlog.RecordHash(e)
				if !bytes.Equal(h[:], hashes[j*32:(j+1)*32]) {
					t.Fatalf("bundle %d entry %d doesn't match its hash in the level-0 tile", n, j)
				}
			}
		}
	})

	t.Run("a partial tile is a prefix of the full one", func(t *testing.T) {
		for _, p := range []struct{ full, partial string }{
			{"tile/0/000", "tile/0/000.p/7"},
			{"tile/0/100", "tile/0/100.p/255"},
			{"tile/1/000", "tile/1/000.p/1"},
			{"tile/entries/000", "tile/entries/000.p/7"},
			{"tile/entries/272", "tile/entries/272.p/1"},
		} {
			full, err := l.ReadTile(p.full)
			if err != nil {
				t.Fatal(err)
			}
			part, err := l.ReadTile(p.partial)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(full, part) || len(part) == 0 || len(part) == len(full) {
				t.Fatalf("%s is not a proper prefix of %s", p.partial, p.full)
			}
		}
	})
}

func TestReadTilePaths(t *testing.T) {
	// 600 entries: level 0 has tiles 000, 001 and 002.p/88; level 1 has
	// 000.p/2.
	s, _ := testKeys(t, testOrigin)
	l := openLog(t, t.TempDir(), s)
	appendAll(t, l, testEntries("e", 0, 600), 600)

	tests := []struct {
		name    string
		path    string
		wantErr error
		wantLen int
	}{
		{"the checkpoint is served", "checkpoint", nil, -1},
		{"a full level-0 tile is served", "tile/0/001", nil, 256 * 32},
		{"the partial level-0 tile at the current size is served", "tile/0/002.p/88", nil, 88 * 32},
		{"a smaller partial of the last tile is served", "tile/0/002.p/1", nil, 32},
		{"a partial of a full tile is served", "tile/0/000.p/1", nil, 32},
		{"the partial level-1 tile is served", "tile/1/000.p/2", nil, 2 * 32},
		{"a full entry bundle is served", "tile/entries/000", nil, -1},
		{"the partial entry bundle is served", "tile/entries/002.p/88", nil, -1},

		{"a full tile not yet complete is not found", "tile/0/002", ErrNotFound, 0},
		{"a partial tile wider than the tree is not found", "tile/0/002.p/89", ErrNotFound, 0},
		{"a tile past the end is not found", "tile/0/003.p/1", ErrNotFound, 0},
		{"an incomplete level-1 full tile is not found", "tile/1/000", ErrNotFound, 0},
		{"a level-1 partial wider than the tree is not found", "tile/1/000.p/3", ErrNotFound, 0},
		{"a level with no nodes is not found", "tile/2/000.p/1", ErrNotFound, 0},
		{"level 8 is above any tree", "tile/8/000.p/1", ErrNotFound, 0},
		{"level 63 is above any tree", "tile/63/000.p/1", ErrNotFound, 0},
		{"level 100 is above any tree", "tile/100/000", ErrNotFound, 0},
		{"an incomplete entry bundle is not found", "tile/entries/002", ErrNotFound, 0},
		{"an entry bundle past the end is not found", "tile/entries/x001/000", ErrNotFound, 0},
		{"a huge tile number is not found", "tile/0/x999/x999/x999/x999/x999/999", ErrNotFound, 0},
		{"a huge entry bundle number is not found", "tile/entries/x999/x999/x999/x999/x999/999.p/1", ErrNotFound, 0},

		{"a number without zero padding is malformed", "tile/0/1", ErrBadPath, 0},
		{"a number with extra zero padding is malformed", "tile/0/0001", ErrBadPath, 0},
		{"a redundant x000 group is malformed", "tile/0/x000/000", ErrBadPath, 0},
		{"a redundant x000 group before a non-zero number is malformed", "tile/0/x000/001", ErrBadPath, 0},
		{"an x group without a final group is malformed", "tile/0/x001", ErrBadPath, 0},
		{"a group of four digits is malformed", "tile/0/1000", ErrBadPath, 0},
		{"an x group of four digits is malformed", "tile/0/x1000/000", ErrBadPath, 0},
		{"a final group with an x is malformed", "tile/entries/x000", ErrBadPath, 0},
		{"a number overflowing int64 is malformed", "tile/0/x999/x999/x999/x999/x999/x999/x999/999", ErrBadPath, 0},
		{"a partial width of 0 is malformed", "tile/entries/000.p/0", ErrBadPath, 0},
		{"a partial width of 256 is malformed", "tile/entries/000.p/256", ErrBadPath, 0},
		{"a hash tile partial width of 256 is malformed", "tile/0/000.p/256", ErrBadPath, 0},
		{"a zero-padded partial width is malformed", "tile/0/000.p/07", ErrBadPath, 0},
		{"a signed partial width is malformed", "tile/0/000.p/+7", ErrBadPath, 0},
		{"a negative partial width is malformed", "tile/0/000.p/-1", ErrBadPath, 0},
		{"a .p without width is malformed", "tile/0/000.p", ErrBadPath, 0},
		{"a .p with an empty width is malformed", "tile/0/000.p/", ErrBadPath, 0},
		{"a width with an extra element is malformed", "tile/0/000.p/1/2", ErrBadPath, 0},
		{"a zero-padded level is malformed", "tile/00/000", ErrBadPath, 0},
		{"a signed level is malformed", "tile/+0/000", ErrBadPath, 0},
		{"a negative level is malformed", "tile/-1/000", ErrBadPath, 0},
		{"the x/mod name for entry bundles is malformed", "tile/data/000", ErrBadPath, 0},
		{"an x/mod path with a height is malformed", "tile/8/0/000", ErrBadPath, 0},
		{"a parent directory escape is malformed", "../x", ErrBadPath, 0},
		{"a parent directory inside a tile path is malformed", "tile/entries/../0/000", ErrBadPath, 0},
		{"a dot directory is malformed", "tile/0/./000", ErrBadPath, 0},
		{"an empty path is malformed", "", ErrBadPath, 0},
		{"a leading slash is malformed", "/tile/0/000", ErrBadPath, 0},
		{"a trailing slash is malformed", "tile/0/000/", ErrBadPath, 0},
		{"a bare tile directory is malformed", "tile/", ErrBadPath, 0},
		{"a tile path without a number is malformed", "tile/0", ErrBadPath, 0},
		{"a tile path with an empty number is malformed", "tile/0/", ErrBadPath, 0},
		{"a letter in the number is malformed", "tile/0/abc", ErrBadPath, 0},
		{"a space in the number is malformed", "tile/0/ 000", ErrBadPath, 0},
		{"backslashes are malformed", `tile\0\000`, ErrBadPath, 0},
		{"a checkpoint with a slash is malformed", "checkpoint/", ErrBadPath, 0},
		{"a capitalized checkpoint is malformed", "Checkpoint", ErrBadPath, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := l.ReadTile(tt.path)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ReadTile(%q): %v", tt.path, err)
				}
				if tt.wantLen >= 0 && len(data) != tt.wantLen {
					t.Fatalf("ReadTile(%q) returned %d bytes, want %d", tt.path, len(data), tt.wantLen)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadTile(%q) error = %v, want %v", tt.path, err, tt.wantErr)
			}
			other := ErrBadPath
			if tt.wantErr == ErrBadPath {
				other = ErrNotFound
			}
			if errors.Is(err, other) {
				t.Fatalf("ReadTile(%q) error %v is both ErrBadPath and ErrNotFound", tt.path, err)
			}
		})
	}
}

func TestTilePath(t *testing.T) {
	tests := []struct {
		name string
		tile tlog.Tile
		want string
	}{
		{"a full level-0 tile", tlog.Tile{H: 8, L: 0, N: 0, W: 256}, "tile/0/000"},
		{"a partial tile with a grouped number", tlog.Tile{H: 8, L: 0, N: 1234, W: 7}, "tile/0/x001/234.p/7"},
		{"a full entry bundle", tlog.Tile{H: 8, L: -1, N: 0, W: 256}, "tile/entries/000"},
		{"a partial entry bundle with three groups", tlog.Tile{H: 8, L: -1, N: 1234067, W: 1}, "tile/entries/x001/x234/067.p/1"},
		{"a higher-level tile", tlog.Tile{H: 8, L: 3, N: 5, W: 255}, "tile/3/005.p/255"},
		{"a tile whose height is not set still gets height 8", tlog.Tile{L: 1, N: 1000, W: 256}, "tile/1/x001/000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TilePath(tt.tile); got != tt.want {
				t.Fatalf("TilePath(%+v) = %q, want %q", tt.tile, got, tt.want)
			}
			back, err := parseTilePath(tt.want)
			want := tt.tile
			want.H = 8
			if err != nil || back != want {
				t.Fatalf("parseTilePath(%q) = %+v, %v; want %+v", tt.want, back, err, want)
			}
		})
	}
}

// bundle encodes entries as a C2SP entry bundle.
func bundle(entries ...[]byte) []byte {
	var b []byte
	for _, e := range entries {
		b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
		b = append(b, e...)
	}
	return b
}

func TestParseEntryBundle(t *testing.T) {
	many := func(n int) [][]byte {
		es := make([][]byte, n)
		for i := range es {
			es[i] = []byte{byte(i)}
		}
		return es
	}
	tests := []struct {
		name    string
		data    []byte
		want    [][]byte
		wantErr bool
	}{
		{"one entry parses", bundle([]byte("hello")), [][]byte{[]byte("hello")}, false},
		{"several entries parse", bundle([]byte("a"), []byte("bc"), []byte("def")), [][]byte{[]byte("a"), []byte("bc"), []byte("def")}, false},
		{"a zero-length entry parses", bundle([]byte("a"), nil, []byte("b")), [][]byte{[]byte("a"), {}, []byte("b")}, false},
		{"a maximal entry parses", bundle(make([]byte, 65535)), [][]byte{make([]byte, 65535)}, false},
		{"256 entries parse", bundle(many(256)...), many(256), false},
		{"257 entries are rejected", bundle(many(257)...), nil, true},
		{"an empty bundle is rejected", nil, nil, true},
		{"a lone length byte is rejected", []byte{0}, nil, true},
		{"a length claiming more bytes than remain is rejected", []byte{0, 5, 'a', 'b'}, nil, true},
		{"a trailing byte after the last entry is rejected", append(bundle([]byte("a")), 0), nil, true},
		{"a trailing length without its entry is rejected", append(bundle([]byte("a")), 0, 1), nil, true},
		{"a truncated maximal entry is rejected", bundle(make([]byte, 65535))[:65536], nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEntryBundle(tt.data)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseEntryBundle accepted %d bytes as %d entries", len(tt.data), len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d entries, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Fatalf("entry %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
			// Entries can't be grown into the next one.
			if len(got) > 1 && cap(got[0]) != len(got[0]) {
				t.Fatalf("entry 0 has spare capacity %d", cap(got[0])-len(got[0]))
			}
		})
	}
}

func TestHandler(t *testing.T) {
	s, _ := testKeys(t, testOrigin)
	l := openLog(t, t.TempDir(), s)
	appendAll(t, l, testEntries("e", 0, 300), 300)
	h := l.Handler("/log") // the missing slash is added
	tests := []struct {
		name        string
		method      string
		path        string
		status      int
		contentType string
		cache       string
		body        func() []byte
	}{
		{"the checkpoint is plain text and never cached", "GET", "/log/checkpoint", 200, "text/plain; charset=utf-8", "no-cache", l.Checkpoint},
		{"a full tile is immutable", "GET", "/log/tile/0/000", 200, "application/octet-stream", "public, max-age=31536000, immutable",
			func() []byte { d, _ := l.ReadTile("tile/0/000"); return d }},
		{"a partial tile is cached briefly", "GET", "/log/tile/0/001.p/44", 200, "application/octet-stream", "public, max-age=60",
			func() []byte { d, _ := l.ReadTile("tile/0/001.p/44"); return d }},
		{"a full entry bundle is immutable", "GET", "/log/tile/entries/000", 200, "application/octet-stream", "public, max-age=31536000, immutable",
			func() []byte { d, _ := l.ReadTile("tile/entries/000"); return d }},
		{"a HEAD request has headers and no body", "HEAD", "/log/tile/entries/001.p/44", 200, "application/octet-stream", "public, max-age=60",
			func() []byte { return nil }},
		{"a tile beyond the tree is 404", "GET", "/log/tile/0/001", 404, "", "", nil},
		{"a malformed path is 400", "GET", "/log/tile/0/1", 400, "", "", nil},
		{"a path traversal is 400", "GET", "/log/../checkpoint", 400, "", "", nil},
		{"a path outside the prefix is 404", "GET", "/other/checkpoint", 404, "", "", nil},
		{"the prefix without a slash is 404", "GET", "/log", 404, "", "", nil},
		{"POST is 405", "POST", "/log/checkpoint", 405, "", "", nil},
		{"PUT of a tile is 405", "PUT", "/log/tile/0/000", 405, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://example.com"+tt.path, nil)
			// httptest.NewRequest cleans nothing, so "/log/../checkpoint"
			// reaches the handler as is.
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %q)", res.StatusCode, tt.status, rec.Body.String())
			}
			if tt.status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != "GET, HEAD" {
				t.Fatalf("Allow = %q", res.Header.Get("Allow"))
			}
			if tt.status != 200 {
				return
			}
			if got := res.Header.Get("Content-Type"); got != tt.contentType {
				t.Fatalf("Content-Type = %q, want %q", got, tt.contentType)
			}
			if got := res.Header.Get("Cache-Control"); got != tt.cache {
				t.Fatalf("Cache-Control = %q, want %q", got, tt.cache)
			}
			want := tt.body()
			if !bytes.Equal(rec.Body.Bytes(), want) {
				t.Fatalf("body has %d bytes, want %d", rec.Body.Len(), len(want))
			}
			if tt.method == "GET" && res.Header.Get("Content-Length") != strconv.Itoa(len(want)) {
				t.Fatalf("Content-Length = %q, want %d", res.Header.Get("Content-Length"), len(want))
			}
		})
	}
}
