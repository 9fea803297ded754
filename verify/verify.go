// Package verify audits a Glovebox node from the outside, as DESIGN.md's "The log" describes
// `glovebox verify`: it checks the log's signed checkpoint (C2SP tlog-checkpoint, signed-note) and its
// consistency with one seen earlier, downloads every entry bundle and hash tile (C2SP tlog-tiles,
// https://c2sp.org/tlog-tiles), recomputes the Merkle tree, replays every entry through the ledger's rules
// and signatures, and compares the node's state answers with its own replay.
//
// It trusts nothing the node says beyond the log key it is given. Merkle hashing and note verification are
// golang.org/x/mod/sumdb/tlog and golang.org/x/mod/sumdb/note; the rules are package ledger's, the same
// code the node runs.
//
// It imports only client, ledger and tlog: an auditor trusts none of the node's code beyond the rules it
// replays.
package verify

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/tlog"
)

// DefaultMaxVehicleReads is how many vehicles are read back from the node when Options.MaxVehicleReads
// is zero.
const DefaultMaxVehicleReads = 1000

const (
	// maxInFlight bounds the concurrent requests to the node.
	maxInFlight = 8
	// maxRounds bounds how often the auditor catches up with a node that keeps appending while it is
	// being verified.
	maxRounds = 3
	// fetchAttempts is how often a tile is requested before a network or server error is final.
	fetchAttempts = 3
)

// The stages of a verification, as Failure.Stage names them.
const (
	StageCheckpoint  = "checkpoint"  // fetching or verifying the signed checkpoint
	StageConsistency = "consistency" // the log does not extend a checkpoint seen earlier (a fork)
	StageDownload    = "download"    // a tile or entry bundle could not be fetched, or has a bad shape
	StageTree        = "tree"        // entries that do not hash to the checkpoint's tree
	StageTiles       = "tiles"       // a hash tile that does not match the entries
	StageReplay      = "replay"      // an entry that breaks a rule or carries a bad signature
	StageState       = "state"       // the node's state digest differs from the replay's
	StageVehicles    = "vehicles"    // the node's answer about a vehicle differs from the replay's
)

// The stages Options.Progress reports.
const (
	ProgressDownload = "download"
	ProgressReplay   = "replay"
	ProgressCompare  = "compare"
)

// Options configures Log.
type Options struct {
	// Key is the log's note verifier key, "<origin>+<hash>+<base64 key>". Required. Its name must be the
	// log's origin, which also fixes the EIP-712 domain the signatures are checked in.
	Key string
	// Previous is a signed checkpoint of the same log seen earlier (Summary.Checkpoint of an earlier
	// run). When set, it must verify with Key and the log must extend it; otherwise the log forked. Nil
	// skips this check.
	Previous []byte
	// MaxVehicleReads caps how many vehicles are read back from the node and compared with the replay.
	// With more vehicles than that, a deterministic sample spread evenly over the ids (first and last
	// included) is read. Zero means DefaultMaxVehicleReads; negative reads none.
	MaxVehicleReads int
	// Progress, if not nil, is called as each stage advances (ProgressDownload, ProgressReplay,
	// ProgressCompare) with the work done and the total so far. It is called from one goroutine at a
	// time and must return quickly.
	Progress func(stage string, done, total int64)
}

// Summary is what a successful verification established.
type Summary struct {
	Origin       string
	TreeSize     int64      // size of the newest verified checkpoint
	RootHash     xtlog.Hash // its root hash, recomputed from the entries
	Entries      int64      // entries replayed: every signature and rule checked (TreeSize unless the node moved on)
	Signatures   int64      // signatures checked during the replay
	Vehicles     int        // in the replayed state, burned ones included
	Devices      int
	Apps         int
	Grants       int // grants recorded on vehicles, in force or expired
	StateDigest  [32]byte
	VehicleReads int           // vehicles read back from the node and found equal
	Checkpoint   []byte        // the newest verified checkpoint: keep it and pass it as Options.Previous next time
	Duration     time.Duration // wall time of the whole verification
}

// String returns a one-line report.
func (s *Summary) String() string {
	return fmt.Sprintf("ok: %s %s, %s, %s, %s, %s, %s, state 0x%x matches the node (%s read back, tree %d, %v)",
		s.Origin, count(s.Entries, "entry", "entries"), count(s.Signatures, "signature", "signatures"),
		count(s.Vehicles, "vehicle", "vehicles"), count(s.Devices, "device", "devices"), count(s.Apps, "app", "apps"),
		count(s.Grants, "grant", "grants"), s.StateDigest[:], count(s.VehicleReads, "vehicle", "vehicles"),
		s.TreeSize, s.Duration.Round(time.Millisecond))
}

