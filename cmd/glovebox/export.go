package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/export"
)

const (
	exportArgs       = "--vehicle ID --key FILE --out FILE [--from TIME] [--to TIME] [--passphrase-file FILE] [--node URL]"
	verifyExportArgs = "[--log-key KEY | --node URL] FILE"
)

func init() {
	register(command{name: "export", args: exportArgs,
		short: "download a vehicle's data export as its owner (resumable), and verify it", run: runExport})
	register(command{name: "verify-export", args: verifyExportArgs,
		short: "check an export archive offline: signatures, pairing proofs, checkpoint", run: runVerifyExport})
}

// resumeState is what a partial download keeps beside its file (FILE.resume), to ask for the rest of
// the very same archive.
type resumeState struct {
	Node     string `json:"node"`
	Vehicle  uint64 `json:"vehicleId"`
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Snapshot string `json:"snapshot"`
	ETag     string `json:"etag"`
}

func runExport(ctx context.Context, args []string) error {
	fl := newCommandFlags("export", exportArgs,
		`Signs in with the owner's key file and downloads the vehicle's data export (GET /v1/vehicles/{id}/export,
docs/export.md) to --out: one zip of the device-signed records, the signal values as CSV and NDJSON,
driving events, trips, grants, the access log and the log entries with their proofs, for the period(s)
in which the key's account owned the car. A progress bar runs on stderr.

If the download stops, run the same command again: it resumes where it stopped (by byte range, on the
same snapshot, kept in FILE.resume until the download is whole). Then the archive is verified offline
against the node's log key, as verify-export does; a failed check exits 1 naming it.

--from and --to (RFC 3339) narrow the export to part of the ownership period(s).`)
	node := nodeFlag(fl)
	key := keyFileFlag(fl, "keystore `FILE` of the owner's account (required; env GLOVEBOX_KEY)")
	passFile := fl.String("passphrase-file", envDefault("GLOVEBOX_PASSPHRASE_FILE", ""), "`FILE` holding the passphrase of --key (env GLOVEBOX_PASSPHRASE_FILE; default: prompt)")
	var vehicle idFlag
	fl.Var(&vehicle, "vehicle", "the vehicle's `ID` (required)")
	out := fl.String("out", "", "the archive `FILE` to write (required)")
	from := fl.String("from", "", "export from this RFC 3339 `TIME` on")
	to := fl.String("to", "", "export up to this RFC 3339 `TIME`")
	if _, err := parseArgs(fl, args, 0); err != nil {
		return err
	}
	if err := required(fl, "vehicle", "key", "out"); err != nil {
		return err
	}
	q := client.ExportQuery{Vehicle: vehicle.id}
	for _, b := range []struct {
		name, v string
		dst     *time.Time
	}{{"from", *from, &q.From}, {"to", *to, &q.To}} {
		if b.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, b.v)
		if err != nil {
			return usageError(fl, "--%s %q is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z)", b.name, b.v)
		}
		*b.dst = t
	}
	statePath := *out + ".resume"
	want := resumeState{Node: *node, Vehicle: q.Vehicle, From: *from, To: *to}
	var state resumeState
	if b, err := os.ReadFile(statePath); err == nil {
		if json.Unmarshal(b, &state) != nil || state.Node != want.Node || state.Vehicle != want.Vehicle || state.From != want.From || state.To != want.To {
			return fmt.Errorf("%s is of another export; remove it and %s to start again", statePath, *out)
		}
		if fi, err := os.Stat(*out); err == nil {
			q.Snapshot, q.ETag, q.Offset = state.Snapshot, state.ETag, fi.Size()
		}
	} else if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s exists; choose another --out or remove it", *out)
	}
	cl, tok, err := signIn(ctx, *node, *key, *passFile)
	if err != nil {
		return err
	}
	st, err := cl.Export(ctx, tok.AccessToken, q)
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Code == "range_not_satisfiable" && q.Offset > 0 {
		// The file was whole already (the last run stopped before it could say so).
		os.Remove(statePath)
		return verifyLogged(ctx, cl, *out)
	}
	if err != nil {
		return nodeError(cl, err)
	}
	defer st.Body.Close()
	flags := os.O_CREATE | os.O_WRONLY
	if st.Offset == 0 {
		flags |= os.O_TRUNC // a fresh archive (a new download, or the node could not resume)
	}
	f, err := os.OpenFile(*out, flags, 0o600)
	if err != nil {
		return fmt.Errorf("couldn't write the archive: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(st.Offset, io.SeekStart); err != nil {
		return fmt.Errorf("couldn't write the archive: %w", err)
	}
	want.Snapshot, want.ETag = st.Snapshot, st.ETag
	if b, err := json.Marshal(want); err != nil {
		return err
	} else if err := os.WriteFile(statePath, b, 0o600); err != nil {
		return fmt.Errorf("couldn't write %s: %w", statePath, err)
	}
	bar := newProgress(os.Stderr, st.Offset, st.Total)
	n, err := io.Copy(f, io.TeeReader(st.Body, bar))
	bar.done()
	if err != nil {
		return fmt.Errorf("the download stopped after %d bytes (run the command again to resume): %w", st.Offset+n, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("couldn't write the archive: %w", err)
	}
	if st.Total >= 0 && st.Offset+n != st.Total {
		return fmt.Errorf("the download stopped after %d of %d bytes (run the command again to resume)", st.Offset+n, st.Total)
	}
	os.Remove(statePath)
	return verifyLogged(ctx, cl, *out)
}

// verifyLogged verifies the archive at path against the log key of the node of cl.
func verifyLogged(ctx context.Context, cl *client.Client, path string) error {
	info, err := cl.Node(ctx)
	if err != nil {
		return nodeError(cl, err)
	}
	return verifyArchive(path, info.LogKey)
}

func runVerifyExport(ctx context.Context, args []string) error {
	fl := newCommandFlags("verify-export", verifyExportArgs,
		`Checks an export archive (glovebox export, GET /v1/vehicles/{id}/export) offline against the log's public
key: the checkpoint's signature, every log entry's inclusion proof, the ownership periods, every record's
device signature and pairing, and that the signal files hold exactly the records' values. Prints a
summary; exits 1 naming the first failed check.

The key is --log-key (the node's logKey, GET /v1/node); without it, it is asked of the node at --node.`)
	node := nodeFlag(fl)
	logKey := fl.String("log-key", "", "the log's note verifier `KEY` (origin+hash+base64)")
	pos, err := parseArgs(fl, args, 1)
	if err != nil {
		return err
	}
	if *logKey == "" {
		cl := client.New(*node)
		info, err := cl.Node(ctx)
		if err != nil {
			return nodeError(cl, err)
		}
		*logKey = info.LogKey
	}
	return verifyArchive(pos[0], *logKey)
}

// verifyArchive checks the archive at path and prints its summary, or fails (exit 1) naming the check.
func verifyArchive(path, logKey string) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return exitError{1, fmt.Errorf("%s is not a zip archive: %w", path, err)}
	}
	defer zr.Close()
	rep, err := export.Verify(&zr.Reader, logKey)
	if err != nil {
		return exitError{1, fmt.Errorf("%s does not verify: %w", path, err)}
	}
	w := stdout
	fmt.Fprintf(w, "archive   %s\n", path)
	fmt.Fprintf(w, "vehicle   %d, owner %s\n", rep.Vehicle, rep.Owner)
	for _, p := range rep.Periods {
		to := p.ToTime
		if to == "" {
			to = "now"
		}
		fmt.Fprintf(w, "owned     %s to %s\n", p.FromTime, to)
	}
	fmt.Fprintf(w, "records   %d from %d device(s) %s\n", rep.Records, len(rep.Devices), strings.Join(rep.Devices, " "))
	if rep.Records > 0 {
		fmt.Fprintf(w, "period    %s to %s\n", rep.First.Format(time.RFC3339), rep.Last.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "values    %d\n", rep.Values)
	fmt.Fprintf(w, "log       %d entries, checkpoint signed by %s\n", rep.LogSize, logKey)
	fmt.Fprintf(w, "checks    %s: all passed\n", strings.Join(rep.ChecksPassed, ", "))
	return nil
}

