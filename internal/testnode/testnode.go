// Package testnode starts real Glovebox nodes for tests: a node on a temporary data directory, its
// sequencer running, its API served over loopback HTTP, plus keys and signing helpers.
//
// It imports node and what a node serves (api, web, webhook, client, ledger, telemetry); only tests and
// test helpers may import it, never a package of the product.
package testnode

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/web"
	"github.com/glovebox/glovebox/webhook"
)

// Node is a running node for one test.
type Node struct {
	*node.Node
	Dir    string
	URL    string
	Client *client.Client
	Domain *ledger.Domain
	stop   func()
}

// Options configures Start; the zero value is fine.
type Options struct {
	Dir string           // data directory; default a new t.TempDir()
	Now func() time.Time // the sequencer's clock
	// Origin of a new log; default a random "glovebox.local/…", so that two test nodes are two logs.
	Origin string
	// RateLimit, if set, limits callers of the app-facing API.
	RateLimit *api.RateLimiter
	// Budgets, if set, limits each client address (api.Config.Budgets).
	Budgets *api.Budgets
	// Web configures the web app (map tiles).
	Web web.Options
	// Limits, if set, replaces api.DefaultServerLimits for the HTTP server.
	Limits *api.ServerLimits
	// Webhooks configures the webhook engine (tests allow private targets and plain HTTP here).
	Webhooks webhook.Options
}

// Start opens a node and serves it until the test ends.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewUnstartedServer(nil) // its URL is the node's public URL
	n, err := node.Open(context.Background(), node.Config{DataDir: opts.Dir, Now: opts.Now, Logger: quiet, Origin: opts.Origin,
		PublicURL: "http://" + srv.Listener.Addr().String(), RateLimit: opts.RateLimit, Budgets: opts.Budgets, Web: opts.Web, Webhooks: opts.Webhooks})
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(ctx); err != nil {
			t.Errorf("sequencer: %v", err)
		}
	}()
	limits := api.DefaultServerLimits
	if opts.Limits != nil {
		limits = *opts.Limits
	}
	srv.Config = api.NewHTTPServer(n.API, limits)
	srv.Listener = api.LimitListener(srv.Listener, limits)
	srv.Start()
	tn := &Node{Node: n, Dir: opts.Dir, URL: srv.URL, Client: client.New(srv.URL), Domain: n.Sequencer.Domain()}
	var stopped bool
	tn.stop = func() {
		if stopped {
			return
		}
		stopped = true
		srv.Close()
		cancel()
		<-done
		n.Close()
	}
	t.Cleanup(tn.stop)
	return tn
}

// Stop stops the node (also done at the end of the test), so that its directory can be reopened.
func (n *Node) Stop() { n.stop() }

// Key is an account: a key pair and its address.
type Key struct {
	Key     *ecdsa.PrivateKey
	Address common.Address
}

// NewKey returns a fresh random key.
func NewKey(t testing.TB) Key {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return Key{Key: k, Address: crypto.PubkeyToAddress(k.PublicKey)}
}

// Sign prepares tx (nonce, deadline) and signs it with each key in order.
func (n *Node) Sign(t testing.TB, tx *ledger.Tx, keys ...Key) *ledger.Tx {
	t.Helper()
	client.Prepare(tx, time.Hour)
	for _, k := range keys {
		if err := n.Domain.Sign(tx, k.Key); err != nil {
			t.Fatal(err)
		}
	}
	return tx
}

// Submit signs and submits tx and fails the test unless it is accepted.
func (n *Node) Submit(t testing.TB, tx *ledger.Tx, keys ...Key) *api.Receipt {
	t.Helper()
	rc, err := n.Client.Submit(context.Background(), n.Sign(t, tx, keys...))
	if err != nil {
		t.Fatalf("%s refused: %v", tx.Type, err)
	}
	return rc
}

// Refuse signs and submits tx and fails the test unless the node refuses it with code.
func (n *Node) Refuse(t testing.TB, code string, tx *ledger.Tx, keys ...Key) {
	t.Helper()
	_, err := n.Client.Submit(context.Background(), n.Sign(t, tx, keys...))
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("%s: got %v, want refusal %s", tx.Type, err, code)
	}
}

// Vehicle registers a vehicle owned by owner and returns its id.
func (n *Node) Vehicle(t testing.TB, owner Key) uint64 {
	t.Helper()
	rc := n.Submit(t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Volvo", Model: "XC40", Year: 2023}, owner)
	return rc.Result.VehicleID
}

// PairedDevice registers a device of kind and pairs it to vehicle id owned by owner.
func (n *Node) PairedDevice(t testing.TB, owner Key, id uint64, kind string) Key {
	t.Helper()
	dev := NewKey(t)
	n.Submit(t, &ledger.Tx{Type: ledger.TypeRegisterDevice, Device: dev.Address, Kind: kind}, dev)
	tx := &ledger.Tx{Type: ledger.TypePairDevice, Device: dev.Address}
	tx.VehicleID.SetUint64(id)
	n.Submit(t, tx, owner, dev)
	return dev
}

// App registers an app owned by owner with one redirect URI.
func (n *Node) App(t testing.TB, owner Key) Key {
	t.Helper()
	app := NewKey(t)
	n.Submit(t, &ledger.Tx{Type: ledger.TypeRegisterApp, App: app.Address, Owner: owner.Address, Name: "Test Insurer",
		RedirectURIs: []string{"https://insurer.example/callback"}}, owner, app)
	return app
}

// Grant grants app the permissions on vehicle id until expires (unix seconds).
func (n *Node) Grant(t testing.TB, owner Key, id uint64, app common.Address, expires int64, perms ...string) *api.Receipt {
	t.Helper()
	tx := &ledger.Tx{Type: ledger.TypeGrant, App: app, Permissions: perms, Purpose: "Usage-based insurance quote"}
	tx.VehicleID.SetUint64(id)
	tx.ExpiresAt.SetUint64(uint64(expires))
	return n.Submit(t, tx, owner)
}

// Record builds a telemetry record of dev for vehicle id at t with the given signals (speed and ignition
// when none are given) and signs it with the device key.
func Record(t testing.TB, dev Key, vehicle uint64, id string, at time.Time, signals ...telemetry.EventSignal) telemetry.Submission {
	t.Helper()
	if signals == nil {
		signals = []telemetry.EventSignal{
			{Name: "speed", Timestamp: at, Value: 42.5},
			{Name: "isIgnitionOn", Timestamp: at, Value: true},
		}
	}
	ev, err := telemetry.NewEvent(dev.Address, vehicle, id, at, signals)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := telemetry.Sign(ev, dev.Key)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// SignIn signs k in over HTTP (Sign-In with Ethereum: challenge, personal_sign, token) and returns the
// bearer token.
func (n *Node) SignIn(t testing.TB, k Key) string {
	t.Helper()
	resp, err := http.Get(n.URL + "/v1/auth/challenge?address=" + k.Address.Hex())
	if err != nil {
		t.Fatal(err)
	}
	var ch struct{ Message string }
	err = json.NewDecoder(resp.Body).Decode(&ch)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in challenge: HTTP %d (%v)", resp.StatusCode, err)
	}
	h := ledger.PersonalHash([]byte(ch.Message))
	sig, err := crypto.Sign(h[:], k.Key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	resp, err = http.PostForm(n.URL+"/oauth/token", url.Values{"grant_type": {"urn:glovebox:params:oauth:grant-type:siwe"},
		"message": {ch.Message}, "signature": {"0x" + hex.EncodeToString(sig)}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("sign-in token: HTTP %d (%v)", resp.StatusCode, err)
	}
	return tok.AccessToken
}
