package connect_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/oauth2"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// world is a node with an owner of two vehicles, each with a paired device and one record, and an app
// registered with a redirect URI on its own server.
type world struct {
	n      *testnode.Node
	owner  testnode.Key
	v1, v2 uint64
	app    *testApp
	clk    *clock // the node's clock, stopped: moved only by the test
}

func newWorld(t *testing.T) *world {
	t.Helper()
	clk := &clock{base: time.Now()}
	n := testnode.Start(t, testnode.Options{Now: clk.now})
	w := &world{n: n, owner: fixedKey(t, "owner"), clk: clk}
	w.v1 = n.Vehicle(t, w.owner)
	tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: w.owner.Address, Make: "Renault", Model: "Zoe", Year: 2021}
	w.v2 = n.Submit(t, tx, w.owner).Result.VehicleID
	devs := []testnode.Key{n.PairedDevice(t, w.owner, w.v1, ledger.KindHardware), n.PairedDevice(t, w.owner, w.v2, ledger.KindHardware)}
	now := clk.now()
	var subs []telemetry.Submission
	for i, id := range []uint64{w.v1, w.v2} {
		dev := devs[i]
		subs = append(subs, testnode.Record(t, dev, id, fmt.Sprintf("r%d", i), now,
			telemetry.EventSignal{Name: "speed", Timestamp: now, Value: 50.0 + float64(i)}))
	}
	res, err := n.Client.PostEvents(context.Background(), subs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != telemetry.StatusAccepted {
			t.Fatalf("record: %+v", r)
		}
	}
	if _, err := n.Telemetry.Index(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.app = newTestApp(t, n, w.owner, "Acme Insurance")
	return w
}

// fixedKey is the same key in every run, so that the screenshots of the consent screen change only when
// the screen does (and with the date).
func fixedKey(t *testing.T, name string) testnode.Key {
	t.Helper()
	h := sha256.Sum256([]byte("glovebox connect test " + name))
	k, err := crypto.ToECDSA(h[:])
	if err != nil {
		t.Fatal(err)
	}
	return testnode.Key{Key: k, Address: crypto.PubkeyToAddress(k.PublicKey)}
}

// testApp is an app as a developer would write it: golang.org/x/oauth2 for the flow, go-oidc for the ID
// token, configured with nothing but the node's URL as issuer, its client id and its redirect URI.
type testApp struct {
	t        *testing.T
	key      testnode.Key
	srv      *httptest.Server
	provider *oidc.Provider
	cfg      oauth2.Config
	extra    []oauth2.AuthCodeOption // purpose, terms, duration

	mu       sync.Mutex
	sessions map[string]*session // by state
	results  chan appResult
}

type session struct {
	nonce, verifier string
}

// appResult is what the app's callback saw.
type appResult struct {
	Error    string // the error parameter, if the node sent one
	Token    *oauth2.Token
	IDToken  *oidc.IDToken
	Vehicles []uint64 // the ID token's vehicles claim
	Err      error    // anything the app refused
}

func newTestApp(t *testing.T, n *testnode.Node, owner testnode.Key, name string) *testApp {
	t.Helper()
	key := testnode.NewKey(t)
	if name == "Acme Insurance" {
		key = fixedKey(t, "app")
	}
	a := &testApp{t: t, key: key, sessions: map[string]*session{}, results: make(chan appResult, 4)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	n.Submit(t, &ledger.Tx{Type: ledger.TypeRegisterApp, App: a.key.Address, Owner: owner.Address, Name: name,
		RedirectURIs: []string{a.srv.URL + "/callback"}}, owner, a.key)
	var err error
	if a.provider, err = oidc.NewProvider(context.Background(), n.URL); err != nil {
		t.Fatal(err)
	}
	a.cfg = oauth2.Config{
		ClientID:    a.key.Address.Hex(),
		Endpoint:    a.provider.Endpoint(),
		RedirectURL: a.srv.URL + "/callback",
		Scopes:      []string{oidc.ScopeOpenID, "vehicle:signals", "vehicle:location:approximate"},
	}
	a.extra = []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("purpose", "To offer you a pay-as-you-drive insurance quote based on how much you drive."),
		oauth2.SetAuthURLParam("terms_uri", "https://acme.example/terms"),
		oauth2.SetAuthURLParam("duration", fmt.Sprint(30*24*3600)),
	}
	return a
}

