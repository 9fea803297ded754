package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func httptestRequest(authorization string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
	r.Header.Set("Authorization", authorization)
	return r
}

func newMux(iss *Issuer) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/auth/challenge", iss.ChallengeHandler())
	mux.Handle("POST /oauth/token", iss.TokenHandler(nil))
	mux.Handle("GET /.well-known/jwks.json", iss.JWKSHandler())
	mux.Handle("GET /v1/me", iss.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFromContext(r.Context())
		w.Write([]byte(c.Subject.Hex()))
	})))
	return mux
}

func postForm(mux http.Handler, form url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

func TestHTTPSignIn(t *testing.T) {
	iss, _ := newTestIssuer(t)
	mux := newMux(iss)
	k, addr := newAccount(t)

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/auth/challenge?address="+addr.Hex(), nil))
	if w.Code != 200 {
		t.Fatalf("challenge: %d %s", w.Code, w.Body)
	}
	var ch ChallengeResponse
	if err := json.Unmarshal(w.Body.Bytes(), &ch); err != nil {
		t.Fatal(err)
	}
	if ch.ExpiresAt != "2026-03-01T12:05:00Z" || !strings.Contains(ch.Message, "\nNonce: "+ch.Nonce+"\n") {
		t.Fatalf("challenge answer %+v", ch)
	}

	w = postForm(mux, url.Values{"grant_type": {GrantTypeSIWE}, "message": {ch.Message}, "signature": {personalSign(t, k, ch.Message)}})
	if w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("token: %d %v %s", w.Code, w.Header(), w.Body)
	}
	var body map[string]any
	json.Unmarshal(w.Body.Bytes(), &body)
	if body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) || body["access_token"] == "" || len(body) != 3 {
		t.Fatalf("token body %s", w.Body)
	}

	r := httptest.NewRequest(http.MethodGet, "/v1/me", nil)
	r.Header.Set("Authorization", "Bearer "+body["access_token"].(string))
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != 200 || w.Body.String() != addr.Hex() {
		t.Fatalf("me: %d %s", w.Code, w.Body)
	}

	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if w.Code != 200 || w.Body.String() != string(iss.JWKS()) || !strings.Contains(w.Body.String(), `"kid":"`+iss.KeyID()+`"`) {
		t.Fatalf("jwks: %d %s", w.Code, w.Body)
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	iss, _ := newTestIssuer(t)
	mux := newMux(iss)
	k, addr := newAccount(t)
	msg := issueChallenge(t, iss, addr)
	sig := personalSign(t, k, msg)
	_, other := newAccount(t)
	wrongSig := personalSign(t, k, issueChallenge(t, iss, other))
	tests := []struct {
		name   string
		form   url.Values
		ctype  string
		status int
		code   string
	}{
		{"a grant of another type is unsupported", url.Values{"grant_type": {"password"}, "message": {msg}, "signature": {sig}}, "", 400, CodeUnsupportedGrantType},
		{"a request without grant_type is invalid", url.Values{"message": {msg}, "signature": {sig}}, "", 400, CodeInvalidRequest},
		{"a request without a signature is invalid", url.Values{"grant_type": {GrantTypeSIWE}, "message": {msg}}, "", 400, CodeInvalidRequest},
		{"a request with a repeated parameter is invalid", url.Values{"grant_type": {GrantTypeSIWE}, "message": {msg, msg}, "signature": {sig}}, "", 400, CodeInvalidRequest},
		{"a JSON body is invalid", url.Values{"grant_type": {GrantTypeSIWE}, "message": {msg}, "signature": {sig}}, "application/json", 400, CodeInvalidRequest},
		{"a signature by another signer is an invalid grant", url.Values{"grant_type": {GrantTypeSIWE}, "message": {msg}, "signature": {wrongSig}}, "", 400, CodeInvalidGrant},
		{"a high-s signature is an invalid grant", url.Values{"grant_type": {GrantTypeSIWE}, "message": {msg}, "signature": {"0x" + strings.Repeat("ff", 65)}}, "", 400, CodeInvalidGrant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(tt.form.Encode()))
			ct := tt.ctype
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			r.Header.Set("Content-Type", ct)
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			var e oauthError
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.status || e.Error != tt.code || e.Description == "" || w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("%d %s %v", w.Code, w.Body, w.Header())
			}
			for _, s := range tt.form["signature"] {
				if strings.Contains(w.Body.String(), s[2:20]) {
					t.Fatal("the error echoes the signature")
				}
			}
		})
	}
	// None of that consumed the challenge.
	if w := postForm(mux, url.Values{"grant_type": {GrantTypeSIWE}, "message": {msg}, "signature": {sig}}); w.Code != 200 {
		t.Fatalf("the challenge no longer works: %s", w.Body)
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/oauth/token", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /oauth/token: %d", w.Code)
	}
	if w := postForm(iss.TokenHandler(nil), url.Values{"grant_type": {GrantTypeSIWE}, "message": {strings.Repeat("a", maxForm)}, "signature": {sig}}); w.Code != 400 {
		t.Fatalf("an oversized form: %d", w.Code)
	}
}