// progress draws a download's progress on a terminal: a bar when the length is known, else the bytes;
// elsewhere it prints one line at the end.
type progress struct {
	w          io.Writer
	tty        bool
	start      time.Time
	last       time.Time
	have, base int64
	total      int64
}

func newProgress(w *os.File, offset, total int64) *progress {
	return &progress{w: w, tty: term.IsTerminal(int(w.Fd())), start: time.Now(), have: offset, base: offset, total: total}
}

func (p *progress) Write(b []byte) (int, error) {
	p.have += int64(len(b))
	if p.tty && time.Since(p.last) > 150*time.Millisecond {
		p.last = time.Now()
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	rate := float64(p.have-p.base) / max(time.Since(p.start).Seconds(), 1e-3)
	if p.total > 0 {
		const width = 30
		done := int(float64(width) * float64(p.have) / float64(p.total))
		fmt.Fprintf(p.w, "\r[%s%s] %3d%% %s of %s, %s/s ", strings.Repeat("#", min(done, width)), strings.Repeat("-", width-min(done, width)),
			p.have*100/p.total, mb(p.have), mb(p.total), mb(int64(rate)))
		return
	}
	fmt.Fprintf(p.w, "\r%s, %s/s ", mb(p.have), mb(int64(rate)))
}

func (p *progress) done() {
	if p.tty {
		p.draw()
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintf(p.w, "downloaded %s in %s\n", mb(p.have), time.Since(p.start).Round(time.Millisecond))
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
