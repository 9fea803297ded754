package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/credential"
)

const (
	credentialIssueArgs  = "--vehicle N --key FILE --type odometer|mileage|movement|vin [--at TIME | --from TIME --to TIME] --out FILE [--node URL]"
	credentialVerifyArgs = "[--log-key VKEY|@FILE] [--state-dir DIR] FILE"
)

func init() {
	register(command{name: "credential issue", args: credentialIssueArgs,
		short: "ask the node for a verifiable credential about a vehicle and save it", run: runCredentialIssue})
	register(command{name: "credential verify", args: credentialVerifyArgs,
		short: "check a credential offline against the log key and print its claims", run: runCredentialVerify})
}

func runCredentialIssue(ctx context.Context, args []string) error {
	fl := newCommandFlags("credential issue", credentialIssueArgs,
		`Signs in with the key in a keystore file (the vehicle's owner, or an app whose grant holds
credentials) and asks the node for an SD-JWT VC about the vehicle (docs/credentials.md):

  odometer  the last odometer reading at or before --at (default now)
  mileage   the distance driven between --from and --to
  movement  that the car moved between --from and --to (two H3 resolution-8 cells, no coordinates)
  vin       the VIN the paired device reported

Times are RFC 3339 (2026-03-01T00:00:00Z). The credential is written to --out (mode 0600) as the node
sent it, with every disclosure the caller may have; hand it on as it is, or check it with
'glovebox credential verify'. A refusal prints the node's error code and exits 1.`)
	node := nodeFlag(fl)
	key := keyFileFlag(fl, "keystore `FILE` of the account to sign in as (required; env GLOVEBOX_KEY)")
	passFile := fl.String("passphrase-file", envDefault("GLOVEBOX_PASSPHRASE_FILE", ""), "`FILE` holding the passphrase of --key (env GLOVEBOX_PASSPHRASE_FILE; default: prompt)")
	var vehicle idFlag
	fl.Var(&vehicle, "vehicle", "the vehicle's `id` (required)")
	typ := fl.String("type", "", "the credential's `type`: odometer, mileage, movement or vin (required)")
	at := fl.String("at", "", "odometer: the reading at or before this RFC 3339 `time`")
	from := fl.String("from", "", "mileage, movement: the period's start, an RFC 3339 `time`")
	to := fl.String("to", "", "mileage, movement: the period's end, an RFC 3339 `time`")
	holder := fl.String("holder-key", "", "`FILE` holding the holder's public JWK, for key binding (cnf)")
	out := fl.String("out", "", "`FILE` to write the credential to (required; - for standard output)")
	if _, err := parseArgs(fl, args, 0); err != nil {
		return err
	}
	if err := required(fl, "vehicle", "type", "out", "key"); err != nil {
		return err
	}
	for _, t := range []struct{ name, v string }{{"at", *at}, {"from", *from}, {"to", *to}} {
		if _, err := time.Parse(time.RFC3339Nano, t.v); t.v != "" && err != nil {
			return usageError(fl, "--%s %q is not an RFC 3339 time (2026-03-01T00:00:00Z)", t.name, t.v)
		}
	}
	req := client.CredentialRequest{Type: *typ, At: *at, From: *from, To: *to}
	if *holder != "" {
		b, err := os.ReadFile(*holder)
		if err != nil {
			return fmt.Errorf("couldn't read --holder-key: %w", err)
		}
		req.HolderKey = b
	}
	cl, tok, err := signIn(ctx, *node, *key, *passFile)
	if err != nil {
		return err
	}
	issued, err := cl.IssueCredential(ctx, tok.AccessToken, vehicle.id, req)
	if err != nil {
		return nodeError(cl, err)
	}
	if *out == "-" {
		_, err = fmt.Fprintln(stdout, issued.SDJWT)
		return err
	}
	if err := os.WriteFile(*out, []byte(issued.SDJWT+"\n"), 0o600); err != nil {
		return fmt.Errorf("couldn't write the credential: %w", err)
	}
	fmt.Fprintf(stdout, "wrote a %s credential about vehicle %d to %s\n", *typ, vehicle.id, *out)
	if len(issued.Withheld) > 0 {
		fmt.Fprintf(stdout, "withheld: %s (the grant does not cover %s)\n", strings.Join(issued.Withheld, ", "),
			strings.Join(issued.WithheldSignals, ", "))
	}
	return nil
}

func runCredentialVerify(ctx context.Context, args []string) error {
	fl := newCommandFlags("credential verify", credentialVerifyArgs,
		`Checks a credential (an SD-JWT VC from 'glovebox credential issue' or a node, with any subset of its
disclosures, or a presentation with a key-binding JWT) offline, against the log's note verifier key
alone, and prints its disclosed claims. The checks, in order: format, signature, claims, expiry,
disclosures, key_binding, and when the evidence is disclosed: checkpoint, pairing, record, claim
(docs/credentials.md says what each checks).

The key is --log-key, or else the key 'glovebox verify' trusted on first use for the node the credential
names as its issuer (kept in the state directory). Nothing is fetched: the check works offline.
Exits 0 when every check passes; prints "credential verify: FAILED at CHECK: why" and exits 1 otherwise.
FILE - reads standard input.`)
	keyFlag := fl.String("log-key", "", "the log's note verifier key, or @FILE holding it (default: the key trusted for the issuer)")
	stateDir := fl.String("state-dir", "", "where 'glovebox verify' keeps trusted keys (env GLOVEBOX_CONFIG_DIR; default the user config directory's glovebox/)")
	pos, err := parseArgs(fl, args, 1)
	if err != nil {
		return err
	}
	var raw []byte
	if pos[0] == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return fmt.Errorf("couldn't read the credential: %w", err)
	}
	sdjwt := strings.TrimSpace(string(raw))
	key, err := credentialLogKey(sdjwt, *keyFlag, *stateDir)
	if err != nil {
		return err
	}
	c, err := credential.Verify(sdjwt, key, time.Now())
	var f *credential.Failure
	switch {
	case errors.As(err, &f):
		return exitError{1, fmt.Errorf("credential verify: FAILED at %s: %s", f.Check, f.Msg)}
	case err != nil:
		return exitError{1, fmt.Errorf("credential verify: FAILED: %w", err)}
	}
	_, err = io.WriteString(stdout, c.String())
	return err
}

// credentialLogKey returns the log key to verify a credential with: --log-key (a key, or @FILE), else the
// key `glovebox verify` trusted on first use for the credential's issuer.
func credentialLogKey(sdjwt, keyFlag, stateDir string) (string, error) {
	if keyFlag != "" {
		key := keyFlag
		if name, ok := strings.CutPrefix(keyFlag, "@"); ok {
			b, err := os.ReadFile(name)
			if err != nil {
				return "", fmt.Errorf("couldn't read --log-key: %w", err)
			}
			key = strings.TrimSpace(string(b))
		}
		if _, err := credential.ParseLogKey(key); err != nil {
			return "", fmt.Errorf("bad --log-key: %w", err)
		}
		return key, nil
	}
	iss, err := credential.PeekIssuer(sdjwt)
	if err != nil {
		return "", exitError{1, fmt.Errorf("credential verify: FAILED at %s: %v", credential.CheckFormat, err)}
	}
	dir, err := verifyStateDir(stateDir)
	if err != nil {
		return "", err
	}
	file := filepath.Join(dir, verifyKeysDir, verifyFileName(strings.TrimRight(iss, "/")))
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no --log-key, and no key trusted for the issuer %s (run 'glovebox verify %s' once, or pass --log-key)", iss, iss)
	}
	if err != nil {
		return "", fmt.Errorf("couldn't read the trusted key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
