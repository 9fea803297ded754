package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/glovebox/glovebox/internal/atomicfile"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
)

// The files of a mirror, a directory holding a copy of a log's public files (see Mirror).
const (
	MirrorCheckpoint  = "checkpoint"   // the signed checkpoint, as GET /log/checkpoint serves it
	MirrorKey         = "key"          // the log key the node presented (GET /v1/node logKey), one line
	MirrorStateDigest = "state-digest" // optional: the node's GET /v1/state/digest answer, {"treeSize":N,"digest":"0x…"}
)

// MirrorOptions configures Mirror.
type MirrorOptions struct {
	// Key is the log's note verifier key. Required: take it from somewhere you trust, not from the
	// mirror's own key file, which only says what the node presented when the mirror was written.
	Key string
	// Previous is a signed checkpoint of the same log seen earlier; the mirror must extend it. Nil skips
	// this check.
	Previous []byte
	// Progress, if not nil, is called with ProgressReplay as the replay advances.
	Progress func(stage string, done, total int64)
}

// Mirror verifies a copy of a log's public files, with no network: fsys holds MirrorCheckpoint and
// every tile at its C2SP path ("tile/entries/000", "tile/0/001.p/7", …), byte for byte as the node
// serves them under /log/, and optionally MirrorStateDigest. Mirror checks the checkpoint with
// CheckCheckpoint, grows the empty tree to it with Tree.Extend from the tiles TilesFor(0, size) lists,
// checks that it extends opts.Previous with Tree.CheckExtends, replays every entry with Replay and, when
// the mirror holds the node's state digest, compares it with the replay's at its size. Files the mirror
// lacks count as missing tiles; other files are ignored. The error is always a *Failure; see the Err*
// kinds for which checks fail how.
func Mirror(ctx context.Context, fsys fs.FS, opts MirrorOptions) (*Summary, error) {
	v, err := note.NewVerifier(opts.Key)
	if err != nil {
		return nil, fail(StageCheckpoint, "bad log key %q: %w", opts.Key, err)
	}
	signed, err := fs.ReadFile(fsys, MirrorCheckpoint)
	if err != nil {
		return nil, fail(StageCheckpoint, "couldn't read the mirror's checkpoint: %w", err)
	}
	cp, err := checkCheckpoint(v, opts.Key, signed)
	if err != nil {
		return nil, err
	}
	prev, err := checkPrevious(v, opts.Key, opts.Previous, cp)
	if err != nil {
		return nil, err
	}

	paths := TilesFor(0, cp.Size)
	tiles := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := fs.ReadFile(fsys, p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Missing: Extend says what it lacks.
		case err != nil:
			return nil, fail(StageDownload, "couldn't read %s: %w", p, err)
		default:
			tiles[p] = b
		}
	}
	tree, err := (&Tree{}).Extend(cp, tiles)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		if err := tree.CheckExtends(*prev); err != nil {
			return nil, err
		}
	}

	st := ledger.NewState()
	var progress func(int64)
	if opts.Progress != nil {
		progress = func(done int64) { opts.Progress(ProgressReplay, done, cp.Size) }
	}
	sigs := int64(0)
	if b, err := fs.ReadFile(fsys, MirrorStateDigest); err == nil {
		var dg struct {
			TreeSize int64  `json:"treeSize"`
			Digest   string `json:"digest"`
		}
		if err := json.Unmarshal(b, &dg); err != nil {
			return nil, fail(StageState, "the mirror's %s: %w", MirrorStateDigest, err)
		}
		if dg.TreeSize < 0 || dg.TreeSize > cp.Size {
			return nil, fail(StageState, "the mirror's state digest is for %d entries, but its checkpoint has %d", dg.TreeSize, cp.Size)
		}
		got, err := parseDigest(dg.Digest)
		if err != nil {
			return nil, fail(StageState, "the mirror's state digest %q: %w", dg.Digest, err)
		}
		if sigs, err = Replay(ctx, cp.Origin, st, tree.Entries(), dg.TreeSize, progress); err != nil {
			return nil, err
		}
		if want := st.Digest(); got != want {
			return nil, failKind(StageState, -1, ErrState, "the node's state digest at %d entries is 0x%x, but replaying the log gives 0x%x", dg.TreeSize, got[:], want[:])
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fail(StageState, "couldn't read the mirror's %s: %w", MirrorStateDigest, err)
	}
	more, err := Replay(ctx, cp.Origin, st, tree.Entries(), cp.Size, progress)
	if err != nil {
		return nil, err
	}
	return summarize(tree, st, sigs+more), nil
}

