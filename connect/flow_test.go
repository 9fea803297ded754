package connect_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/connect"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
)

// clock is a stopped clock for the node (sequencer and token issuer), moved only by the test, so that no
// test depends on how long a step takes.
type clock struct {
	mu   sync.Mutex
	base time.Time
	off  time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(c.off)
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// flow is one authorization request of the test app, driven over HTTP by Go instead of a browser: the
// same requests the consent screen's script makes.
type flow struct {
	state, nonce, verifier string
	query                  url.Values
}

func (w *world) newFlow() *flow {
	f := &flow{state: randomString(), nonce: randomString(), verifier: randomString() + randomString()}
	f.query = url.Values{
		"response_type":         {"code"},
		"client_id":             {w.app.key.Address.Hex()},
		"redirect_uri":          {w.app.srv.URL + "/callback"},
		"scope":                 {"openid vehicle:signals"},
		"state":                 {f.state},
		"nonce":                 {f.nonce},
		"code_challenge":        {challenge(f.verifier)},
		"code_challenge_method": {"S256"},
		"purpose":               {"Quote"},
	}
	return f
}

func (w *world) authorizeURL(q url.Values) string { return w.n.URL + "/oauth/authorize?" + q.Encode() }

// screen is what the consent screen's script reads from the page.
type screen struct {
	Request     string   `json:"request"`
	App         string   `json:"app"`
	Permissions []string `json:"permissions"`
	Purpose     string   `json:"purpose"`
	TermsURI    string   `json:"termsUri"`
	ExpiresAt   string   `json:"expiresAt"`
}

var screenData = regexp.MustCompile(`(?s)<script type="application/json" id="connect-data">(.*?)</script>`)

// open loads the consent screen of f.
func (w *world) open(t *testing.T, f *flow) screen {
	t.Helper()
	resp, body := get(t, w.authorizeURL(f.query))
	if resp.StatusCode != 200 {
		t.Fatalf("consent screen: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	m := screenData.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no connect-data on the consent screen")
	}
	var s screen
	if err := json.Unmarshal([]byte(m[1]), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// grantTx is the Grant the consent screen's script signs for one vehicle.
func (w *world) grantTx(t *testing.T, s screen, vehicle uint64, signer testnode.Key) json.RawMessage {
	t.Helper()
	tx := &ledger.Tx{Type: ledger.TypeGrant, Permissions: s.Permissions, Purpose: s.Purpose, TermsURI: s.TermsURI}
	var err error
	if tx.App, err = ledger.ParseAddress(s.App); err != nil {
		t.Fatal(err)
	}
	tx.VehicleID.SetUint64(vehicle)
	if err := tx.ExpiresAt.SetFromDecimal(s.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	b, err := w.n.Sign(t, tx, signer).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decide posts a decision and returns the status and the decoded answer.
func (w *world) decide(t *testing.T, d connect.DecisionRequest) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(d)
	resp, err := http.Post(w.n.URL+connect.PathDecision, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// code runs f up to the code: the owner allows vehicles.
func (w *world) code(t *testing.T, f *flow, vehicles ...uint64) string {
	t.Helper()
	s := w.open(t, f)
	d := connect.DecisionRequest{Request: s.Request}
	for _, v := range vehicles {
		d.Grants = append(d.Grants, w.grantTx(t, s, v, w.owner))
	}
	status, out := w.decide(t, d)
	if status != 200 {
		t.Fatalf("decision: %d %v", status, out)
	}
	u, err := url.Parse(out["redirect"].(string))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("state") != f.state || q.Get("iss") != w.n.URL || u.Path != "/callback" {
		t.Fatalf("redirect %s", u)
	}
	return q.Get("code")
}

// token posts a token request and returns the status and the decoded answer.
func (w *world) token(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(w.n.URL+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("token answer without Cache-Control: no-store")
	}
	return resp.StatusCode, out
}

func (w *world) exchangeForm(f *flow, code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {w.app.srv.URL + "/callback"},
		"client_id": {w.app.key.Address.Hex()}, "code_verifier": {f.verifier}}
}

func newClockWorld(t *testing.T) (*world, *clock) {
	t.Helper()
	w := newWorld(t)
	return w, w.clk
}

func TestDiscovery(t *testing.T) {
	w := newWorld(t)
	resp, body := get(t, w.n.URL+"/.well-known/openid-configuration")
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	var d connect.Discovery
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != w.n.URL || d.RevocationEndpoint != w.n.URL+"/oauth/revoke" || d.UserinfoEndpoint != w.n.URL+"/oauth/userinfo" ||
		d.JWKSURI != w.n.URL+"/.well-known/jwks.json" || d.AuthorizationEndpoint != w.n.URL+"/oauth/authorize" {
		t.Errorf("endpoints: %+v", d)
	}
	if !slices.Equal(d.CodeChallengeMethodsSupported, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v", d.CodeChallengeMethodsSupported)
	}
	want := []string{"openid", "vehicle:signals", "vehicle:location:approximate", "vehicle:location", "vehicle:raw",
		"vehicle:credentials", "vehicle:insights", "vehicle:stream", "vehicle:commands"}
	if !slices.Equal(d.ScopesSupported, want) {
		t.Errorf("scopes_supported = %v, want %v", d.ScopesSupported, want)
	}
	for _, p := range ledger.Permissions {
		if !slices.Contains(d.ScopesSupported, "vehicle:"+p) {
			t.Errorf("permission %s has no scope", p)
		}
	}
}

func TestWrongMethodsGetTheAPIsJSON405(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct{ method, path string }{
		{"POST", "/.well-known/openid-configuration"}, {"POST", "/oauth/authorize"}, {"GET", "/oauth/authorize/decision"},
		{"GET", "/oauth/authorize/deny"}, {"GET", "/oauth/revoke"}, {"DELETE", "/oauth/userinfo"}, {"GET", "/oauth/token"},
	} {
		req, _ := http.NewRequest(c.method, w.n.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 405 || out["error"] == nil {
			t.Errorf("%s %s: %d %v", c.method, c.path, resp.StatusCode, out)
		}
	}
}

// Browser-based public clients may call the discovery, key set, token, userinfo and revocation endpoints
// from their own origin; the consent screen's endpoints stay same-origin.
func TestCORS(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct {
		path string
		open bool
	}{
		{"/.well-known/openid-configuration", true}, {"/.well-known/jwks.json", true}, {"/oauth/token", true},
		{"/oauth/userinfo", true}, {"/oauth/revoke", true}, {"/oauth/authorize/decision", false}, {"/oauth/authorize/deny", false},
	} {
		req, _ := http.NewRequest("OPTIONS", w.n.URL+c.path, nil)
		req.Header.Set("Origin", "https://spa.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.StatusCode == 204 && resp.Header.Get("Access-Control-Allow-Origin") == "*" &&
			strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")
		if got != c.open {
			t.Errorf("preflight of %s: %d %v, want open=%v", c.path, resp.StatusCode, resp.Header, c.open)
		}
	}
	resp, _ := get(t, w.n.URL+"/.well-known/openid-configuration")
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("discovery without Access-Control-Allow-Origin")
	}
	r, err := http.PostForm(w.n.URL+"/oauth/token", url.Values{"grant_type": {"password"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("token answers without Access-Control-Allow-Origin")
	}
}

// Errors about the client or the redirect URI are shown to the driver and never redirected (RFC 6749
// §4.1.2.1).
func TestAuthorizeErrorsAreShownNotRedirected(t *testing.T) {
	w := newWorld(t)
	other := newTestApp(t, w.n, w.owner, "Other")
	for _, c := range []struct {
		name, code string
		change     func(q url.Values)
	}{
		{"a missing client_id", "invalid_request", func(q url.Values) { q.Del("client_id") }},
		{"a client_id that is not an address", "invalid_client", func(q url.Values) { q.Set("client_id", "acme") }},
		{"an unknown client", "invalid_client", func(q url.Values) { q.Set("client_id", testnode.NewKey(t).Address.Hex()) }},
		{"a repeated client_id", "invalid_request", func(q url.Values) { q.Add("client_id", q.Get("client_id")) }},
		{"a missing redirect_uri", "invalid_request", func(q url.Values) { q.Del("redirect_uri") }},
		{"an unregistered redirect_uri", "invalid_request", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/callback") }},
		{"a redirect_uri with a trailing slash", "invalid_request", func(q url.Values) { q.Set("redirect_uri", q.Get("redirect_uri")+"/") }},
		{"a redirect_uri with a query added", "invalid_request", func(q url.Values) { q.Set("redirect_uri", q.Get("redirect_uri")+"?x=1") }},
		{"another app's redirect_uri", "invalid_request", func(q url.Values) { q.Set("redirect_uri", other.srv.URL+"/callback") }},
		{"a repeated redirect_uri", "invalid_request", func(q url.Values) { q.Add("redirect_uri", q.Get("redirect_uri")) }},
	} {
		t.Run(c.name+" is shown as "+c.code, func(t *testing.T) {
			f := w.newFlow()
			c.change(f.query)
			resp, body := get(t, w.authorizeURL(f.query))
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
				t.Fatalf("%d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(body, `<code id="error-code">`+c.code+`</code>`) || !strings.Contains(body, "This link can") {
				t.Fatalf("page does not show %s:\n%s", c.code, body)
			}
			if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Error("error page can be framed")
			}
		})
	}
}

// Other errors go back to the app as error, error_description, state and iss.
func TestAuthorizeErrorsAreRedirected(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct {
		name, code string
		change     func(q url.Values)
	}{
		{"a missing response_type", "invalid_request", func(q url.Values) { q.Del("response_type") }},
		{"response_type token", "unsupported_response_type", func(q url.Values) { q.Set("response_type", "token") }},
		{"response_type code id_token", "unsupported_response_type", func(q url.Values) { q.Set("response_type", "code id_token") }},
		{"a missing code_challenge", "invalid_request", func(q url.Values) { q.Del("code_challenge") }},
		{"code_challenge_method plain", "invalid_request", func(q url.Values) { q.Set("code_challenge_method", "plain") }},
		{"a missing code_challenge_method", "invalid_request", func(q url.Values) { q.Del("code_challenge_method") }},
		{"a short code_challenge", "invalid_request", func(q url.Values) { q.Set("code_challenge", "abc") }},
		{"an unknown scope", "invalid_scope", func(q url.Values) { q.Set("scope", "openid vehicle:everything") }},
		{"no vehicle scope", "invalid_scope", func(q url.Values) { q.Set("scope", "openid") }},
		{"a missing scope", "invalid_scope", func(q url.Values) { q.Del("scope") }},
		{"prompt none", "interaction_required", func(q url.Values) { q.Set("prompt", "none") }},
		{"a request object", "request_not_supported", func(q url.Values) { q.Set("request", "eyJ.eyJ.x") }},
		{"a request_uri", "request_uri_not_supported", func(q url.Values) { q.Set("request_uri", "https://acme.example/r") }},
		{"a duration of ten years", "invalid_request", func(q url.Values) { q.Set("duration", "315360000") }},
		{"a duration that is not seconds", "invalid_request", func(q url.Values) { q.Set("duration", "30d") }},
		{"a terms_uri that is not a URL", "invalid_request", func(q url.Values) { q.Set("terms_uri", "terms") }},
		{"a purpose longer than a grant takes", "invalid_request", func(q url.Values) { q.Set("purpose", strings.Repeat("x", 281)) }},
		{"a repeated scope", "invalid_request", func(q url.Values) { q.Add("scope", "openid") }},
		{"response_mode fragment", "invalid_request", func(q url.Values) { q.Set("response_mode", "fragment") }},
	} {
		t.Run(c.name+" is sent back as "+c.code, func(t *testing.T) {
			f := w.newFlow()
			c.change(f.query)
			resp, _ := get(t, w.authorizeURL(f.query))
			if resp.StatusCode != 302 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			u, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if u.Scheme+"://"+u.Host+u.Path != w.app.srv.URL+"/callback" || q.Get("error") != c.code || q.Get("state") != f.state ||
				q.Get("iss") != w.n.URL || q.Get("error_description") == "" || q.Get("code") != "" {
				t.Fatalf("redirected to %s", u)
			}
		})
	}
}

// The consent screen cannot be framed, runs only its own script, and says the headers that keep it so.
func TestConsentScreenHeaders(t *testing.T) {
	w := newWorld(t)
	resp, body := get(t, w.authorizeURL(w.newFlow().query))
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors 'none'", "default-src 'none'", "connect-src 'self'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows unsafe scripts: %q", csp)
	}
	m := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(body, `<script nonce="`+m[1]+`" src="/connect/consent.js">`) {
		t.Errorf("the script does not carry the CSP nonce")
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers: %v", resp.Header)
	}
	_, body2 := get(t, w.authorizeURL(w.newFlow().query))
	if m2 := regexp.MustCompile(`nonce="([^"]+)"`).FindStringSubmatch(body2); m2 == nil || m2[1] == m[1] {
		t.Error("the nonce is not fresh per page")
	}
}

// Deny sends the driver back with access_denied, once.
func TestDeny(t *testing.T) {
	w := newWorld(t)
	f := w.newFlow()
	s := w.open(t, f)
	deny := func() *http.Response {
		resp, err := noRedirect.PostForm(w.n.URL+connect.PathDeny, url.Values{"request": {s.Request}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := deny()
	u, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 303 || u.Query().Get("error") != "access_denied" || u.Query().Get("state") != f.state {
		t.Fatalf("%d %s", resp.StatusCode, u)
	}
	if resp := deny(); resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Fatalf("a second deny: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The screen is closed: allowing after denying gets nothing.
	if status, out := w.decide(t, connect.DecisionRequest{Request: s.Request, Grants: []json.RawMessage{w.grantTx(t, s, w.v1, w.owner)}}); status != 400 || errCode(out) != connect.CodeRequestExpired {
		t.Fatalf("allow after deny: %d %v", status, out)
	}
}

func errCode(out map[string]any) string {
	if e, ok := out["error"].(map[string]any); ok {
		c, _ := e["code"].(string)
		return c
	}
	if c, ok := out["error"].(string); ok {
		return c
	}
	return ""
}

// No code without the owner's signature; a refused decision changes nothing and leaves the screen open.
func TestCodeNeedsTheOwnersSignature(t *testing.T) {
	w := newWorld(t)
	stranger := testnode.NewKey(t)
	strangersCar := w.n.Vehicle(t, stranger)
	f := w.newFlow()
	s := w.open(t, f)
	other := s
	other.Permissions = []string{"signals", "location"}
	later := s
	later.ExpiresAt = fmt.Sprint(time.Now().Add(400 * 24 * time.Hour).Unix())
	otherApp := s
	otherApp.App = testnode.NewKey(t).Address.Hex()
	for _, c := range []struct {
		name, code string
		d          connect.DecisionRequest
	}{
		{"no grants and no sign-in", "invalid_request", connect.DecisionRequest{Request: s.Request}},
		{"grants signed by someone else", connect.CodeNotOwner, connect.DecisionRequest{Request: s.Request, Grants: []json.RawMessage{w.grantTx(t, s, w.v1, stranger)}}},
		{"the owner's grant and a stranger's", connect.CodeNotOwner, connect.DecisionRequest{Request: s.Request, Grants: []json.RawMessage{w.grantTx(t, s, w.v1, w.owner), w.grantTx(t, s, strangersCar, stranger)}}},
		{"a grant on someone else's car", connect.CodeNotOwner, connect.DecisionRequest{Request: s.Request, Grants: []json.RawMessage{w.grantTx(t, s, strangersCar, w.owner)}}},
		{"a grant with more permissions than asked", connect.CodeGrantMismatch, connect.DecisionRequest{Request: s.Request, Grants: []json.RawMessage{w.grantTx(t, other, w.v1, w.owner)}}},
		{"a grant for longer than shown", connect.CodeGrantMismatch, connect.DecisionRequest{Request: s.Request, Grants: []json.RawMessage{w.grantTx(t, later, w.v1, w.owner)}}},
		{"a grant to another app", connect.CodeGrantMismatch, connect.DecisionRequest{Request: s.Request, Grants: []json.RawMessage{w.grantTx(t, otherApp, w.v1, w.owner)}}},
		{"the same car twice", "invalid_request", connect.DecisionRequest{Request: s.Request, Grants: []json.RawMessage{w.grantTx(t, s, w.v1, w.owner), w.grantTx(t, s, w.v1, w.owner)}}},
		{"an unknown screen", connect.CodeRequestExpired, connect.DecisionRequest{Request: "nope", Grants: []json.RawMessage{w.grantTx(t, s, w.v1, w.owner)}}},
		{"a sign-in by the owner who granted nothing yet", connect.CodeNotGranted, func() connect.DecisionRequest {
			m, sig := siwe(t, w.n, w.owner)
			return connect.DecisionRequest{Request: s.Request, Message: m, Signature: sig}
		}()},
		{"a sign-in with another account's signature", "invalid_grant", func() connect.DecisionRequest {
			m, _ := siwe(t, w.n, w.owner)
			_, sig := siwe(t, w.n, stranger)
			return connect.DecisionRequest{Request: s.Request, Message: m, Signature: sig}
		}()},
	} {
		t.Run(c.name+" gets no code but "+c.code, func(t *testing.T) {
			before := w.n.Log.Size()
			status, out := w.decide(t, c.d)
			if status == 200 || errCode(out) != c.code {
				t.Fatalf("%d %v", status, out)
			}
			if w.n.Log.Size() != before {
				t.Fatal("a refused decision wrote to the log")
			}
		})
	}
	// The screen is still open: the owner can still allow.
	if code := w.code(t, f, w.v1); code == "" {
		t.Fatal("no code")
	}
}

// siwe signs the node's sign-in challenge for k.
func siwe(t *testing.T, n *testnode.Node, k testnode.Key) (string, string) {
	t.Helper()
	_, body := get(t, n.URL+"/v1/auth/challenge?address="+k.Address.Hex())
	var ch struct{ Message string }
	json.Unmarshal([]byte(body), &ch)
	h := ledger.PersonalHash([]byte(ch.Message))
	sig, _ := crypto.Sign(h[:], k.Key)
	sig[64] += 27
	return ch.Message, fmt.Sprintf("0x%x", sig)
}

// Every token endpoint error of RFC 6749 §5.2 for the code grant, each on a fresh code.
func TestCodeExchangeErrors(t *testing.T) {
	w, clk := newClockWorld(t)
	other := newTestApp(t, w.n, w.owner, "Other")
	for _, c := range []struct {
		name, code string
		status     int
		change     func(form url.Values)
	}{
		{"a missing code_verifier", "invalid_request", 400, func(f url.Values) { f.Del("code_verifier") }},
		{"a wrong code_verifier", "invalid_grant", 400, func(f url.Values) { f.Set("code_verifier", randomString()+randomString()) }},
		{"a code_verifier that is the challenge (plain)", "invalid_grant", 400, func(f url.Values) {}},
		{"a missing redirect_uri", "invalid_request", 400, func(f url.Values) { f.Del("redirect_uri") }},
		{"another redirect_uri", "invalid_grant", 400, func(f url.Values) { f.Set("redirect_uri", other.srv.URL+"/callback") }},
		{"an unknown client", "invalid_client", 401, func(f url.Values) { f.Set("client_id", testnode.NewKey(t).Address.Hex()) }},
		{"no client", "invalid_client", 401, func(f url.Values) { f.Del("client_id") }},
		{"another registered client", "invalid_grant", 400, func(f url.Values) { f.Set("client_id", other.key.Address.Hex()) }},
		{"a client secret", "invalid_client", 401, nil},
		{"a client secret in the body", "invalid_client", 401, func(f url.Values) { f.Set("client_secret", "secret") }},
		{"an unknown code", "invalid_grant", 400, func(f url.Values) { f.Set("code", randomString()) }},
		{"an unsupported grant_type", "unsupported_grant_type", 400, func(f url.Values) { f.Set("grant_type", "password") }},
		{"a missing grant_type", "invalid_request", 400, func(f url.Values) { f.Del("grant_type") }},
	} {
		t.Run(c.name+" is "+c.code, func(t *testing.T) {
			f := w.newFlow()
			code := w.code(t, f, w.v1)
			form := w.exchangeForm(f, code)
			var status int
			var out map[string]any
			switch {
			case c.change == nil: // a client secret in HTTP Basic
				req, _ := http.NewRequest("POST", w.n.URL+"/oauth/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(w.app.key.Address.Hex(), "secret")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				status = resp.StatusCode
				json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
			case c.name == "a code_verifier that is the challenge (plain)":
				form.Set("code_verifier", challenge(f.verifier))
				status, out = w.token(t, form)
			default:
				c.change(form)
				status, out = w.token(t, form)
			}
			if status != c.status || out["error"] != c.code || out["access_token"] != nil {
				t.Fatalf("%d %v", status, out)
			}
		})
	}
	t.Run("a refused exchange changes nothing: the code still works with the right verifier", func(t *testing.T) {
		f := w.newFlow()
		code := w.code(t, f, w.v1)
		for _, change := range []func(url.Values){
			func(f url.Values) { f.Set("code_verifier", randomString()+randomString()) },
			func(f url.Values) { f.Set("redirect_uri", w.app.srv.URL+"/other") },
			func(f url.Values) { f.Set("client_id", testnode.NewKey(t).Address.Hex()) },
		} {
			bad := w.exchangeForm(f, code)
			change(bad)
			if status, _ := w.token(t, bad); status == 200 {
				t.Fatal("a bad exchange was accepted")
			}
		}
		if status, out := w.token(t, w.exchangeForm(f, code)); status != 200 {
			t.Fatalf("%d %v", status, out)
		}
	})
	t.Run("a code older than 60 seconds is invalid_grant", func(t *testing.T) {
		f := w.newFlow()
		code := w.code(t, f, w.v1)
		clk.add(connect.CodeTTL)
		defer clk.add(-connect.CodeTTL)
		if status, out := w.token(t, w.exchangeForm(f, code)); status != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("%d %v", status, out)
		}
	})
	t.Run("a code 59 seconds old works", func(t *testing.T) {
		f := w.newFlow()
		code := w.code(t, f, w.v1)
		clk.add(connect.CodeTTL - time.Second)
		defer clk.add(-connect.CodeTTL + time.Second)
		if status, out := w.token(t, w.exchangeForm(f, code)); status != 200 {
			t.Fatalf("%d %v", status, out)
		}
	})
	t.Run("a reused code is invalid_grant and revokes the tokens issued from it", func(t *testing.T) {
		f := w.newFlow()
		code := w.code(t, f, w.v1)
		status, out := w.token(t, w.exchangeForm(f, code))
		if status != 200 {
			t.Fatalf("%d %v", status, out)
		}
		at, rt := out["access_token"].(string), out["refresh_token"].(string)
		if _, c := speed(t, w.n, at, w.v1); c != "" {
			t.Fatalf("before reuse: %s", c)
		}
		if status, out := w.token(t, w.exchangeForm(f, code)); status != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("reuse: %d %v", status, out)
		}
		if _, c := speed(t, w.n, at, w.v1); c != "UNAUTHENTICATED" {
			t.Fatalf("the access token after reuse: %q, want UNAUTHENTICATED", c)
		}
		if status, out := w.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {w.app.key.Address.Hex()}}); status != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("the refresh token after reuse: %d %v", status, out)
		}
	})
}

// Refresh tokens rotate; presenting a rotated one revokes the family.
func TestRefreshTokensRotate(t *testing.T) {
	w, _ := newClockWorld(t)
	f := w.newFlow()
	_, out := w.token(t, w.exchangeForm(f, w.code(t, f, w.v1)))
	rt1 := out["refresh_token"].(string)
	refresh := func(rt string, extra ...string) (int, map[string]any) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {w.app.key.Address.Hex()}}
		for i := 0; i+1 < len(extra); i += 2 {
			form.Set(extra[i], extra[i+1])
		}
		return w.token(t, form)
	}
	if status, out := refresh(rt1, "scope", "openid vehicle:signals vehicle:location"); status != 400 || out["error"] != "invalid_scope" {
		t.Fatalf("widening: %d %v", status, out)
	}
	if status, out := refresh(rt1, "client_id", newTestApp(t, w.n, w.owner, "Other").key.Address.Hex()); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("another client: %d %v", status, out)
	}
	status, out := refresh(rt1)
	if status != 200 || out["refresh_token"] == rt1 || out["id_token"] != nil {
		t.Fatalf("refresh: %d %v", status, out)
	}
	at2, rt2 := out["access_token"].(string), out["refresh_token"].(string)
	if v, c := speed(t, w.n, at2, w.v1); c != "" || v == 0 {
		t.Fatalf("the new access token: %v %s", v, c)
	}
	if status, out := refresh(rt1); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("the old refresh token again: %d %v", status, out)
	}
	if _, c := speed(t, w.n, at2, w.v1); c != "UNAUTHENTICATED" {
		t.Fatalf("after a rotated refresh token was replayed, the family's access token: %q", c)
	}
	if status, _ := refresh(rt2); status != 400 {
		t.Fatal("the family's newest refresh token still works")
	}
}

// assertion is a private_key_jwt client assertion signed ES256K with key.
func assertion(t *testing.T, key testnode.Key, iss, aud, jti string, exp time.Time) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	in := enc(map[string]string{"alg": "ES256K", "typ": "JWT"}) + "." +
		enc(map[string]any{"iss": iss, "sub": iss, "aud": aud, "jti": jti, "exp": exp.Unix(), "iat": time.Now().Unix()})
	h := sha256.Sum256([]byte(in))
	sig, err := crypto.Sign(h[:], key.Key)
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig[:64])
}

// Confidential clients authenticate with private_key_jwt signed by the app key.
func TestPrivateKeyJWT(t *testing.T) {
	w, clk := newClockWorld(t)
	app := w.app.key.Address.Hex()
	aud := w.n.URL + "/oauth/token"
	soon := clk.now().Add(time.Minute)
	used := randomString()
	for _, c := range []struct {
		name      string
		assertion string
		status    int
	}{
		{"an assertion signed by the app key works", assertion(t, w.app.key, app, aud, used, soon), 200},
		{"the same jti again is invalid_client", assertion(t, w.app.key, app, aud, used, soon), 401},
		{"an assertion signed by another key is invalid_client", assertion(t, testnode.NewKey(t), app, aud, randomString(), soon), 401},
		{"an assertion for another audience is invalid_client", assertion(t, w.app.key, app, "https://other.example/token", randomString(), soon), 401},
		{"an expired assertion is invalid_client", assertion(t, w.app.key, app, aud, randomString(), clk.now().Add(-time.Second)), 401},
		{"an assertion valid for an hour is invalid_client", assertion(t, w.app.key, app, aud, randomString(), clk.now().Add(time.Hour)), 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := w.newFlow()
			form := w.exchangeForm(f, w.code(t, f, w.v1))
			form.Del("client_id")
			form.Set("client_assertion_type", connect.ClientAssertionType)
			form.Set("client_assertion", c.assertion)
			status, out := w.token(t, form)
			if status != c.status || (status != 200 && out["error"] != "invalid_client") {
				t.Fatalf("%d %v", status, out)
			}
		})
	}
}