// count writes n with the noun's singular or plural.
func count[N int | int64](n N, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Failure is why a verification failed: at which stage and, when it is about one log entry, which.
type Failure struct {
	Index int64  // the log entry at fault, or -1 when the failure is not about one entry
	Stage string // one of the Stage constants
	Err   error
}

func (f *Failure) Error() string {
	if f.Index >= 0 {
		return fmt.Sprintf("entry %d: %v", f.Index, f.Err)
	}
	return fmt.Sprintf("%s: %v", f.Stage, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

func fail(stage string, format string, args ...any) *Failure {
	return &Failure{Index: -1, Stage: stage, Err: fmt.Errorf(format, args...)}
}

// auditor holds one verification's state. It is owned by the goroutine running Log; the download and
// compare workers only write their own result slots and report progress under progressMu.
type auditor struct {
	c        *client.Client
	opts     Options
	verifier note.Verifier
	origin   string
	domain   *ledger.Domain

	// The verified tree: the first size entries, all their stored hashes, and the checkpoint that signs
	// them. They only ever grow, after the new part has been checked.
	size    int64
	root    xtlog.Hash
	cp      []byte
	entries [][]byte
	stored  hashSlice

	st         *ledger.State // replay of the first st.Size() entries (≤ size)
	signatures int64
	digest     [32]byte // st's digest, equal to the node's

	progressMu sync.Mutex
}

// Log verifies the node behind c: its signed checkpoint against opts.Key and opts.Previous, every entry
// bundle and hash tile against the recomputed Merkle tree, every entry's signatures and rules by a replay
// from an empty state, and the node's state digest and vehicle answers against the replay. The error is
// always a *Failure.
func Log(ctx context.Context, c *client.Client, opts Options) (*Summary, error) {
	start := time.Now()
	v, err := note.NewVerifier(opts.Key)
	if err != nil {
		return nil, fail(StageCheckpoint, "bad log key %q: %w", opts.Key, err)
	}
	empty, err := xtlog.TreeHash(0, hashSlice(nil))
	if err != nil {
		return nil, fail(StageTree, "%w", err)
	}
	a := &auditor{c: c, opts: opts, verifier: v, origin: v.Name(), domain: ledger.NewDomain(v.Name()),
		root: empty, st: ledger.NewState()}

	// 1. The checkpoint.
	signed, size, root, err := a.fetchCheckpoint(ctx)
	if err != nil {
		return nil, err
	}

	// 2. The checkpoint seen before, if any: it must be ours and no larger.
	prevSize := int64(-1)
	var prevRoot xtlog.Hash
	if opts.Previous != nil {
		prevSize, prevRoot, err = tlog.OpenCheckpoint(opts.Previous, a.origin, v)
		if err != nil {
			return nil, fail(StageConsistency, "the previous checkpoint does not verify with the log key: %w", err)
		}
		if size < prevSize {
			return nil, fail(StageConsistency, "fork: the log's checkpoint has %d entries, but it signed a checkpoint of %d entries before: the log was rolled back or forked", size, prevSize)
		}
	}

	// 3. Every entry and hash tile, against the recomputed tree.
	if err := a.extend(ctx, signed, size, root); err != nil {
		return nil, err
	}
	if prevSize >= 0 {
		th, err := xtlog.TreeHash(prevSize, a.stored)
		if err != nil {
			return nil, fail(StageConsistency, "%w", err)
		}
		if th != prevRoot {
			return nil, fail(StageConsistency, "fork: the log's first %d entries hash to %v, but the checkpoint seen before signed root %v for them: the log was rewritten or forked", prevSize, th, prevRoot)
		}
	}

	// 4. The replay: every signature and rule.
	if err := a.replay(ctx, a.size); err != nil {
		return nil, err
	}

	// 5. The node's answers.
	if err := a.compareState(ctx); err != nil {
		return nil, err
	}
	reads, err := a.compareVehicles(ctx)
	if err != nil {
		return nil, err
	}

	// 6. The summary.
	snap := a.st.Snapshot()
	s := &Summary{Origin: a.origin, TreeSize: a.size, RootHash: a.root, Entries: a.st.Size(),
		Signatures: a.signatures, Vehicles: len(snap.Vehicles), Devices: len(snap.Devices), Apps: len(snap.Apps),
		StateDigest: a.digest, VehicleReads: reads, Checkpoint: a.cp}
	for _, veh := range snap.Vehicles {
		s.Grants += len(veh.Grants)
	}
	s.Duration = time.Since(start)
	return s, nil
}

// fetchCheckpoint fetches the log's checkpoint and verifies its signature and origin.
func (a *auditor) fetchCheckpoint(ctx context.Context) (signed []byte, size int64, root xtlog.Hash, err error) {
	signed, err = a.c.Checkpoint(ctx)
	if err != nil {
		return nil, 0, root, fail(StageCheckpoint, "couldn't fetch the checkpoint: %w", err)
	}
	size, root, err = tlog.OpenCheckpoint(signed, a.origin, a.verifier)
	if err != nil {
		return nil, 0, root, fail(StageCheckpoint, "the checkpoint does not verify with the log key %s: %w", a.opts.Key, err)
	}
	return signed, size, root, nil
}

// catchUp verifies the node's current checkpoint and extends the verified tree to it.
func (a *auditor) catchUp(ctx context.Context) error {
	signed, size, root, err := a.fetchCheckpoint(ctx)
	if err != nil {
		return err
	}
	return a.extend(ctx, signed, size, root)
}

// replay applies the verified entries [st.Size(), to) to the state.
func (a *auditor) replay(ctx context.Context, to int64) error {
	src := func(ctx context.Context, from, n int64) ([][]byte, error) {
		raw := a.entries[from : from+n]
		for _, r := range raw {
			// Replay decodes them again and reports any that don't decode.
			if e, err := ledger.UnmarshalEntry(r); err == nil {
				a.signatures += int64(len(e.Tx.Signatures))
			}
		}
		return raw, nil
	}
	progress := func(done int64) { a.progress(ProgressReplay, done, to) }
	err := ledger.Replay(ctx, a.domain, a.st, to, src, progress)
	var ee *ledger.EntryError
	switch {
	case errors.As(err, &ee):
		return &Failure{Index: ee.Index, Stage: StageReplay, Err: ee.Err}
	case err != nil:
		return fail(StageReplay, "%w", err)
	}
	return nil
}

func (a *auditor) progress(stage string, done, total int64) {
	if a.opts.Progress == nil {
		return
	}
	a.progressMu.Lock()
	defer a.progressMu.Unlock()
	a.opts.Progress(stage, done, total)
}

// compareState compares the node's state digest with the replay's. A node that moved on is followed:
// the auditor verifies its new checkpoint, replays up to exactly the size of the node's digest and
// compares again, at most maxRounds times.
func (a *auditor) compareState(ctx context.Context) error {
	for round := 0; ; round++ {
		dg, err := a.c.StateDigest(ctx)
		if err != nil {
			return fail(StageState, "couldn't read the node's state digest: %w", err)
		}
		if dg.TreeSize < a.st.Size() {
			return fail(StageState, "the node reports a state of %d entries, fewer than the %d of its own verified log", dg.TreeSize, a.st.Size())
		}
		if dg.TreeSize > a.st.Size() {
			if round == maxRounds {
				return fail(StageState, "the node kept moving on (its state now has %d entries, the verified log %d); try again", dg.TreeSize, a.size)
			}
			if dg.TreeSize > a.size {
				if err := a.catchUp(ctx); err != nil {
					return err
				}
				if dg.TreeSize > a.size {
					continue // its checkpoint lags its state answer: ask again
				}
			}
			if err := a.replay(ctx, dg.TreeSize); err != nil {
				return err
			}
		}
		got, err := parseDigest(dg.Digest)
		if err != nil {
			return fail(StageState, "the node's state digest %q: %w", dg.Digest, err)
		}
		want := a.st.Digest()
		if got != want {
			return fail(StageState, "the node's state digest at %d entries is 0x%x, but replaying the log gives 0x%x", dg.TreeSize, got[:], want[:])
		}
		a.digest = want
		return nil
	}
}

func parseDigest(s string) ([32]byte, error) {
	var d [32]byte
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || len(h) != 64 {
		return d, errors.New("want 0x and 64 hex digits")
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, err
	}
	return d, nil
}
