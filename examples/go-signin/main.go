// Command go-signin signs in to a Glovebox node with an Ethereum key and reads a vehicle's latest signals
// over GraphQL, printing the JSON answer.
//
// GLOVEBOX_KEY is the path of a key file (Web3 Secret Storage v3, as `glovebox key new` writes it), as
// for the glovebox command; its passphrase is read from the file GLOVEBOX_PASSPHRASE_FILE, or asked on the
// terminal. Against the README's quick start node (`./glovebox serve --demo`), the owner of vehicle 1 is
// glovebox-data/demo-keys/owner.json, passphrase "glovebox demo":
//
//	GLOVEBOX_KEY=glovebox-data/demo-keys/owner.json go run ./examples/go-signin --vehicle 1
//
// The flow is the one in docs/graphql.md: GET /v1/auth/challenge, personal_sign of the message as it
// is, POST /oauth/token, then POST /graphql with "Authorization: Bearer <token>". It imports nothing of
// this module: any Go program can sign in this way.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/term"
)

const query = `query Latest($id: Int!) {
  signalsLatest(tokenId: $id) {
    lastSeen
    speed { timestamp value }
    powertrainTransmissionTravelledDistance { timestamp value }
    currentLocationApproximateCoordinates { timestamp value { latitude longitude } }
  }
}`

func main() {
	node := flag.String("node", envOr("GLOVEBOX_NODE", "http://127.0.0.1:8080"), "the node's base URL (env GLOVEBOX_NODE)")
	vehicle := flag.Int("vehicle", 1, "the vehicle's tokenId")
	flag.Parse()
	if err := run(strings.TrimRight(*node, "/"), *vehicle); err != nil {
		fmt.Fprintln(os.Stderr, "go-signin:", err)
		os.Exit(1)
	}
}

func run(node string, vehicle int) error {
	key, err := loadKey()
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	token, err := signIn(hc, node, key)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"query": query, "variables": map[string]any{"id": vehicle}})
	req, _ := http.NewRequest("POST", node+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if json.Indent(&out, answer, "", "  ") != nil {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, answer)
	}
	fmt.Println(out.String())
	return nil
}

// loadKey decrypts the key file named by GLOVEBOX_KEY (Web3 Secret Storage v3, as `glovebox key new`
// writes it) with the passphrase in the file GLOVEBOX_PASSPHRASE_FILE, or asked on the terminal.
func loadKey() (*ecdsa.PrivateKey, error) {
	f := os.Getenv("GLOVEBOX_KEY")
	if f == "" {
		return nil, errors.New("set GLOVEBOX_KEY to the path of a key file (e.g. glovebox-data/demo-keys/owner.json)")
	}
	j, err := os.ReadFile(f)
	if err != nil {
		// Not repeating the name: should someone have put a private key in GLOVEBOX_KEY, it is not printed.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("couldn't read the key file named by GLOVEBOX_KEY (a path): %w", err)
	}
	var pass string
	if pf := os.Getenv("GLOVEBOX_PASSPHRASE_FILE"); pf != "" {
		b, err := os.ReadFile(pf)
		if err != nil {
			return nil, fmt.Errorf("couldn't read the passphrase file: %w", err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	} else {
		if !term.IsTerminal(int(os.Stdin.Fd())) {
			return nil, errors.New("set GLOVEBOX_PASSPHRASE_FILE (standard input is not a terminal to ask on)")
		}
		fmt.Fprintf(os.Stderr, "Passphrase for %s: ", f)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, err
		}
		pass = string(b)
	}
	k, err := keystore.DecryptKey(j, pass)
	if err != nil {
		return nil, fmt.Errorf("couldn't decrypt %s: %w", f, err)
	}
	return k.PrivateKey, nil
}

// signIn runs the sign-in flow and returns an access token.
func signIn(hc *http.Client, node string, key *ecdsa.PrivateKey) (string, error) {
	addr := crypto.PubkeyToAddress(key.PublicKey)
	resp, err := hc.Get(node + "/v1/auth/challenge?address=" + addr.Hex())
	if err != nil {
		return "", err
	}
	var ch struct {
		Message string `json:"message"`
	}
	err = decode(resp, &ch)
	if err != nil {
		return "", fmt.Errorf("challenge: %w", err)
	}
	// personal_sign (EIP-191) of the message exactly as received; v is 27 or 28 as wallets give it.
	sig, err := crypto.Sign(accounts.TextHash([]byte(ch.Message)), key)
	if err != nil {
		return "", err
	}
	sig[64] += 27
	resp, err = hc.PostForm(node+"/oauth/token", url.Values{
		"grant_type": {"urn:glovebox:params:oauth:grant-type:siwe"},
		"message":    {ch.Message},
		"signature":  {hexutil.Encode(sig)},
	})
	if err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := decode(resp, &tok); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	fmt.Fprintf(os.Stderr, "signed in as %s; the token is valid for %d s\n", addr.Hex(), tok.ExpiresIn)
	return tok.AccessToken, nil
}

// decode reads a JSON answer into v, or returns the error answer as an error.
func decode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, v)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