// RFC 7009: the app revokes a refresh token, and with it the access tokens of its family.
func TestRevocationEndpoint(t *testing.T) {
	w, _ := newClockWorld(t)
	f := w.newFlow()
	_, out := w.token(t, w.exchangeForm(f, w.code(t, f, w.v1)))
	at, rt := out["access_token"].(string), out["refresh_token"].(string)
	revoke := func(form url.Values) int {
		resp, err := http.PostForm(w.n.URL+"/oauth/revoke", form)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	client := w.app.key.Address.Hex()
	if s := revoke(url.Values{"token": {"unknown"}, "client_id": {client}}); s != 200 {
		t.Fatalf("an unknown token: %d, want 200 (RFC 7009 §2.2)", s)
	}
	if s := revoke(url.Values{"token": {rt}}); s != 401 {
		t.Fatalf("no client: %d", s)
	}
	if s := revoke(url.Values{"token": {rt}, "client_id": {newTestApp(t, w.n, w.owner, "Other").key.Address.Hex()}}); s != 400 {
		t.Fatalf("another client's token: %d", s)
	}
	if _, c := speed(t, w.n, at, w.v1); c != "" {
		t.Fatalf("before revocation: %s", c)
	}
	if s := revoke(url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}, "client_id": {client}}); s != 200 {
		t.Fatalf("revoke: %d", s)
	}
	if _, c := speed(t, w.n, at, w.v1); c != "UNAUTHENTICATED" {
		t.Fatalf("the access token after revocation: %q", c)
	}
	if status, _ := w.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {client}}); status != 400 {
		t.Fatal("the refresh token still works")
	}
}

