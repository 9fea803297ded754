// Command connect-app is the smallest app that asks a driver for access through a Glovebox node's
// OpenID Provider, with golang.org/x/oauth2 and go-oidc and nothing Glovebox-specific but the issuer URL.
// It registers itself in the node's log (a fresh app key, its redirect URI on --listen), serves a
// "Connect your car" link, and after the driver's consent shows the ID token and each granted car's
// latest speed, read over GraphQL with the access token. See docs/connect.md.
//
// With the README's quick start node running (./glovebox serve --demo):
//
//	go run ./examples/connect-app
//
// then open http://127.0.0.1:9090/, click "Connect your car" and, on the node's consent screen, sign in
// with the demo owner's key file glovebox-data/demo-keys/owner.json, passphrase "glovebox demo". The app
// writes no file and takes no key: its own key is made afresh in memory at each start. It imports only
// client and ledger of this module, as an app outside it would.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"log"
	"net/http"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/oauth2"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
)

func main() {
	node := flag.String("node", "http://127.0.0.1:8080", "the node's URL: the OpenID issuer")
	listen := flag.String("listen", "127.0.0.1:9090", "where this app listens; its redirect URI is http://ADDR/callback")
	flag.Parse()
	ctx := context.Background()
	redirect := "http://" + *listen + "/callback"
	appID, err := register(ctx, *node, redirect)
	if err != nil {
		log.Fatal(err)
	}

	provider, err := oidc.NewProvider(ctx, *node)
	if err != nil {
		log.Fatal(err)
	}
	cfg := oauth2.Config{
		ClientID:    appID,
		Endpoint:    provider.Endpoint(),
		RedirectURL: redirect,
		Scopes:      []string{oidc.ScopeOpenID, "vehicle:signals", "vehicle:location:approximate"},
	}
	var mu sync.Mutex
	type session struct{ nonce, verifier string }
	sessions := map[string]session{}

	http.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><meta name="viewport" content="width=device-width"><h1>Demo Insurance</h1><p><a href="/login">Connect your car</a></p>`)
	})
	http.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
		mu.Lock()
		sessions[state] = session{nonce, verifier}
		mu.Unlock()
		http.Redirect(w, r, cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier),
			oauth2.SetAuthURLParam("purpose", "To offer you a pay-as-you-drive insurance quote based on how much you drive."),
			oauth2.SetAuthURLParam("duration", "2592000")), http.StatusFound)
	})
	http.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mu.Lock()
		s, ok := sessions[q.Get("state")]
		delete(sessions, q.Get("state"))
		mu.Unlock()
		switch {
		case !ok:
			http.Error(w, "unknown state", http.StatusBadRequest)
			return
		case q.Get("error") != "":
			fmt.Fprintf(w, "<p>Not connected: %s</p>", html.EscapeString(q.Get("error")))
			return
		}
		tok, err := cfg.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(s.verifier))
		if err != nil {
			http.Error(w, "exchange: "+err.Error(), http.StatusBadGateway)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}).Verify(r.Context(), raw)
		if err != nil || idt.Nonce != s.nonce {
			http.Error(w, fmt.Sprintf("ID token: %v", err), http.StatusBadGateway)
			return
		}
		var claims struct {
			Vehicles []uint64 `json:"vehicles"`
		}
		idt.Claims(&claims)
		fmt.Fprintf(w, "<h1>Connected</h1><p>Driver %s granted cars %v.</p>", html.EscapeString(idt.Subject), claims.Vehicles)
		hc := cfg.Client(r.Context(), tok) // Authorization: Bearer <access token>
		for _, id := range claims.Vehicles {
			body, _ := json.Marshal(map[string]string{"query": fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { value timestamp } } }`, id)})
			resp, err := hc.Post(*node+"/graphql", "application/json", strings.NewReader(string(body)))
			if err != nil {
				fmt.Fprintf(w, "<p>car %d: %s</p>", id, html.EscapeString(err.Error()))
				continue
			}
			var out json.RawMessage
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			fmt.Fprintf(w, "<p>car %d: <code>%s</code></p>", id, html.EscapeString(string(out)))
		}
	})
	fmt.Printf("app %s registered; open http://%s/\n", appID, *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}

// register registers a new app (a fresh key, owned by another fresh key) with one redirect URI and
// returns its address, the client_id.
func register(ctx context.Context, node, redirect string) (string, error) {
	c := client.New(node)
	d, err := c.Domain(ctx)
	if err != nil {
		return "", fmt.Errorf("couldn't read the node's signing domain: %w", err)
	}
	appKey, _ := crypto.GenerateKey()
	ownerKey, _ := crypto.GenerateKey()
	app, owner := crypto.PubkeyToAddress(appKey.PublicKey), crypto.PubkeyToAddress(ownerKey.PublicKey)
	tx := &ledger.Tx{Type: ledger.TypeRegisterApp, App: app, Owner: owner, Name: "Demo Insurance", RedirectURIs: []string{redirect}}
	client.Prepare(tx, client.DefaultTTL)
	for _, k := range []*ecdsa.PrivateKey{ownerKey, appKey} {
		if err := d.Sign(tx, k); err != nil {
			return "", err
		}
	}
	if _, err := c.Submit(ctx, tx); err != nil {
		return "", fmt.Errorf("couldn't register the app: %w", err)
	}
	return app.Hex(), nil
}

func random() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
