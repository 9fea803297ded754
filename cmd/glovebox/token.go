package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/glovebox/glovebox/client"
)

func init() {
	register(command{name: "token", args: "--key FILE [--passphrase-file FILE] [--node URL] [--json]",
		short: "sign in with a key file and print a bearer token for /graphql", run: runToken})
}

func runToken(ctx context.Context, args []string) error {
	fl := newCommandFlags("token", "--key FILE [--passphrase-file FILE] [--node URL] [--json]",
		`Signs in to the node with the key in a keystore file (Sign-In with Ethereum: the node's challenge is
signed here with personal_sign, the key never leaves this process) and prints the bearer token the node
gives for it, alone on one line, so that a shell can use it as it is:

  curl -s -H "Authorization: Bearer $(glovebox token --key owner.json)" \
      -H 'Content-Type: application/json' -d '{"query":"{ vehicles(first: 5) { totalCount } }"}' \
      http://127.0.0.1:8080/graphql

The token says who signed in and nothing else: every read is decided by the ledger when it is made.
--json prints {"accessToken","expiresAt"} instead (expiresAt an RFC 3339 instant).`)
	node := nodeFlag(fl)
	key := keyFileFlag(fl, "keystore `FILE` of the account to sign in as (required; env GLOVEBOX_KEY)")
	passFile := fl.String("passphrase-file", envDefault("GLOVEBOX_PASSPHRASE_FILE", ""), "`FILE` holding the passphrase of --key (env GLOVEBOX_PASSPHRASE_FILE; default: prompt)")
	asJSON := fl.Bool("json", false, "print the token and its expiry as JSON")
	if _, err := parseArgs(fl, args, 0); err != nil {
		return err
	}
	if err := required(fl, "key"); err != nil {
		return err
	}
	_, tok, err := signIn(ctx, *node, *key, *passFile)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(struct {
			AccessToken string `json:"accessToken"`
			ExpiresAt   string `json:"expiresAt"`
		}{tok.AccessToken, tok.Expires.UTC().Format(time.RFC3339)})
	}
	_, err = fmt.Fprintln(stdout, tok.AccessToken)
	return err
}

// signIn reads the key file (asking for its passphrase, or reading passFile), signs in at node with
// Sign-In with Ethereum and returns the client and the token; a refusal names the node's error code.
func signIn(ctx context.Context, node, keyFile, passFile string) (*client.Client, *client.Token, error) {
	s, err := loadSigner(keyFile, passFile, "key", "passphrase-file")
	if err != nil {
		return nil, nil, err
	}
	cl := client.New(node)
	tok, err := cl.SignIn(ctx, s.key)
	var te *client.TokenError
	switch {
	case errors.As(err, &te):
		return nil, nil, fmt.Errorf("the node refused the sign-in: %s: %s", te.Code, te.Description)
	case err != nil:
		return nil, nil, nodeError(cl, err)
	}
	return cl, tok, nil
}
