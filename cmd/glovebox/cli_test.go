package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
)

// startNode runs a real node on a temporary data directory and serves its API over HTTP.
func startNode(t *testing.T) *httptest.Server {
	t.Helper()
	n, err := node.Open(t.Context(), node.Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	srv := httptest.NewServer(n.API)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		n.Close()
	})
	return srv
}

// runCLI runs the command line args and returns its exit code, its stdout and its stderr.
func runCLI(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var buf bytes.Buffer
	oldOut, oldErr := stdout, os.Stderr
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	stdout, os.Stderr = &buf, f
	defer func() { stdout, os.Stderr = oldOut, oldErr }()
	code = run(t.Context(), args)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	eb, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return code, buf.String(), string(eb)
}

func clearEnv(t *testing.T) {
	for _, e := range []string{"GLOVEBOX_NODE", "GLOVEBOX_KEY", "GLOVEBOX_PASSPHRASE_FILE"} {
		t.Setenv(e, "")
	}
}

// TestCLIStory walks a vehicle's whole life through the commands against a real node: keys, registration,
// both ways of pairing, an app and its grant, refusals, transfer and burn.
func TestCLIStory(t *testing.T) {
	clearEnv(t)
	srv := startNode(t)
	cl := client.New(srv.URL)
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrong, []byte("Tr0ub4dor&3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := func(name string) string { return filepath.Join(dir, name+".json") }
	vars := map[string]string{"{dir}": dir}
	expand := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, k, v)
		}
		return s
	}
	nodeArgs := []string{"--node", srv.URL}
	with := func(args ...string) []string { return append(args, nodeArgs...) }
	signed := func(keyName string, args ...string) []string {
		return append(with(args...), "--key", key(keyName), "--passphrase-file", pass)
	}
	newKey := func(name string) step {
		return step{name: "key new " + name, args: []string{"key", "new", "--out", key(name), "--passphrase-file", pass, "--scrypt", "light"},
			want: "0x", save: "{" + name + "}"}
	}
	ctx := t.Context()

	steps := []step{
		newKey("owner"), newKey("device"), newKey("device2"), newKey("device3"), newKey("app"), newKey("maker"), newKey("buyer"),
		{name: "the keystore is private and decrypts to its address", args: []string{"key", "show", key("owner")}, want: "{owner}",
			check: func(t *testing.T, out string) {
				fi, err := os.Stat(key("owner"))
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("keystore mode %v, %v; want 0600", fi.Mode(), err)
				}
				b, _ := os.ReadFile(key("owner"))
				k, err := keystore.DecryptKey(b, "correct horse battery staple")
				if err != nil || k.Address.Hex() != strings.TrimSpace(out) {
					t.Errorf("DecryptKey: %v, %v; want address %s", k, err, out)
				}
			}},
		{name: "key new refuses to overwrite", args: []string{"key", "new", "--out", key("owner"), "--passphrase-file", pass, "--scrypt", "light"},
			code: 1, want: "already exists; refusing to overwrite"},
		{name: "a missing flag is named", args: signed("owner", "vehicle", "register", "--model", "Prius", "--year", "2020"),
			code: 2, want: "missing --make"},
		{name: "a bad address is refused at parse time", args: signed("owner", "vehicle", "transfer", "--vehicle", "1", "--to", "0x12"),
			code: 2, want: "not a 0x-prefixed 20-byte hex address"},
		{name: "vehicle register", args: signed("owner", "vehicle", "register", "--make", "Toyota", "--model", "Prius", "--year", "2020"),
			want: "vehicle 1 registered (entry 0)\nleaf hash 0x"},
		{name: "vehicle register --json prints the receipt", args: signed("owner", "vehicle", "register", "--make", "Ford", "--model", "Focus", "--year", "2018", "--json"),
			want: `"inclusionProof"`, check: func(t *testing.T, out string) {
				var rc struct {
					Index  int64
					Result struct{ VehicleID uint64 }
				}
				if err := json.Unmarshal([]byte(out), &rc); err != nil || rc.Index != 1 || rc.Result.VehicleID != 2 {
					t.Errorf("receipt %+v, %v; want entry 1, vehicle 2", rc, err)
				}
			}},
		{name: "device register with a maker", args: append(signed("device", "device", "register", "--kind", "hardware"),
			"--maker-key", key("maker"), "--maker-passphrase-file", pass),
			want: "hardware device {device} registered by maker {maker}", check: func(t *testing.T, out string) {
				d, err := cl.Device(ctx, addr(t, vars["{device}"]))
				if err != nil || d.Maker != vars["{maker}"] || d.Kind != "hardware" {
					t.Errorf("device %+v, %v; want a hardware device by maker %s", d, err, vars["{maker}"])
				}
			}},
		{name: "device register without a maker", args: signed("device2", "device", "register", "--kind", "hardware"),
			want: "hardware device {device2} registered (entry"},
		{name: "another device", args: signed("device3", "device", "register", "--kind", "hardware"), want: "registered"},
		{name: "device pair with both keys", args: append(signed("owner", "device", "pair", "--vehicle", "1"),
			"--device-key", key("device"), "--device-passphrase-file", pass),
			want: "device {device} paired to vehicle 1", check: func(t *testing.T, out string) {
				d, err := cl.Device(ctx, addr(t, vars["{device}"]))
				if err != nil || d.VehicleID != 1 {
					t.Errorf("device %+v, %v; want paired to vehicle 1", d, err)
				}
			}},
		{name: "device pair-sign on the device side", args: signed("device2", "device", "pair-sign", "--vehicle", "2"),
			want: `{"device":"{device2}","vehicleId":"2","nonce":"`, save: "{pairsig}", check: func(t *testing.T, out string) {
				if err := os.WriteFile(filepath.Join(dir, "pairing.json"), []byte(out), 0o600); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "a device signature for another vehicle is refused locally", args: signed("owner", "device", "pair", "--vehicle", "1", "--device-signature", "{pairsig}"),
			code: 1, want: "the device signed a pairing to vehicle 2, not 1"},
		{name: "device pair with the device's signature", args: signed("owner", "device", "pair", "--vehicle", "2", "--device-signature", "@{dir}/pairing.json"),
			want: "device {device2} paired to vehicle 2", check: func(t *testing.T, out string) {
				v, err := cl.Vehicle(ctx, 2)
				if err != nil || len(v.Devices) != 1 || v.Devices[0].Device != vars["{device2}"] {
					t.Errorf("vehicle %+v, %v; want device %s paired", v, err, vars["{device2}"])
				}
			}},
		{name: "the same device signature cannot be used twice", args: signed("owner", "device", "pair", "--vehicle", "2", "--device-signature", "{pairsig}"),
			code: 1, want: "refused: nonce_used: "},
		{name: "a second hardware device is refused", args: append(signed("owner", "device", "pair", "--vehicle", "1"),
			"--device-key", key("device3"), "--device-passphrase-file", pass),
			code: 1, want: "glovebox: refused: kind_taken: "},
		{name: "device unpairs itself", args: signed("device2", "device", "unpair", "--vehicle", "2"),
			want: "device {device2} unpaired from vehicle 2"},
		{name: "device show", args: with("device", "show", "{device}"), want: `"vehicleId": 1`},
		{name: "app register", args: append(signed("owner", "app", "register", "--name", "Fleet Insights",
			"--redirect-uri", "https://app.example/cb", "--redirect-uri", "http://127.0.0.1:9000/cb"),
			"--app-key", key("app"), "--app-passphrase-file", pass),
			want: `app {app} ("Fleet Insights") registered, owned by {owner}`},
		{name: "app update keeps the redirect URIs", args: signed("owner", "app", "update", "--app", "{app}", "--name", "Fleet Insights Pro"),
			want: "updated", check: func(t *testing.T, out string) {
				a, err := cl.App(ctx, addr(t, vars["{app}"]))
				if err != nil || a.Name != "Fleet Insights Pro" || len(a.RedirectURIs) != 2 {
					t.Errorf("app %+v, %v; want the new name and both URIs", a, err)
				}
			}},
		{name: "app show", args: with("app", "show", "{app}"), want: `"name": "Fleet Insights Pro"`},
		{name: "an unknown permission is refused locally", args: signed("owner", "grant", "--vehicle", "1", "--app", "{app}",
			"--permissions", "signals,everything", "--expires", "720h", "--purpose", "Trip reports"),
			code: 2, want: `no permission "everything"`},
		{name: "grant", args: signed("owner", "grant", "--vehicle", "1", "--app", "{app}", "--permissions", "signals,location:approximate",
			"--expires", "720h", "--purpose", "Trip reports", "--terms", "https://app.example/terms"),
			want: "app {app} granted signals,location:approximate on vehicle 1 until "},
		{name: "account show lists the grant", args: with("account", "show", "{owner}"), want: `"purpose": "Trip reports"`,
			check: func(t *testing.T, out string) {
				var acc showAccount
				if err := json.Unmarshal([]byte(out), &acc); err != nil || len(acc.GrantsGiven) != 1 || acc.GrantsGiven[0].App != vars["{app}"] ||
					len(acc.Vehicles) != 2 || len(acc.Apps) != 1 {
					t.Errorf("account %+v, %v; want 2 vehicles, 1 app, 1 grant", acc, err)
				}
				for _, ts := range []string{acc.GrantsGiven[0].GrantedAt, acc.GrantsGiven[0].ExpiresAt} {
					if _, err := time.Parse(time.RFC3339, ts); err != nil {
						t.Errorf("grant time %q is not RFC 3339: %v", ts, err)
					}
				}
			}},
		{name: "revoke", args: signed("owner", "revoke", "--vehicle", "1", "--app", "{app}"),
			want: "grant of app {app} on vehicle 1 revoked"},
		{name: "revoke again", args: signed("owner", "revoke", "--vehicle", "1", "--app", "{app}"),
			code: 1, want: "glovebox: refused: no_grant: "},
		{name: "renounce without a grant", args: signed("app", "renounce", "--vehicle", "1"),
			code: 1, want: "glovebox: refused: no_grant: "},
		{name: "grant until a time", args: signed("owner", "grant", "--vehicle", "2", "--app", "{app}", "--permissions", "raw",
			"--expires", "2099-01-01T00:00:00Z", "--purpose", "Diagnostics"),
			want: "until 2099-01-01T00:00:00Z"},
		{name: "renounce", args: signed("app", "renounce", "--vehicle", "2"),
			want: "app {app} renounced its grant on vehicle 2", check: func(t *testing.T, out string) {
				v, err := cl.Vehicle(ctx, 2)
				if err != nil || len(v.Grants) != 0 {
					t.Errorf("vehicle %+v, %v; want no grant", v, err)
				}
			}},
		{name: "transfer", args: signed("owner", "vehicle", "transfer", "--vehicle", "1", "--to", "{buyer}"),
			want: "vehicle 1 transferred to {buyer}", check: func(t *testing.T, out string) {
				v, err := cl.Vehicle(ctx, 1)
				if err != nil || v.Owner != vars["{buyer}"] {
					t.Errorf("vehicle %+v, %v; want owner %s", v, err, vars["{buyer}"])
				}
			}},
		{name: "a retention over ten years is refused locally", args: signed("buyer", "vehicle", "retention", "--vehicle", "1", "--days", "3651"),
			code: 2, want: "--days must be 0 to 3650"},
		{name: "retention", args: signed("buyer", "vehicle", "retention", "--vehicle", "1", "--days", "30"),
			want: "vehicle 1 keeps its telemetry for 30 days", check: func(t *testing.T, out string) {
				v, err := cl.Vehicle(ctx, 1)
				if err != nil || v.RetentionDays != 30 {
					t.Errorf("vehicle %+v, %v; want a retention of 30 days", v, err)
				}
			}},
		{name: "the former owner can no longer set the retention", args: signed("owner", "vehicle", "retention", "--vehicle", "1", "--days", "0"),
			code: 1, want: "glovebox: refused: not_owner: "},
		{name: "an erasure in the future is refused locally", args: signed("owner", "vehicle", "erase", "--vehicle", "1", "--before", "2999-01-01"),
			code: 2, want: "is in the future"},
		{name: "the former owner erases its period", args: signed("owner", "vehicle", "erase", "--vehicle", "1"),
			want: "erasure of vehicle 1's telemetry before ", check: func(t *testing.T, out string) {
				v, err := cl.Vehicle(ctx, 1)
				if err != nil || len(v.Erasures) != 1 || v.Erasures[0].Account != vars["{owner}"] {
					t.Errorf("vehicle %+v, %v; want one erasure by the former owner", v, err)
				}
			}},
		{name: "an account that never owned it cannot erase", args: signed("app", "vehicle", "erase", "--vehicle", "1", "--before", "1h"),
			code: 1, want: "glovebox: refused: never_owned: "},
		{name: "the old owner can no longer transfer", args: signed("owner", "vehicle", "transfer", "--vehicle", "1", "--to", "{owner}"),
			code: 1, want: "glovebox: refused: not_owner: "},
		{name: "burn", args: signed("buyer", "vehicle", "burn", "--vehicle", "1"), want: "vehicle 1 burned"},
		{name: "vehicle show shows it burned", args: with("vehicle", "show", "1"), want: `"burned": true`},
		{name: "vehicle show of an unknown vehicle", args: with("vehicle", "show", "99"), code: 1, want: "glovebox: unknown_vehicle: no vehicle 99"},
		{name: "a wrong passphrase is a clear error", args: append(with("vehicle", "register", "--make", "Toyota", "--model", "Prius", "--year", "2020"),
			"--key", key("owner"), "--passphrase-file", wrong),
			code: 1, want: "couldn't decrypt " + key("owner") + ": wrong passphrase"},
	}
	if !stdinIsTerminal() {
		steps = append(steps, step{name: "no passphrase and no terminal", args: append(with("vehicle", "burn", "--vehicle", "2"), "--key", key("owner")),
			code: 1, want: "no passphrase: give --passphrase-file"})
	}

	for _, s := range steps {
		args := make([]string, len(s.args))
		for i, a := range s.args {
			args[i] = expand(a)
		}
		code, out, errOut := runCLI(t, args...)
		want := expand(s.want)
		if code != s.code || !strings.Contains(out+errOut, want) {
			t.Fatalf("%s: glovebox %s\nexit %d, want %d; want output containing %q\nstdout:\n%s\nstderr:\n%s",
				s.name, strings.Join(args, " "), code, s.code, want, out, errOut)
		}
		if s.save != "" {
			vars[s.save] = strings.TrimSpace(out)
		}
		if s.check != nil {
			s.check(t, out)
		}
	}
}

// step is one command of a story: its arguments ({name} placeholders are replaced by saved outputs), the
// exit code and an output substring it must produce, where to save its output, and a check of the node's
// state afterwards.
type step struct {
	name  string
	args  []string
	code  int
	want  string
	save  string
	check func(t *testing.T, out string)
}

func addr(t *testing.T, s string) common.Address {
	t.Helper()
	p, err := ledger.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseArgsInterspersed(t *testing.T) {
	fl := newCommandFlags("x", "", "")
	n := fl.String("node", "", "")
	pos, err := parseArgs(fl, []string{"7", "--node", "u"}, 1)
	if err != nil || *n != "u" || len(pos) != 1 || pos[0] != "7" {
		t.Errorf("parseArgs = %v, %v, node %q", pos, err, *n)
	}
}
