package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/glovebox/glovebox/internal/atomicfile"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/term"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/verify"
)

const (
	verifyArgs = "[--key VKEY|@FILE] [--state-dir DIR] [--max-vehicle-reads N] URL | --mirror DIR [--key VKEY|@FILE] [--previous FILE]"
	mirrorArgs = "URL DIR"
)

func init() {
	register(command{name: "verify", args: verifyArgs,
		short: "audit a node: its log, every signature and rule, and its answers", run: runVerify})
	register(command{name: "mirror", args: mirrorArgs,
		short: "copy a node's log (checkpoint, tiles, key, state digest) to a directory for verify --mirror", run: runMirror})
}

const verifyHelp = `Audits the node at URL without trusting it: verifies its signed checkpoint with the log key and
checks that the log extends the checkpoint verified last time (else it forked), downloads every entry and
hash tile and recomputes the Merkle tree, replays every entry from an empty state checking every signature
and rule, then compares the node's state digest and its answers about vehicles with the replay.

Without --key the log key is trusted on first use: it is fetched from the node and kept per URL in the
state directory, and later runs refuse a node whose key changed. The last verified checkpoint is kept
there per origin. Prints a one-line summary and exits 0 when everything checks out; prints
"verify: FAILED at entry N: why" (or at the stage that failed) and exits 1 otherwise.

With --mirror DIR instead of URL, it checks a copy of the log that "glovebox mirror" wrote (see
docs/verify.md for its layout) with no network: the checkpoint, every tile and entry, the replay, and the
node's state digest kept in the mirror. The key is --key, else the one the mirror kept from the node (a
warning says so); --previous FILE is a checkpoint the mirror must extend. The state directory is not used.`

const mirrorHelp = `Copies the public files of the node at URL's log to DIR (created if need be): its signed checkpoint,
every entry bundle and hash tile at its C2SP path, the log key it presents and its state digest. Run it
again to bring the mirror up to date: full tiles already there are kept. Check the mirror with
"glovebox verify --mirror DIR --key VKEY". Prints the mirrored tree size.`

// Files in the state directory.
const (
	verifyKeysDir        = "trusted-keys" // one file per node URL: the log key trusted on first use
	verifyCheckpointsDir = "checkpoints"  // one file per origin: the last verified checkpoint
)