// The userinfo endpoint names the driver and the cars the app may read now.
func TestUserinfo(t *testing.T) {
	w, _ := newClockWorld(t)
	f := w.newFlow()
	_, out := w.token(t, w.exchangeForm(f, w.code(t, f, w.v1, w.v2)))
	at := out["access_token"].(string)
	get := func(tok string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", w.n.URL+"/oauth/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	status, ui := get(at)
	if status != 200 || ui["sub"] != w.owner.Address.Hex() || fmt.Sprint(ui["vehicles"]) != fmt.Sprint([]float64{float64(w.v1), float64(w.v2)}) {
		t.Fatalf("%d %v", status, ui)
	}
	w.revoke(t, w.v2, w.app.key.Address)
	if _, ui := get(at); fmt.Sprint(ui["vehicles"]) != fmt.Sprint([]float64{float64(w.v1)}) {
		t.Fatalf("after revoking car 2: %v", ui)
	}
	m, sig := siwe(t, w.n, w.owner)
	_, tok := w.token(t, url.Values{"grant_type": {"urn:glovebox:params:oauth:grant-type:siwe"}, "message": {m}, "signature": {sig}})
	if status, _ := get(tok["access_token"].(string)); status != 403 {
		t.Fatalf("a sign-in token at userinfo: %d, want 403 insufficient_scope", status)
	}
	if status, _ := get("nope"); status != 401 {
		t.Fatalf("a bad token: %d", status)
	}
}
