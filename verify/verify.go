// Package verify audits a Glovebox node from the outside, as DESIGN.md's "The log" describes
// `glovebox verify`: it checks the log's signed checkpoint (C2SP tlog-checkpoint, signed-note) and its
// consistency with one seen earlier, downloads every entry bundle and hash tile (C2SP tlog-tiles,
// https://c2sp.org/tlog-tiles), recomputes the Merkle tree, replays every entry through the ledger's rules
// and signatures, and compares the node's state answers with its own replay.
//
// # Pure checks
//
// Every check is a function of bytes already fetched, with no network, clock or disk:
//
//   - [CheckCheckpoint]: a signed checkpoint against the log key;
//   - [Tree.Extend]: the entry bundles and hash tiles [TilesFor] lists against a checkpoint, by
//     recomputing the tree from the entries (which proves every entry's inclusion) and holding every hash
//     tile against it; a bad entry is named by its index;
//   - [CheckInclusion]: one entry against a checkpoint, from the hash tiles alone;
//   - [Tree.CheckExtends]: consistency of the tree with a checkpoint seen earlier (else a fork);
//   - [CheckConsistency]: consistency between two checkpoints, from the newer one's hash tiles alone;
//   - [Replay]: the entries, through every signature and rule, to the state whose digest a node reports.
//
// [Log], the HTTP auditor behind `glovebox verify URL`, fetches bytes and hands them to these; [Mirror]
// hands them over from a copy of the log on disk ([WriteMirror] writes one), with no network at all.
// Failures are a *[Failure] naming the stage and, where it is about one entry, its index; errors.Is tells
// the kinds apart: [ErrCheckpoint], [ErrFork], [ErrEntryMissing], [ErrEntryChanged], [ErrTileMismatch],
// [ErrState], [ErrMalformed] (docs/verify.md lists them).
//
// It trusts nothing the node says beyond the log key it is given. Merkle hashing and note verification are
// golang.org/x/mod/sumdb/tlog and golang.org/x/mod/sumdb/note; the rules are package ledger's, the same
// code the node runs.
//
// It owns the auditor and imports only client, ledger and tlog: an auditor trusts none of the node's code
// beyond the rules it replays, so it must not import api, node, store or telemetry.
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

	tree *Tree // the verified tree; it only ever grows, after the new part has been checked

	st         *ledger.State // replay of the first st.Size() entries (≤ tree.Size())
	signatures int64

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
	a := &auditor{c: c, opts: opts, verifier: v, origin: v.Name(), tree: &Tree{}, st: ledger.NewState()}

	// 1. The checkpoint.
	cp, err := a.fetchCheckpoint(ctx)
	if err != nil {
		return nil, err
	}

	// 2. The checkpoint seen before, if any: it must be ours and no larger.
	prev, err := checkPrevious(v, opts.Key, opts.Previous, cp)
	if err != nil {
		return nil, err
	}

	// 3. Every entry and hash tile, against the recomputed tree, which must extend the one seen before.
	if err := a.extend(ctx, cp); err != nil {
		return nil, err
	}
	if prev != nil {
		if err := a.tree.CheckExtends(*prev); err != nil {
			return nil, err
		}
	}

	// 4. The replay: every signature and rule.
	if err := a.replay(ctx, a.tree.Size()); err != nil {
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
	s := summarize(a.tree, a.st, a.signatures)
	s.VehicleReads = reads
	s.Duration = time.Since(start)
	return s, nil
}

// checkPrevious verifies the checkpoint seen before (nil: none) with the log key and checks that it is
// no larger than cp. It returns nil when there is none.
func checkPrevious(v note.Verifier, key string, previous []byte, cp Checkpoint) (*Checkpoint, error) {
	if previous == nil {
		return nil, nil
	}
	prev, err := checkCheckpoint(v, key, previous)
	if err != nil {
		if f := (*Failure)(nil); errors.As(err, &f) {
			err = f.Err
		}
		return nil, failKind(StageConsistency, -1, ErrCheckpoint, "the previous checkpoint does not verify with the log key: %w", err)
	}
	if cp.Size < prev.Size {
		return nil, failKind(StageConsistency, -1, ErrFork, "fork: the log's checkpoint has %d entries, but it signed a checkpoint of %d entries before: the log was rolled back or forked", cp.Size, prev.Size)
	}
	return &prev, nil
}

// summarize reports a verified tree and its replay.
func summarize(t *Tree, st *ledger.State, signatures int64) *Summary {
	snap := st.Snapshot()
	s := &Summary{Origin: t.Checkpoint().Origin, TreeSize: t.Size(), RootHash: t.Root(), Entries: st.Size(),
		Signatures: signatures, Vehicles: len(snap.Vehicles), Devices: len(snap.Devices), Apps: len(snap.Apps),
		StateDigest: st.Digest(), Checkpoint: t.Checkpoint().Signed}
	for _, veh := range snap.Vehicles {
		s.Grants += len(veh.Grants)
	}
	return s
}

// fetchCheckpoint fetches the log's checkpoint and verifies its signature and origin.
func (a *auditor) fetchCheckpoint(ctx context.Context) (Checkpoint, error) {
	signed, err := a.c.Checkpoint(ctx)
	if err != nil {
		return Checkpoint{}, fail(StageCheckpoint, "couldn't fetch the checkpoint: %w", err)
	}
	return checkCheckpoint(a.verifier, a.opts.Key, signed)
}

// catchUp verifies the node's current checkpoint and extends the verified tree to it.
func (a *auditor) catchUp(ctx context.Context) error {
	cp, err := a.fetchCheckpoint(ctx)
	if err != nil {
		return err
	}
	return a.extend(ctx, cp)
}

// replay applies the verified entries [st.Size(), to) to the state.
func (a *auditor) replay(ctx context.Context, to int64) error {
	sigs, err := Replay(ctx, a.origin, a.st, a.tree.Entries(), to, func(done int64) { a.progress(ProgressReplay, done, to) })
	a.signatures += sigs
	return err
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
				return fail(StageState, "the node kept moving on (its state now has %d entries, the verified log %d); try again", dg.TreeSize, a.tree.Size())
			}
			if dg.TreeSize > a.tree.Size() {
				if err := a.catchUp(ctx); err != nil {
					return err
				}
				if dg.TreeSize > a.tree.Size() {
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
			return failKind(StageState, -1, ErrState, "the node's state digest at %d entries is 0x%x, but replaying the log gives 0x%x", dg.TreeSize, got[:], want[:])
		}
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