// WriteMirror brings the mirror in dir (created if need be) up to the node behind c: it downloads the
// node's state digest, its checkpoint (checked with the key the node presents), and every tile the
// checkpoint's tree needs, writing each file atomically. Full tiles already in the mirror are kept (they
// never change) and partial tiles they or wider ones replace are removed. The checkpoint is written after
// the tiles it covers, so a mirror interrupted midway still verifies at its old checkpoint. The state
// digest is written only when the checkpoint covers it. WriteMirror checks nothing else: Mirror does.
// Progress, if not nil, is called with ProgressDownload.
func WriteMirror(ctx context.Context, c *client.Client, dir string, progress func(stage string, done, total int64)) (Checkpoint, error) {
	info, err := c.Node(ctx)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("couldn't fetch the node's log key: %w", err)
	}
	dg, err := c.StateDigest(ctx)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("couldn't fetch the node's state digest: %w", err)
	}
	signed, err := c.Checkpoint(ctx)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("couldn't fetch the checkpoint: %w", err)
	}
	cp, err := CheckCheckpoint(info.LogKey, signed)
	if err != nil {
		return Checkpoint{}, err
	}

	var paths []string
	for _, p := range TilesFor(0, cp.Size) {
		if !strings.Contains(p, ".p/") {
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err == nil {
				continue
			}
		}
		paths = append(paths, p)
	}
	a := &auditor{c: c, opts: Options{Progress: progress}}
	bodies, err := a.fetchAll(ctx, paths)
	if err != nil {
		return Checkpoint{}, err
	}
	for i, p := range paths {
		if err := writeFile(dir, p, bodies[i]); err != nil {
			return Checkpoint{}, err
		}
		if err := removeOldPartials(dir, p); err != nil {
			return Checkpoint{}, err
		}
	}
	if err := writeFile(dir, MirrorCheckpoint, signed); err != nil {
		return Checkpoint{}, err
	}
	if err := writeFile(dir, MirrorKey, []byte(info.LogKey+"\n")); err != nil {
		return Checkpoint{}, err
	}
	if dg.TreeSize <= cp.Size {
		b, err := json.Marshal(dg)
		if err != nil {
			return Checkpoint{}, err
		}
		return cp, writeFile(dir, MirrorStateDigest, b)
	}
	if err := os.Remove(filepath.Join(dir, MirrorStateDigest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, err
	}
	return cp, nil
}

// removeOldPartials removes the partial versions of tile p other than p itself: "tile/0/001.p/*" but p
// for a partial p = "tile/0/001.p/W", all of "tile/0/001.p" for a full p = "tile/0/001".
func removeOldPartials(dir, p string) error {
	base, w, partial := strings.Cut(p, ".p/")
	pdir := filepath.Join(dir, filepath.FromSlash(base+".p"))
	if !partial {
		return os.RemoveAll(pdir)
	}
	list, err := os.ReadDir(pdir)
	if err != nil {
		return err
	}
	for _, e := range list {
		if e.Name() != w {
			if err := os.Remove(filepath.Join(pdir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeFile replaces the file at slash-separated path p under dir with data atomically, creating its
// directory.
func writeFile(dir, p string, data []byte) error {
	name := filepath.Join(dir, filepath.FromSlash(path.Clean(p)))
	if err := atomicfile.Write(name, data, 0o755); err != nil {
		return fmt.Errorf("couldn't write the mirror's %s: %w", p, err)
	}
	return nil
}
