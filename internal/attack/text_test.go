package attack

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
)

// TestPagesCannotBeFramedAndAnswersAreNotSniffed checks the headers that keep a browser from framing a
// page that acts with the user's token (clickjacking) or reading an answer as another type.
func TestPagesCannotBeFramedAndAnswersAreNotSniffed(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	n.Vehicle(t, owner)
	for _, path := range []string{"/graphql/playground", "/", "/oauth/authorize"} {
		_, h, _ := get(t, n, "", path)
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s can be framed: CSP %q, X-Frame-Options %q", path, h.Get("Content-Security-Policy"), h.Get("X-Frame-Options"))
		}
	}
	for _, path := range []string{"/v1/node", "/v1/vehicles/1", "/v1/vehicles/99", "/v1/nothing", "/v1/state/digest", "/v1/signals",
		"/graphql?query={__typename}", "/log/checkpoint", "/.well-known/openid-configuration", "/.well-known/jwks.json",
		"/v1/auth/challenge?address=0x0000000000000000000000000000000000000001", "/v1/vehicles/1/access"} {
		_, h, _ := get(t, n, "", path)
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no X-Content-Type-Options: nosniff (Content-Type %q)", path, h.Get("Content-Type"))
		}
	}
}

// TestARedirectHostCannotWriteTheConsentPagesPolicy registers apps whose redirect URI's host holds
// characters Go's URL parser lets through: none of them reaches the consent page's
// Content-Security-Policy, where ';' would start a directive and '*' widen one.
func TestARedirectHostCannotWriteTheConsentPagesPolicy(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	dev := testnode.NewKey(t)
	for _, host := range []string{"a;script-src", "*.evil.example", "x'unsafe-inline'", "a,b"} {
		t.Run(host, func(t *testing.T) {
			app := testnode.NewKey(t)
			redirect := "https://" + host + "/cb"
			rc, err := n.Client.Submit(t.Context(), n.Sign(t, &ledger.Tx{Type: ledger.TypeRegisterApp, App: app.Address, Owner: dev.Address,
				Name: "App", RedirectURIs: []string{redirect}}, dev, app))
			if err != nil {
				t.Skipf("the ledger refuses the redirect URI (%v): nothing reaches the page", err)
			}
			_ = rc
			sum := sha256.Sum256([]byte("verifier-verifier-verifier-verifier-verifier"))
			q := url.Values{"response_type": {"code"}, "client_id": {app.Address.Hex()}, "redirect_uri": {redirect},
				"scope": {"openid vehicle:signals"}, "state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
				"code_challenge_method": {"S256"}}
			req, _ := http.NewRequest(http.MethodGet, n.URL+"/oauth/authorize?"+q.Encode(), nil)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			csp := resp.Header.Get("Content-Security-Policy")
			if resp.StatusCode != 200 || csp == "" {
				t.Fatalf("consent page: %d, CSP %q", resp.StatusCode, csp)
			}
			if strings.Contains(csp, host) {
				t.Errorf("the host reached the policy: %q", csp)
			}
		})
	}
}

// TestInvisibleCharactersAreRefused submits names and purposes holding characters that reorder or hide
// what a driver reads: each is refused with invisible_text (or, on the authorization request,
// invalid_request) and nothing is stored, so the consent screen never shows one.
func TestInvisibleCharactersAreRefused(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	app := n.App(t, owner)
	before, err := n.Client.StateDigest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"\u202E", "\u202A", "\u2066", "\u2069", "\u200B", "\u200F", "\uFEFF", "\U000E0041", "\u00AD"} {
		t.Run(fmt.Sprintf("%U", []rune(bad)[0]), func(t *testing.T) {
			n.Refuse(t, string(ledger.CodeInvisibleText), &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address,
				Make: "Volvo" + bad, Model: "XC40", Year: 2023}, owner)
			n.Refuse(t, string(ledger.CodeInvisibleText), &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address,
				Make: "Volvo", Model: bad + "XC40", Year: 2023}, owner)
			newApp := testnode.NewKey(t)
			n.Refuse(t, string(ledger.CodeInvisibleText), &ledger.Tx{Type: ledger.TypeRegisterApp, App: newApp.Address, Owner: owner.Address,
				Name: "Gdpr" + bad + "Insurer", RedirectURIs: []string{"https://app.example/cb"}}, owner, newApp)
			n.Refuse(t, string(ledger.CodeInvisibleText), &ledger.Tx{Type: ledger.TypeUpdateApp, App: app.Address,
				Name: bad + "Insurer", RedirectURIs: []string{"https://insurer.example/callback"}}, owner)
			grant := &ledger.Tx{Type: ledger.TypeGrant, App: app.Address, Permissions: []string{ledger.PermSignals}, Purpose: "Insurance" + bad}
			grant.VehicleID.SetUint64(vid)
			grant.ExpiresAt.SetUint64(uint64(time.Now().Add(time.Hour).Unix()))
			n.Refuse(t, string(ledger.CodeInvisibleText), grant, owner)

			sum := sha256.Sum256([]byte("verifier-verifier-verifier-verifier-verifier"))
			q := url.Values{"response_type": {"code"}, "client_id": {app.Address.Hex()}, "redirect_uri": {"https://insurer.example/callback"},
				"scope": {"openid vehicle:signals"}, "state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
				"code_challenge_method": {"S256"}, "purpose": {"Cheaper " + bad + "insurance"}}
			req, _ := http.NewRequest(http.MethodGet, n.URL+"/oauth/authorize?"+q.Encode(), nil)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
				t.Errorf("the consent request with the purpose: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	if after, err := n.Client.StateDigest(t.Context()); err != nil || *after != *before {
		t.Errorf("the refusals changed the state: %v %v → %v", err, before, after)
	}
}
