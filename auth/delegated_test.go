package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDelegatedTokensSayWhoConsentedAndCanBeRevoked(t *testing.T) {
	iss, clk := newTestIssuer(t)
	_, app := newAccount(t)
	_, owner := newAccount(t)
	tok, jti, exp, err := iss.IssueDelegated(app, Delegation{ClientID: strings.ToLower(app.Hex()), Owner: owner, Scope: "openid vehicle:signals"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != app || c.ID != jti || !c.Expiry.Equal(exp) || c.Delegation.Owner != owner ||
		c.Delegation.Scope != "openid vehicle:signals" || c.Delegation.ClientID != strings.ToLower(app.Hex()) {
		t.Fatalf("claims %+v", c)
	}
	iss.Revoke(jti, exp)
	if _, err := iss.Verify(tok.AccessToken); CodeOf(err) != CodeUnauthenticated {
		t.Fatalf("a revoked token: %v", err)
	}
	// Revocations are forgotten once the token has expired anyway; a later token is unaffected.
	clk.now = exp
	tok2, _, _, err := iss.IssueDelegated(app, Delegation{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	iss.Revoke("another", clk.now.Add(time.Hour))
	if _, err := iss.Verify(tok2.AccessToken); err != nil {
		t.Fatalf("an unrevoked token: %v", err)
	}
	if n := iss.revoked.len(); n != 1 {
		t.Errorf("%d revocations kept, want 1 (the expired one forgotten)", n)
	}
}

func TestSignInTokensHaveNoDelegation(t *testing.T) {
	iss, _ := newTestIssuer(t)
	k, a := newAccount(t)
	msg := issueChallenge(t, iss, a)
	tok, err := iss.Exchange(context.Background(), msg, personalSign(t, k, msg))
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.Verify(tok.AccessToken)
	if err != nil || c.Delegation != (Delegation{}) {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestTokenHandlerTakesExtraGrants(t *testing.T) {
	iss, _ := newTestIssuer(t)
	var got url.Values
	h := iss.TokenHandler(map[string]GrantHandler{
		"authorization_code": func(r *http.Request, form url.Values) (any, error) {
			got = form
			if form.Get("code") == "bad-client" {
				return nil, Errorf(CodeInvalidClient, "who are you")
			}
			return map[string]string{"access_token": "x"}, nil
		},
	})
	for _, c := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"the extra grant answers", url.Values{"grant_type": {"authorization_code"}, "code": {"c"}, "empty": {""}}, 200, ""},
		{"its invalid_client is 401", url.Values{"grant_type": {"authorization_code"}, "code": {"bad-client"}}, 401, CodeInvalidClient},
		{"an unknown grant names the supported ones", url.Values{"grant_type": {"password"}}, 400, CodeUnsupportedGrantType},
		{"a repeated parameter of any name is refused", url.Values{"grant_type": {"authorization_code"}, "code": {"a", "b"}}, 400, CodeInvalidRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := postForm(h, c.form)
			var out map[string]string
			json.Unmarshal(w.Body.Bytes(), &out)
			if w.Code != c.status || out["error"] != c.code {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if c.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if c.code == CodeUnsupportedGrantType && !strings.Contains(out["error_description"], "authorization_code") {
				t.Errorf("description %q", out["error_description"])
			}
		})
	}
	if _, ok := got["empty"]; ok {
		t.Error("a parameter without a value reached the grant handler")
	}
}

func TestRevocationsAreForgottenInExpiryOrder(t *testing.T) {
	var s revokedSet
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for i, mins := range []int{30, 10, 20} {
		s.add(fmt.Sprint("jti-", i), t0.Add(time.Duration(mins)*time.Minute), t0)
	}
	for _, c := range []struct {
		at   int // minutes after t0 of a further revocation
		kept []string
	}{
		{10, []string{"jti-0", "jti-2"}},
		{25, []string{"jti-0"}},
		{30, nil},
	} {
		s.add("probe", t0.Add(time.Hour), t0.Add(time.Duration(c.at)*time.Minute))
		for i := range 3 {
			id := fmt.Sprint("jti-", i)
			if want := slices.Contains(c.kept, id); s.has(id) != want {
				t.Fatalf("at +%d min: has(%s) = %v, want %v", c.at, id, !want, want)
			}
		}
	}
}

// BenchmarkRevoke revokes a token and looks one up with n revocations held: the cost must not grow
// with n (it was a scan of every revocation per Revoke).
func BenchmarkRevoke(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint("revoked=", n), func(b *testing.B) {
			var s revokedSet
			t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
			for i := range n {
				s.add(fmt.Sprint("old-", i), t0.Add(time.Hour), t0)
			}
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = fmt.Sprint("new-", i)
			}
			b.ResetTimer()
			for i := range b.N {
				s.add(ids[i], t0.Add(time.Hour), t0)
				s.has(ids[i])
			}
		})
	}
}
