package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/tlog"
)

// TestCredentialCommands issues a credential with `credential issue` from a real node's signed records
// and checks it with `credential verify`, with the log key given, with the key `verify` trusted, and
// tampered with.
func TestCredentialCommands(t *testing.T) {
	clearEnv(t)
	n := testnode.Start(t, testnode.Options{})
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ownerFile, cred := filepath.Join(dir, "owner.json"), filepath.Join(dir, "mileage.sdjwt")
	if code, _, errOut := runCLI(t, "key", "new", "--out", ownerFile, "--passphrase-file", pass, "--scrypt", "light"); code != 0 {
		t.Fatal(errOut)
	}
	b, _ := os.ReadFile(ownerFile)
	k, err := keystore.DecryptKey(b, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	owner := testnode.Key{Key: k.PrivateKey, Address: k.Address}
	car := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, car, "hardware")
	at := time.Now().Add(time.Second).Truncate(time.Second)
	var subs []telemetry.Submission
	for i, km := range []float64{8412.25, 8412.5, 8413.75} {
		ts := at.Add(time.Duration(i) * time.Second)
		subs = append(subs, testnode.Record(t, dev, car, "r"+string(rune('0'+i)), ts,
			telemetry.EventSignal{Name: "powertrainTransmissionTravelledDistance", Timestamp: ts, Value: km}))
	}
	if _, err := n.Client.PostEvents(t.Context(), subs); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Telemetry.Index(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := tlog.GenerateKey("other.example/log")
	rfc := func(d time.Duration) string { return at.Add(d).UTC().Format(time.RFC3339) }
	issue := func(args ...string) []string {
		return append([]string{"credential", "issue", "--node", n.URL, "--key", ownerFile, "--passphrase-file", pass,
			"--vehicle", "1"}, args...)
	}
	state := filepath.Join(dir, "state")

	for _, c := range []struct {
		name  string
		args  []string
		code  int
		want  string
		setup func()
	}{
		{name: "issue --help", args: []string{"credential", "issue", "--help"}, want: "usage: glovebox credential issue --vehicle N"},
		{name: "verify --help", args: []string{"credential", "verify", "--help"}, want: "usage: glovebox credential verify"},
		{name: "issue without --out", args: issue("--type", "vin"), code: 2, want: "missing --out"},
		{name: "issue with a time that is not RFC 3339", args: issue("--type", "odometer", "--at", "yesterday", "--out", cred), code: 2,
			want: `--at "yesterday" is not an RFC 3339 time`},
		{name: "issue of an unknown type names the node's code", args: issue("--type", "speeding", "--out", cred), code: 1,
			want: "unknown_credential_type"},
		{name: "issue of a mileage over an inverted period", args: issue("--type", "mileage", "--from", rfc(3*time.Second), "--to", rfc(0), "--out", cred),
			code: 1, want: "inverted_period"},
		{name: "issue of a mileage", args: issue("--type", "mileage", "--from", rfc(0), "--to", rfc(3*time.Second), "--out", cred),
			want: "wrote a mileage credential about vehicle 1 to " + cred},
		{name: "verify with the log key prints the claims", args: []string{"credential", "verify", "--log-key", n.LogKey, cred},
			want: "distance:    1.5 km\n"},
		{name: "verify with the log key checks the evidence", args: []string{"credential", "verify", "--log-key", n.LogKey, cred},
			want: "evidence:    checked: device signatures, pairings in the log, the claim follows from the records"},
		{name: "verify with another log key fails at the signature", args: []string{"credential", "verify", "--log-key", otherKey, cred},
			code: 1, want: "credential verify: FAILED at signature: the credential is signed by key"},
		{name: "verify with no key known for the issuer", args: []string{"credential", "verify", "--state-dir", state, cred},
			code: 1, want: "no --log-key, and no key trusted for the issuer " + n.URL},
		{name: "verify with the key `glovebox verify` trusted", args: []string{"credential", "verify", "--state-dir", state, cred},
			want: "type:        mileage", setup: func() {
				if code, _, errOut := runCLI(t, "verify", "--state-dir", state, n.URL); code != 0 {
					t.Fatal(errOut)
				}
			}},
		{name: "verify of a tampered claim fails at the signature", args: []string{"credential", "verify", "--log-key", n.LogKey, cred + ".bad"},
			code: 1, want: "credential verify: FAILED at signature: the issuer signature does not verify", setup: func() {
				b, _ := os.ReadFile(cred)
				jwt, rest, _ := strings.Cut(string(b), "~")
				parts := strings.Split(jwt, ".")
				parts[2] = parts[2][:10] + map[bool]string{true: "A", false: "B"}[parts[2][10] != 'A'] + parts[2][11:]
				os.WriteFile(cred+".bad", []byte(strings.Join(parts, ".")+"~"+rest), 0o600)
			}},
		{name: "verify of a file that is no credential fails at the format", args: []string{"credential", "verify", "--log-key", n.LogKey, pass},
			code: 1, want: "credential verify: FAILED at format"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			code, out, errOut := runCLI(t, c.args...)
			if code != c.code || !strings.Contains(out+errOut, c.want) {
				t.Fatalf("exit %d, want %d, and %q in:\n%s%s", code, c.code, c.want, out, errOut)
			}
		})
	}
}
