package main

import (
	"bytes"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/tlog"
	"github.com/glovebox/glovebox/verify/verifytest"
)

// verifyCLI runs `glovebox args…` and returns its exit code, stdout and stderr.
func verifyCLI(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var buf bytes.Buffer
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	oldOut, oldErr := stdout, os.Stderr
	stdout, os.Stderr = &buf, f
	code = run(t.Context(), args)
	stdout, os.Stderr = oldOut, oldErr
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	eb, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return code, buf.String(), string(eb)
}

// checkpointSize opens the checkpoint kept in the state directory for the node's origin.
func checkpointSize(t *testing.T, dir string, n *verifytest.Node) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, verifyCheckpointsDir, url.QueryEscape(n.Log.Origin())))
	if err != nil {
		t.Fatalf("no checkpoint kept: %v", err)
	}
	v, err := note.NewVerifier(n.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	size, _, err := tlog.OpenCheckpoint(b, n.Log.Origin(), v)
	if err != nil {
		t.Fatalf("the kept checkpoint does not verify: %v", err)
	}
	return size
}

func TestVerifyCommandTrustsTheKeyOnFirstUse(t *testing.T) {
	n := verifytest.Start(t, t.TempDir())
	p := n.Populate(t, 4)
	dir := t.TempDir()

	code, out, errOut := verifyCLI(t, "verify", "--state-dir", dir, n.URL)
	if code != 0 || !strings.HasPrefix(out, "ok: "+n.Log.Origin()+" ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("first run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "trusting key "+n.LogKey+" of "+n.URL+" on first use") {
		t.Errorf("first run does not say it trusts the key: %q", errOut)
	}
	kept, err := os.ReadFile(filepath.Join(dir, verifyKeysDir, url.QueryEscape(n.URL)))
	if err != nil || strings.TrimSpace(string(kept)) != n.LogKey {
		t.Errorf("kept key %q (%v), want %q", kept, err, n.LogKey)
	}
	if size := checkpointSize(t, dir, n); size != p.Entries {
		t.Errorf("kept checkpoint of %d entries, want %d", size, p.Entries)
	}

	n.RegisterVehicles(t, p.Owner, 3)
	code, out, errOut = verifyCLI(t, "verify", "--state-dir", dir, n.URL+"/")
	if code != 0 || !strings.HasPrefix(out, "ok: ") || strings.Contains(errOut, "trusting") {
		t.Fatalf("second run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if size := checkpointSize(t, dir, n); size != p.Entries+3 {
		t.Errorf("kept checkpoint of %d entries after the second run, want %d", size, p.Entries+3)
	}
}

func TestVerifyCommandUsesGLOVEBOX_CONFIG_DIR(t *testing.T) {
	n := verifytest.Start(t, t.TempDir())
	n.RegisterVehicles(t, verifytest.NewAccount(t), 2)
	dir := t.TempDir()
	t.Setenv("GLOVEBOX_CONFIG_DIR", dir)
	if code, out, errOut := verifyCLI(t, "verify", n.URL); code != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if size := checkpointSize(t, dir, n); size != 2 {
		t.Errorf("kept checkpoint of %d entries, want 2", size)
	}
}

// TestVerifyCommandRefusesAChangedKey plays a node whose key changes behind the same URL.
func TestVerifyCommandRefusesAChangedKey(t *testing.T) {
	a := verifytest.Start(t, t.TempDir())
	a.RegisterVehicles(t, verifytest.NewAccount(t), 2)
	b := verifytest.Start(t, t.TempDir())
	b.RegisterVehicles(t, verifytest.NewAccount(t), 2)
	proxy := verifytest.NewProxy(t, a.URL)
	dir := t.TempDir()

	if code, out, errOut := verifyCLI(t, "verify", "--state-dir", dir, proxy.URL); code != 0 {
		t.Fatalf("first run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	proxy.SetUpstream(b.URL)
	code, out, errOut := verifyCLI(t, "verify", "--state-dir", dir, proxy.URL)
	if code != 1 || out != "" || !strings.Contains(errOut, "now presents log key "+b.LogKey) || !strings.Contains(errOut, "trusted on first use") {
		t.Errorf("after the key changed: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The owner of the state directory can vouch for the new key explicitly.
	if code, out, errOut := verifyCLI(t, "verify", "--state-dir", dir, "--key", b.LogKey, proxy.URL); code != 0 {
		t.Errorf("with --key: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestVerifyCommandKeyFlag(t *testing.T) {
	n := verifytest.Start(t, t.TempDir())
	n.RegisterVehicles(t, verifytest.NewAccount(t), 2)
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "log.pub")
	if err := os.WriteFile(keyFile, []byte(n.LogKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{n.LogKey, "@" + keyFile} {
		if code, out, errOut := verifyCLI(t, "verify", "--state-dir", dir, "--key", key, n.URL); code != 0 || strings.Contains(errOut, "trusting") {
			t.Errorf("--key %s: exit %d, stdout %q, stderr %q", key, code, out, errOut)
		}
	}
	_, otherKey, err := tlog.GenerateKey(n.Log.Origin())
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := verifyCLI(t, "verify", "--state-dir", dir, "--key", otherKey, n.URL); code != 1 || !strings.Contains(errOut, "verify: FAILED at checkpoint: ") {
		t.Errorf("--key of another log: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, _ := verifyCLI(t, "verify", "--state-dir", dir); code != 2 {
		t.Errorf("no URL: exit %d, want 2", code)
	}
}

// TestVerifyCommandDetectsAFork keeps the checkpoint of one node, then meets another node with the same
// key and origin but a different log behind the same URL.
func TestVerifyCommandDetectsAFork(t *testing.T) {
	a := verifytest.Start(t, t.TempDir())
	a.RegisterVehicles(t, verifytest.NewAccount(t), 5)
	dirB := t.TempDir()
	for _, f := range []string{"log.key", "log.pub"} {
		data, err := os.ReadFile(filepath.Join(a.DataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := verifytest.Start(t, dirB)
	b.RegisterVehicles(t, verifytest.NewAccount(t), 7)
	proxy := verifytest.NewProxy(t, a.URL)
	dir := t.TempDir()

	if code, out, errOut := verifyCLI(t, "verify", "--state-dir", dir, proxy.URL); code != 0 {
		t.Fatalf("node A: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	proxy.SetUpstream(b.URL)
	code, out, errOut := verifyCLI(t, "verify", "--state-dir", dir, proxy.URL)
	if code != 1 || !strings.Contains(errOut, "verify: FAILED at consistency: fork") {
		t.Errorf("node B after A: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if size := checkpointSize(t, dir, a); size != 5 {
		t.Errorf("after the failure the kept checkpoint has %d entries, want A's 5", size)
	}
}

// TestVerifyCommandFailsAtTheBadEntry serves a log written directly with package tlog whose entry 3 is
// signed by the wrong key.
func TestVerifyCommandFailsAtTheBadEntry(t *testing.T) {
	r := verifytest.StartRawLog(t, t.TempDir(), "glovebox.test/cli")
	owner, mallory := verifytest.NewAccount(t), verifytest.NewAccount(t)
	at := time.Now()
	var entries []*ledger.Entry
	for i := range 6 {
		signer := owner
		if i == 3 {
			signer = mallory
		}
		entries = append(entries, r.Entry(t, at, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address,
			Make: "Citroën", Model: "Ami", Year: 2022}, signer))
	}
	r.Append(t, entries...)

	code, out, errOut := verifyCLI(t, "verify", "--state-dir", t.TempDir(), r.URL)
	if code != 1 || out != "" || !strings.Contains(errOut, "verify: FAILED at entry 3: wrong_signer: ") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestVerifyCommandChecksAMirror(t *testing.T) {
	n := verifytest.Start(t, t.TempDir())
	n.Populate(t, 10)
	dir := filepath.Join(t.TempDir(), "mirror")
	code, out, errOut := verifyCLI(t, "mirror", n.URL, dir)
	if code != 0 || !strings.HasPrefix(out, "mirrored "+n.Log.Origin()+": ") {
		t.Fatalf("mirror: exit %d, %q, %q", code, out, errOut)
	}

	code, out, errOut = verifyCLI(t, "verify", "--mirror", dir, "--key", n.LogKey)
	if code != 0 || !strings.HasPrefix(out, "ok: "+n.Log.Origin()+" ") || errOut != "" {
		t.Fatalf("verify --mirror: exit %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = verifyCLI(t, "verify", "-mirror="+dir)
	if code != 0 || !strings.HasPrefix(out, "ok: ") || !strings.Contains(errOut, "using the key the mirror kept from the node") {
		t.Fatalf("verify --mirror without --key: exit %d, %q, %q", code, out, errOut)
	}

	tile := filepath.Join(dir, "tile", "0", "000.p", "1")
	entries, err := os.ReadDir(filepath.Dir(tile))
	if err != nil || len(entries) != 1 {
		t.Fatalf("the mirror's partial hash tiles: %v, %v", entries, err)
	}
	tile = filepath.Join(filepath.Dir(tile), entries[0].Name())
	b, err := os.ReadFile(tile)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if err := os.WriteFile(tile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = verifyCLI(t, "verify", "--mirror", dir, "--key", n.LogKey)
	if want := "verify: FAILED at tiles: hash tile tile/0/000.p/" + entries[0].Name() + " does not match the entries"; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("verify --mirror of a flipped tile: exit %d, %q; want 1 and %q", code, errOut, want)
	}

	if code, _, _ := verifyCLI(t, "verify", "--previous", dir, n.URL); code != 2 {
		t.Errorf("verify --previous without --mirror: exit %d, want 2", code)
	}
}