func randomString() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// authURL starts a flow: a new state, nonce and PKCE verifier.
func (a *testApp) authURL() string {
	s := &session{nonce: randomString(), verifier: oauth2.GenerateVerifier()}
	state := randomString()
	a.mu.Lock()
	a.sessions[state] = s
	a.mu.Unlock()
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(s.nonce), oauth2.S256ChallengeOption(s.verifier)}, a.extra...)
	return a.cfg.AuthCodeURL(state, opts...)
}

func (a *testApp) login(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, a.authURL(), http.StatusFound)
}

// callback is the redirect URI: it exchanges the code and verifies the ID token, as an app does.
func (a *testApp) callback(w http.ResponseWriter, r *http.Request) {
	res := a.finish(r.Context(), r.URL.Query())
	a.results <- res
	w.Header().Set("Content-Type", "text/html")
	if res.Err != nil || res.Error != "" {
		fmt.Fprintf(w, `<p id="failed">%s %v</p>`, res.Error, res.Err)
		return
	}
	fmt.Fprint(w, `<p id="connected">Connected</p>`)
}

func (a *testApp) finish(ctx context.Context, q url.Values) appResult {
	a.mu.Lock()
	s := a.sessions[q.Get("state")]
	delete(a.sessions, q.Get("state"))
	a.mu.Unlock()
	if s == nil {
		return appResult{Err: fmt.Errorf("unknown state %q", q.Get("state"))}
	}
	if e := q.Get("error"); e != "" {
		return appResult{Error: e}
	}
	tok, err := a.cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(s.verifier))
	if err != nil {
		return appResult{Err: fmt.Errorf("exchange: %w", err)}
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.provider.Verifier(&oidc.Config{ClientID: a.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return appResult{Err: fmt.Errorf("id token: %w", err)}
	}
	if idt.Nonce != s.nonce {
		return appResult{Err: fmt.Errorf("id token nonce %q, want %q", idt.Nonce, s.nonce)}
	}
	var c struct {
		Vehicles []uint64 `json:"vehicles"`
	}
	if err := idt.Claims(&c); err != nil {
		return appResult{Err: err}
	}
	return appResult{Token: tok, IDToken: idt, Vehicles: c.Vehicles}
}

// speed reads a vehicle's latest speed over GraphQL with token: the value, or the first error's code.
func speed(t *testing.T, n *testnode.Node, token string, vehicle uint64) (float64, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { value } } }`, vehicle)})
	req, _ := http.NewRequest("POST", n.URL+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			SignalsLatest *struct {
				Speed *struct{ Value float64 }
			}
		}
		Errors []struct {
			Extensions struct{ Code string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) > 0 {
		return 0, out.Errors[0].Extensions.Code
	}
	if out.Data.SignalsLatest == nil || out.Data.SignalsLatest.Speed == nil {
		return 0, "NO_DATA"
	}
	return out.Data.SignalsLatest.Speed.Value, ""
}

// revoke has the owner revoke the app's grant on a vehicle through the ledger.
func (w *world) revoke(t *testing.T, vehicle uint64, app common.Address) {
	t.Helper()
	tx := &ledger.Tx{Type: ledger.TypeRevoke, App: app}
	tx.VehicleID.SetUint64(vehicle)
	w.n.Submit(t, tx, w.owner)
}

// noRedirect is an HTTP client that stops at the first redirect, to see where the node sends the browser.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get fetches u without following redirects.
func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var requestID = regexp.MustCompile(`name="request" value="([^"]+)"`)

// challenge returns the S256 challenge of a verifier.
func challenge(verifier string) string {
	s := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(s[:])
}
