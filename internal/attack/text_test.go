package attack

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

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