func TestChallengeEndpointRefusals(t *testing.T) {
	iss, _ := newTestIssuer(t)
	_, addr := newAccount(t)
	for _, q := range []string{"", "?address=nope", "?address=" + addr.Hex() + "&address=" + addr.Hex(), "?address=" + badChecksum(addr)} {
		w := httptest.NewRecorder()
		iss.ChallengeHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/auth/challenge"+q, nil))
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != 400 || e.Error.Code != CodeInvalidRequest || e.Error.Message == "" {
			t.Errorf("%q: %d %s", q, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	iss.ChallengeHandler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/auth/challenge?address="+addr.Hex(), nil))
	if w.Code != 405 {
		t.Errorf("POST: %d", w.Code)
	}
}

func TestFromRequest(t *testing.T) {
	iss, c := newTestIssuer(t)
	_, addr := newAccount(t)
	tok, _ := iss.issue(addr, t0)
	tests := []struct {
		name   string
		header []string
		want   error
	}{
		{"a request without Authorization has no token", nil, ErrNoToken},
		{"a request with Basic credentials has no bearer token", []string{"Basic dXNlcjpwYXNz"}, ErrNoToken},
		{"an empty bearer token is invalid", []string{"Bearer "}, ErrInvalidToken},
		{"two Authorization headers are invalid", []string{"Bearer " + tok.AccessToken, "Bearer " + tok.AccessToken}, ErrInvalidToken},
		{"a token with two spaces before it is invalid", []string{"Bearer  " + tok.AccessToken}, ErrInvalidToken},
		{"a garbage token is invalid", []string{"Bearer abc"}, ErrInvalidToken},
		{"a valid token is accepted", []string{"Bearer " + tok.AccessToken}, nil},
		{"the scheme is case-insensitive", []string{"bearer " + tok.AccessToken}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tt.header {
				r.Header.Add("Authorization", h)
			}
			claims, err := iss.FromRequest(r)
			if tt.want == nil {
				if err != nil || claims.Subject != addr {
					t.Fatalf("%v %+v", err, claims)
				}
				return
			}
			if !errors.Is(err, tt.want) || CodeOf(err) != CodeUnauthenticated {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}

	// Middleware answers 401 with an RFC 6750 challenge; an expired token says invalid_token.
	mux := newMux(iss)
	c.now = t0.Add(time.Hour)
	r := httptest.NewRequest(http.MethodGet, "/v1/me", nil)
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) ||
		!strings.Contains(w.Body.String(), `"code":"unauthenticated"`) || strings.Contains(w.Body.String(), tok.AccessToken) {
		t.Fatalf("expired: %d %v %s", w.Code, w.Header(), w.Body)
	}
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/me", nil))
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Bearer realm="glovebox"` {
		t.Fatalf("missing: %d %v %s", w.Code, w.Header(), w.Body)
	}
}