func runVerify(ctx context.Context, args []string) error {
	return verifyCommand(ctx, args, stdout, os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
}

// verifyCommand runs `glovebox verify`: results go to out, diagnostics and the progress bar (only when
// progress is set) to errw.
func verifyCommand(ctx context.Context, args []string, out, errw io.Writer, progress bool) error {
	fl := newCommandFlags("verify", verifyArgs, verifyHelp)
	keyFlag := fl.String("key", "", "the log's note verifier key, or @FILE holding it (default: the key trusted on first use)")
	stateDir := fl.String("state-dir", "", "where trusted keys and verified checkpoints are kept (env GLOVEBOX_CONFIG_DIR; default the user config directory's glovebox/)")
	maxReads := fl.Int("max-vehicle-reads", verify.DefaultMaxVehicleReads, "read back at most this many vehicles, a sample spread over the ids (negative: none)")
	mirror := fl.String("mirror", "", "check the mirror in `DIR` (written by glovebox mirror) instead of a node")
	previous := fl.String("previous", "", "with --mirror: a checkpoint `FILE` the mirror must extend")
	npos := 1 // URL, unless --mirror replaces it
	if slices.ContainsFunc(args, func(a string) bool {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		return strings.HasPrefix(a, "-") && name == "mirror"
	}) {
		npos = 0
	}
	pos, err := parseArgs(fl, args, npos)
	if err != nil {
		return err
	}
	if *mirror != "" {
		return verifyMirror(ctx, *mirror, *keyFlag, *previous, out, errw)
	}
	if *previous != "" {
		return usageError(fl, "--previous goes with --mirror")
	}
	base := strings.TrimRight(pos[0], "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError(fl, "URL must be an http or https URL, not %q", pos[0])
	}
	dir, err := verifyStateDir(*stateDir)
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16 // the auditor keeps 8 requests in flight
	c := client.New(base).WithHTTPClient(&http.Client{Transport: tr, Timeout: 2 * time.Minute})

	key, err := verifyTrustedKey(ctx, c, dir, *keyFlag, errw)
	if err != nil {
		return err
	}
	v, err := note.NewVerifier(key)
	if err != nil {
		return fmt.Errorf("bad log key %q: %w", key, err)
	}
	cpFile := filepath.Join(dir, verifyCheckpointsDir, verifyFileName(v.Name()))
	prev, err := os.ReadFile(cpFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("couldn't read the checkpoint verified before: %w", err)
	}

	opts := verify.Options{Key: key, Previous: prev, MaxVehicleReads: *maxReads}
	var bar *verifyProgress
	if progress {
		bar = &verifyProgress{w: errw}
		opts.Progress = bar.update
	}
	sum, err := verify.Log(ctx, c, opts)
	bar.clear()
	if err != nil {
		var f *verify.Failure
		if errors.As(err, &f) && f.Index < 0 && f.Stage == verify.StageConsistency && prev != nil {
			return exitError{1, fmt.Errorf("verify: FAILED at %s: %w (the checkpoint verified before is kept in %s)", f.Stage, f.Err, cpFile)}
		}
		return verifyFailed(err)
	}
	if err := atomicfile.Write(cpFile, sum.Checkpoint, 0o700); err != nil {
		return fmt.Errorf("the log verified, but its checkpoint couldn't be kept for next time: %w", err)
	}
	fmt.Fprintln(out, sum)
	return nil
}

// verifyMirror runs `glovebox verify --mirror DIR`.
func verifyMirror(ctx context.Context, dir, keyFlag, previousFile string, out, errw io.Writer) error {
	var key string
	if keyFlag != "" {
		k, err := verifyKeyFlag(keyFlag)
		if err != nil {
			return err
		}
		key = k
	} else {
		file := filepath.Join(dir, verify.MirrorKey)
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("no --key, and the mirror's key couldn't be read: %w", err)
		}
		key = strings.TrimSpace(string(b))
		fmt.Fprintf(errw, "verify: using the key the mirror kept from the node (%s): pass --key to check against a key you trust\n", file)
	}
	var prev []byte
	if previousFile != "" {
		b, err := os.ReadFile(previousFile)
		if err != nil {
			return fmt.Errorf("couldn't read --previous: %w", err)
		}
		prev = b
	}
	sum, err := verify.Mirror(ctx, os.DirFS(dir), verify.MirrorOptions{Key: key, Previous: prev})
	if err != nil {
		return verifyFailed(err)
	}
	fmt.Fprintln(out, sum)
	return nil
}

// verifyFailed turns the auditor's error into the exit status 1 and its one-line message.
func verifyFailed(err error) error {
	var f *verify.Failure
	switch {
	case !errors.As(err, &f):
		return exitError{1, fmt.Errorf("verify: FAILED: %w", err)}
	case f.Index >= 0:
		return exitError{1, fmt.Errorf("verify: FAILED at entry %d: %w", f.Index, f.Err)}
	}
	return exitError{1, fmt.Errorf("verify: FAILED at %s: %w", f.Stage, f.Err)}
}

