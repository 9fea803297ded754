package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cliUnderTest, set to 1 in the environment, makes this package's test binary run the command line
// (TestMain), so that the README test runs it as ./glovebox.
const cliUnderTest = "GLOVEBOX_CLI_UNDER_TEST"

// readmeBlock returns the first ```sh block after the heading in the README's text.
func readmeBlock(t *testing.T, readme, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no heading %q", heading)
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatalf("README: no sh block under %q", heading)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatalf("README: the sh block under %q does not end", heading)
	}
	return block
}

// TestREADMEQuickStartAndWalkthrough runs the README's quick start and its command-line walkthrough as
// written, in order, in an empty directory, against the node the quick start started. What differs from a
// person's terminal, and only that: `go build -o glovebox ./cmd/glovebox` is replaced by linking this test
// binary (the same main package) as ./glovebox; the node listens on a free port rather than 8080 (through
// GLOVEBOX_HTTP; the walkthrough gets it as GLOVEBOX_NODE, and the README's http://127.0.0.1:8080 is
// rewritten to it), without MQTT
// (GLOVEBOX_MQTT=off); passphrases come from GLOVEBOX_PASSPHRASE_FILE instead of the terminal; verify
// keeps its trusted keys in a temporary GLOVEBOX_CONFIG_DIR.
func TestREADMEQuickStartAndWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a demo node and the walkthrough (about a minute)")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the README's walkthrough uses curl: %v", err)
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	quick := readmeBlock(t, readme, "## Quick start")
	walk := readmeBlock(t, readme, "## Using it from the command line")

	lines := strings.Split(strings.TrimSpace(quick), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "go build -o glovebox ./cmd/glovebox ") || !strings.HasPrefix(lines[1], "./glovebox serve --demo ") {
		t.Fatalf("the quick start is no longer `go build -o glovebox ./cmd/glovebox` then `./glovebox serve --demo`; update this test:\n%s", quick)
	}
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "glovebox")); err != nil {
		t.Fatal(err)
	}
	pass := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), cliUnderTest+"=1", "GLOVEBOX_HTTP=127.0.0.1:0", "GLOVEBOX_MQTT=off", "GLOVEBOX_PASSPHRASE_FILE="+pass,
		"GLOVEBOX_CONFIG_DIR="+t.TempDir(), "GLOVEBOX_NODE=", "GLOVEBOX_KEY=", "GLOVEBOX_DATA=", "GLOVEBOX_DEMO=")

	// The quick start: the node, until it says the demo app reads its cars.
	serve := exec.Command("bash", "-c", "exec "+strings.TrimSpace(strings.SplitN(lines[1], "#", 2)[0]))
	serve.Dir, serve.Env = dir, env
	var serveErr bytes.Buffer
	serve.Stderr = &serveErr
	out, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	defer func() {
		serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			serve.Process.Kill()
			<-done
		}
	}()
	var said strings.Builder
	url := ""
	listening := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)/`)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		said.WriteString(sc.Text() + "\n")
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
		}
		if strings.Contains(sc.Text(), "reads the cars it may read") {
			break
		}
	}
	if url == "" || !strings.Contains(said.String(), "Fleet ready: 25 vehicles") {
		t.Fatalf("serve --demo did not get ready:\n%s\nstderr:\n%s", said.String(), serveErr.String())
	}
	go func() { // keep reading, so that the node never blocks on a full pipe
		for sc.Scan() {
		}
	}()
	for _, want := range []string{"Creating a new node in ./glovebox-data", "Web app: sign in at", "glovebox-data/demo-keys/owner.json", `Demo app "Acme Insurance (demo)"`} {
		if !strings.Contains(said.String(), want) {
			t.Errorf("serve --demo did not say %q:\n%s", want, said.String())
		}
	}

	// The walkthrough, as one script that stops at the first failing command.
	script := strings.ReplaceAll(walk, "http://127.0.0.1:8080", url)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-x", "-c", script)
	sh.Dir, sh.Env = dir, append(env, "GLOVEBOX_HTTP=", "GLOVEBOX_NODE="+url)
	var stdout, stderr bytes.Buffer
	sh.Stdout, sh.Stderr = &stdout, &stderr
	if err := sh.Run(); err != nil {
		t.Fatalf("the README walkthrough failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	got := stdout.String()
	for _, want := range []string{
		"vehicle 26\n",
		"device 0x", // paired
		`("Acme Insurance") registered`,
		"granted signals,location:approximate on vehicle 26 until ",
		`{"data":{"vehicles":{"totalCount":1,"nodes":[{"tokenId":26}]}}}`,
		"on vehicle 26 revoked",
		"vehicle 26 transferred to 0x",
		`"id": 26,`,
		`"ownedSince": "`,
		"entries", // verify's summary
		"mirrored ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the walkthrough did not print %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "ok: "); n != 2 {
		t.Errorf("the walkthrough printed %d verify summaries, want 2 (the node and its mirror):\n%s", n, got)
	}
	if strings.Contains(got, `"grants": [`+"\n") {
		t.Errorf("the transferred vehicle still shows a grant:\n%s", got)
	}
}
