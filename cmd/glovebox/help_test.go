package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/client"
)

// TestEveryCommandAnswersHelp runs --help and -h of every command and of every group of commands: each
// exits 0 with the command's usage line, and none is an unknown command.
func TestEveryCommandAnswersHelp(t *testing.T) {
	clearEnv(t)
	groups := map[string]bool{}
	for _, c := range commands {
		for _, h := range []string{"--help", "-h"} {
			args := append(strings.Fields(c.name), h)
			code, out, errOut := runCLI(t, args...)
			if code != 0 || !strings.Contains(out+errOut, "usage: glovebox "+c.name+" ") {
				t.Errorf("glovebox %s: exit %d, want 0 and %q\n%s%s", strings.Join(args, " "), code, "usage: glovebox "+c.name, out, errOut)
			}
		}
		if g, _, ok := strings.Cut(c.name, " "); ok {
			groups[g] = true
		}
	}
	for g := range groups {
		code, out, errOut := runCLI(t, g, "--help")
		if code != 0 || strings.Contains(errOut, "unknown command") || !strings.Contains(out, "glovebox "+g+" ") {
			t.Errorf("glovebox %s --help: exit %d, want 0 and the group's commands\n%s%s", g, code, out, errOut)
		}
	}
	if code, out, _ := runCLI(t, "--help"); code != 0 || !strings.Contains(out, "glovebox vehicle register") {
		t.Errorf("glovebox --help: exit %d\n%s", code, out)
	}
}

func TestAMistypedCommandGetsASuggestion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"verfy", "http://x"}, `unknown command "verfy"; did you mean "verify"?`},
		{[]string{"vehicle", "regster"}, `unknown command "vehicle regster"; did you mean "vehicle register"?`},
		{[]string{"vehicel", "register"}, `did you mean "vehicle register"?`},
		{[]string{"keys", "new"}, `did you mean "key new"?`},
		{[]string{"tokn"}, `did you mean "token"?`},
		{[]string{"frobnicate"}, "unknown command \"frobnicate\"\n"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("glovebox %s: exit %d, want 2 and %q\n%s", strings.Join(tc.args, " "), code, tc.want, errOut)
		}
	}
}

func TestABadFlagValuePrintsTheUsageOnce(t *testing.T) {
	clearEnv(t)
	code, out, errOut := runCLI(t, "vehicle", "transfer", "--vehicle", "1", "--to", "0x…")
	if code != 2 || strings.Count(out+errOut, "usage: glovebox vehicle transfer") != 1 || !strings.Contains(errOut, `invalid value "0x…" for flag -to`) {
		t.Errorf("exit %d, want 2 with the error and one usage line\n%s%s", code, out, errOut)
	}
}