func runMirror(ctx context.Context, args []string) error {
	fl := newCommandFlags("mirror", mirrorArgs, mirrorHelp)
	pos, err := parseArgs(fl, args, 2)
	if err != nil {
		return err
	}
	base := strings.TrimRight(pos[0], "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError(fl, "URL must be an http or https URL, not %q", pos[0])
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16 // 8 requests in flight
	c := client.New(base).WithHTTPClient(&http.Client{Transport: tr, Timeout: 2 * time.Minute})
	cp, err := verify.WriteMirror(ctx, c, pos[1], nil)
	if err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	fmt.Fprintf(stdout, "mirrored %s: %d entries in %s\n", cp.Origin, cp.Size, pos[1])
	return nil
}

// verifyStateDir returns the state directory: flag, else $GLOVEBOX_CONFIG_DIR, else the user config
// directory's glovebox/.
func verifyStateDir(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if d := os.Getenv("GLOVEBOX_CONFIG_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: pass --state-dir or set GLOVEBOX_CONFIG_DIR (%w)", err)
	}
	return filepath.Join(d, "glovebox"), nil
}

// verifyTrustedKey returns the log key to verify with: --key (a key, or @FILE), else the key trusted on
// first use for the node's URL, else the node's own key from GET /v1/node, which is then kept.
func verifyTrustedKey(ctx context.Context, c *client.Client, dir, keyFlag string, errw io.Writer) (string, error) {
	if keyFlag != "" {
		return verifyKeyFlag(keyFlag)
	}

	file := filepath.Join(dir, verifyKeysDir, verifyFileName(c.URL()))
	stored, err := os.ReadFile(file)
	switch {
	case err == nil:
		key := strings.TrimSpace(string(stored))
		// The checkpoint's signature is what enforces the key; asking the node gives a clearer message.
		if info, err := c.Node(ctx); err == nil && info.LogKey != key {
			return "", exitError{1, fmt.Errorf("verify: FAILED at key: the node at %s now presents log key %s, but key %s was trusted on first use (kept in %s); if the change is legitimate, delete that file or pass --key",
				c.URL(), info.LogKey, key, file)}
		}
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("couldn't read the trusted key: %w", err)
	}

	info, err := c.Node(ctx)
	if err != nil {
		return "", fmt.Errorf("couldn't fetch the node's log key from %s/v1/node: %w", c.URL(), err)
	}
	v, err := note.NewVerifier(info.LogKey)
	if err != nil {
		return "", fmt.Errorf("the node's log key %q is not a note verifier key: %w", info.LogKey, err)
	}
	if v.Name() != info.Origin {
		return "", fmt.Errorf("the node's log key is named %q, but its origin is %q", v.Name(), info.Origin)
	}
	if err := atomicfile.Write(file, []byte(info.LogKey+"\n"), 0o700); err != nil {
		return "", fmt.Errorf("couldn't keep the trusted key: %w", err)
	}
	fmt.Fprintf(errw, "verify: trusting key %s of %s on first use (kept in %s)\n", info.LogKey, c.URL(), file)
	return info.LogKey, nil
}

// verifyKeyFlag returns the key --key gives: the key itself, or @FILE holding it.
func verifyKeyFlag(keyFlag string) (string, error) {
	key := keyFlag
	if name, ok := strings.CutPrefix(keyFlag, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("couldn't read --key: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if _, err := note.NewVerifier(key); err != nil {
		return "", fmt.Errorf("bad --key %q: %w", key, err)
	}
	return key, nil
}

// verifyFileName turns a URL or an origin into one file name, reversibly.
func verifyFileName(s string) string { return url.QueryEscape(s) }

// verifyProgress draws a one-line progress bar on a terminal. A nil *verifyProgress draws nothing.
type verifyProgress struct {
	w     io.Writer
	stage string
	last  time.Time
}

func (p *verifyProgress) update(stage string, done, total int64) {
	now := time.Now()
	if stage == p.stage && done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.stage, p.last = stage, now
	const width = 30
	fill := 0
	if total > 0 {
		fill = int(min(done, total) * width / total)
	}
	fmt.Fprintf(p.w, "\r\033[K%-8s [%s%s] %d/%d", stage, strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, total)
}

func (p *verifyProgress) clear() {
	if p != nil && p.stage != "" {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