// TestTokenCommand signs in with a key file and uses the printed token as curl would, then shows the
// vehicle with RFC 3339 instants.
func TestTokenCommand(t *testing.T) {
	clearEnv(t)
	srv := startNode(t)
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("a long passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "owner.json")
	if code, _, errOut := runCLI(t, "key", "new", "--out", key, "--passphrase-file", pass, "--scrypt", "light"); code != 0 {
		t.Fatal(errOut)
	}
	if code, out, errOut := runCLI(t, "vehicle", "register", "--node", srv.URL, "--key", key, "--passphrase-file", pass,
		"--make", "Volvo", "--model", "XC40", "--year", "2023", "--quiet"); code != 0 || out != "1\n" {
		t.Fatalf("vehicle register --quiet: exit %d, printed %q, want the id alone\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "vehicle", "burn", "--node", srv.URL, "--key", key, "--passphrase-file", pass,
		"--vehicle", "7", "--quiet"); code != 1 || out != "" || !strings.Contains(errOut, "refused: unknown_vehicle") {
		t.Fatalf("vehicle burn --quiet of no vehicle: exit %d, printed %q\n%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "token", "--node", srv.URL, "--key", key, "--passphrase-file", pass)
	if code != 0 || strings.Count(out, "\n") != 1 || strings.Count(out, ".") != 2 {
		t.Fatalf("token: exit %d, want one JWT on one line\n%s%s", code, out, errOut)
	}
	ans, err := client.New(srv.URL).GraphQL(t.Context(), strings.TrimSpace(out), `{ vehicles(first: 5) { totalCount nodes { tokenId } } }`, nil)
	if err != nil || len(ans.Errors) != 0 || string(ans.Data) != `{"vehicles":{"totalCount":1,"nodes":[{"tokenId":1}]}}` {
		t.Errorf("GraphQL with the token: %s %+v, %v", ans.Data, ans.Errors, err)
	}
	if code, _, errOut := runCLI(t, "token", "--node", srv.URL, "--key", key, "--passphrase-file", filepath.Join(dir, "none")); code != 1 ||
		!strings.Contains(errOut, "couldn't read the passphrase file") {
		t.Errorf("token without the passphrase: exit %d\n%s", code, errOut)
	}

	code, out, errOut = runCLI(t, "vehicle", "show", "--node", srv.URL, "1")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("vehicle show: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := time.Parse(time.RFC3339, v["ownedSince"].(string)); err != nil || v["registeredEntry"] != 0.0 {
		t.Errorf("vehicle show: ownedSince %v (%v), registeredEntry %v; want RFC 3339 and entry 0", v["ownedSince"], err, v["registeredEntry"])
	}
}

func TestInstantIsRFC3339InUTC(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want string
	}{
		{0, "1970-01-01T00:00:00Z"},
		{1764936000000, "2025-12-05T12:00:00Z"},
		{1764936000250, "2025-12-05T12:00:00.25Z"},
	} {
		if got := instant(tc.ms); got != tc.want {
			t.Errorf("instant(%d) = %s, want %s", tc.ms, got, tc.want)
		}
	}
}

// TestAPrivateKeyGivenAsAKeyFileIsNotPrinted: --key and GLOVEBOX_KEY are paths; a private key put there by
// mistake must not come back in an error message.
func TestAPrivateKeyGivenAsAKeyFileIsNotPrinted(t *testing.T) {
	clearEnv(t)
	const secret = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
	for _, args := range [][]string{
		{"vehicle", "register", "--make", "A", "--model", "B", "--year", "2020", "--key", "0x" + secret},
		{"token", "--key", secret},
		{"key", "show", secret},
	} {
		code, out, errOut := runCLI(t, args...)
		if code != 1 || strings.Contains(out+errOut, secret[8:40]) || !strings.Contains(errOut, "couldn't read the key file") {
			t.Errorf("glovebox %s: exit %d, want 1 and no key in\n%s%s", args[0], code, out, errOut)
		}
	}
	t.Setenv("GLOVEBOX_KEY", secret)
	code, out, errOut := runCLI(t, "revoke", "--vehicle", "1", "--app", "0x0000000000000000000000000000000000000001")
	if code != 1 || strings.Contains(out+errOut, secret[8:40]) {
		t.Errorf("GLOVEBOX_KEY holding a private key: exit %d\n%s%s", code, out, errOut)
	}
	for _, args := range [][]string{{"revoke", "--help"}, {"token", "--bad-flag"}, {"device", "pair-sign", "--vehicle", "x"}} {
		if _, out, errOut := runCLI(t, args...); strings.Contains(out+errOut, secret[8:40]) {
			t.Errorf("glovebox %s printed GLOVEBOX_KEY:\n%s%s", strings.Join(args, " "), out, errOut)
		}
	}
}

// TestReindexNamesAMissingStore runs reindex on a directory that holds no node's data: it says so and
// creates nothing.
func TestReindexNamesAMissingStore(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	code, _, errOut := runCLI(t, "reindex", "--data", dir)
	if code != 1 || !strings.Contains(errOut, "no telemetry store at "+filepath.Join(dir, "telemetry.db")) {
		t.Errorf("exit %d, want 1 and the missing store named\n%s", code, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("reindex created %d files in an empty directory", len(entries))
	}
}
