package connect

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/connect/flowstate"
	"github.com/glovebox/glovebox/ledger"
)

// TokenResponse is the token endpoint's answer to the authorization_code and refresh_token grants (RFC
// 6749 §5.1, OpenID Connect Core §3.1.3.3).
type TokenResponse struct {
	AccessToken  string `json:"access_token"` // ES256 JWT; sub is the app, owner the driver (auth.Delegation)
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token,omitempty"` // when openid was granted
	Scope        string `json:"scope"`
}

// IDClaims are the claims of an ID token beyond the registered ones.
type IDClaims struct {
	Nonce    string   `json:"nonce,omitempty"`
	AuthTime int64    `json:"auth_time"`
	AZP      string   `json:"azp"`
	Vehicles []uint64 `json:"vehicles"` // the vehicles the driver granted in this flow
}

// client authenticates the client of a token or revocation request: private_key_jwt (client_assertion
// signed ES256K by the app key), or a public client naming itself with client_id (in the body, or as the
// user name of HTTP Basic with an empty password, as some libraries send it). It returns the app and the
// client_id as sent.
func (p *Provider) client(r *http.Request, form url.Values) (common.Address, string, error) {
	invalid := func(format string, args ...any) (common.Address, string, error) {
		return common.Address{}, "", auth.Errorf(auth.CodeInvalidClient, format, args...)
	}
	id := form.Get("client_id")
	if form.Get("client_secret") != "" { // client_secret_post (RFC 6749 §2.3.1); empty, as Basic's password, is none
		return invalid("clients have no secrets here: authenticate with private_key_jwt or none")
	}
	if user, pass, ok := r.BasicAuth(); ok {
		u, err1 := url.QueryUnescape(user)
		pw, err2 := url.QueryUnescape(pass)
		switch {
		case err1 != nil || err2 != nil:
			return invalid("the Authorization header is malformed")
		case pw != "":
			return invalid("clients have no secrets here: authenticate with private_key_jwt or none")
		case id != "" && id != u:
			return invalid("client_id differs from the Authorization header")
		}
		id = u
	}
	if a := form.Get("client_assertion"); a != "" || form.Get("client_assertion_type") != "" {
		if form.Get("client_assertion_type") != ClientAssertionType {
			return invalid("client_assertion_type must be %s", ClientAssertionType)
		}
		ca, err := ParseClientAssertion(a, []string{p.iss.URL() + PathToken, p.iss.URL() + PathRevoke, p.iss.URL()}, p.iss.Now())
		if err != nil {
			return invalid("%s", err.Error())
		}
		if id != "" {
			if a, err := ledger.ParseAddress(id); err != nil || a != ca.Client {
				return invalid("client_id is not the client assertion's iss")
			}
		} else {
			id = ca.Client.Hex()
		}
		if _, ok := p.app(ca.Client); !ok {
			return invalid("no app %s is registered", ca.Client.Hex())
		}
		key := ca.Client.Hex() + " " + ca.ID
		fresh, err := p.store.UseAssertion(r.Context(), key, ca.Expiry, p.iss.Now())
		if err != nil {
			return common.Address{}, "", fmt.Errorf("connect: couldn't record a client assertion: %w", err)
		}
		if !fresh {
			return invalid("the client assertion's jti was used before")
		}
		return ca.Client, id, nil
	}
	if id == "" {
		return invalid("name the client: client_id, or a private_key_jwt client_assertion")
	}
	a, err := ledger.ParseAddress(id)
	if err != nil {
		return invalid("client_id is not an app address")
	}
	if _, ok := p.app(a); !ok {
		return invalid("no app %s is registered", a.Hex())
	}
	return a, id, nil
}

// exchangeCode is the authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.5). A code works once,
// within CodeTTL, for the client and redirect URI it was issued to, with the verifier of its challenge.
// Presenting a used code revokes every token issued from it (RFC 6749 §4.1.2).
func (p *Provider) exchangeCode(r *http.Request, form url.Values) (any, error) {
	app, clientID, err := p.client(r, form)
	if err != nil {
		return nil, err
	}
	code, verifier, redirect := form.Get("code"), form.Get("code_verifier"), form.Get("redirect_uri")
	switch {
	case code == "":
		return nil, auth.Errorf(auth.CodeInvalidRequest, "code is missing")
	case redirect == "":
		return nil, auth.Errorf(auth.CodeInvalidRequest, "redirect_uri is missing")
	case verifier == "":
		return nil, auth.Errorf(auth.CodeInvalidRequest, "code_verifier is missing (PKCE is required)")
	case !isVerifier(verifier):
		return nil, auth.Errorf(auth.CodeInvalidRequest, "code_verifier must be 43 to 128 unreserved characters")
	}
	now := p.iss.Now()
	g, ok, err := p.store.Code(r.Context(), code, now)
	if err != nil {
		return nil, fmt.Errorf("connect: couldn't read a code: %w", err)
	}
	if !ok {
		return nil, auth.Errorf(auth.CodeInvalidGrant, "the code is unknown or expired")
	}
	req, err := decodeRequest(g.Request)
	if err != nil {
		return nil, err
	}
	switch {
	case req.App != app:
		return nil, auth.Errorf(auth.CodeInvalidGrant, "the code was issued to another client")
	case g.Used:
		return nil, p.reused(r.Context(), g.Family, "the code was used before; the tokens issued from it are revoked")
	}
	// A refused exchange changes nothing: the code stays usable by the client that holds the verifier
	// (256 bits at least: it cannot be guessed by retrying).
	sum := sha256.Sum256([]byte(verifier))
	switch {
	case !now.Before(g.Deadline):
		return nil, auth.Errorf(auth.CodeInvalidGrant, "the code expired (codes live %s)", CodeTTL)
	case redirect != req.RedirectURI:
		return nil, auth.Errorf(auth.CodeInvalidGrant, "redirect_uri is not the one of the authorization request")
	case subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(req.CodeChallenge)) != 1:
		return nil, auth.Errorf(auth.CodeInvalidGrant, "code_verifier does not match the code_challenge")
	}
	fam, err := secret()
	if err != nil {
		return nil, err
	}
	won, err := p.store.RedeemCode(r.Context(), code, fam, now)
	if err != nil {
		return nil, fmt.Errorf("connect: couldn't redeem a code: %w", err)
	}
	if !won {
		// Another exchange of the same code got there first: this one is its reuse.
		if g, ok, err := p.store.Code(r.Context(), code, now); err == nil && ok && g.Used {
			return nil, p.reused(r.Context(), g.Family, "the code was used before; the tokens issued from it are revoked")
		}
		return nil, auth.Errorf(auth.CodeInvalidGrant, "the code is unknown or expired")
	}
	req.ClientID = clientID
	return p.issue(r.Context(), fam, req, g.Owner, g.Vehicles, g.AuthTime, true)
}

// reused revokes the family of a code or refresh token presented again and returns the refusal.
func (p *Provider) reused(ctx context.Context, fam, msg string) error {
	if err := p.revokeFamily(ctx, fam); err != nil {
		return err
	}
	return auth.Errorf(auth.CodeInvalidGrant, "%s", msg)
}

// exchangeRefresh is the refresh_token grant (RFC 6749 §6). Refresh tokens rotate: each works once, and
// presenting a used one revokes its whole family. The scope may be narrowed, never widened.
func (p *Provider) exchangeRefresh(r *http.Request, form url.Values) (any, error) {
	app, clientID, err := p.client(r, form)
	if err != nil {
		return nil, err
	}
	tok := form.Get("refresh_token")
	if tok == "" {
		return nil, auth.Errorf(auth.CodeInvalidRequest, "refresh_token is missing")
	}
	now := p.iss.Now()
	h := hashOf(tok)
	rt, ok, err := p.store.Refresh(r.Context(), h, now)
	if err != nil {
		return nil, fmt.Errorf("connect: couldn't read a refresh token: %w", err)
	}
	if !ok {
		return nil, auth.Errorf(auth.CodeInvalidGrant, "the refresh token is unknown, expired or revoked")
	}
	granted, err := decodeRequest(rt.Request)
	if err != nil {
		return nil, err
	}
	switch {
	case granted.App != app:
		return nil, auth.Errorf(auth.CodeInvalidGrant, "the refresh token was issued to another client")
	case rt.Used:
		return nil, p.reused(r.Context(), rt.Family, "the refresh token was used before; every token issued with it is revoked")
	}
	req := *granted
	req.ClientID = clientID
	if s := form.Get("scope"); s != "" {
		narrowed, err := ParseScope(s)
		if err != nil {
			return nil, auth.Errorf(auth.CodeInvalidScope, "%s", err.Error())
		}
		for _, perm := range narrowed.Permissions() {
			if !slices.Contains(granted.Scope.Permissions(), perm) {
				return nil, auth.Errorf(auth.CodeInvalidScope, "the scope may only be narrowed")
			}
		}
		if narrowed.OpenID && !granted.Scope.OpenID {
			return nil, auth.Errorf(auth.CodeInvalidScope, "the scope may only be narrowed")
		}
		req.Scope = narrowed
	}
	won, err := p.store.UseRefresh(r.Context(), h, now)
	if err != nil {
		return nil, fmt.Errorf("connect: couldn't use a refresh token: %w", err)
	}
	if !won {
		// Another exchange of the same token got there first: this one is its reuse.
		return nil, p.reused(r.Context(), rt.Family, "the refresh token was used before; every token issued with it is revoked")
	}
	return p.issue(r.Context(), rt.Family, &req, rt.Owner, rt.Vehicles, now, false)
}

// issue signs an access token, a refresh token and, for openid at the code exchange, an ID token, into
// the family fam. The store records the access token's id and the refresh token before they are handed
// out; a family revoked meanwhile gets nothing.
func (p *Provider) issue(ctx context.Context, fam string, req *AuthorizeRequest, owner common.Address, vehicles []uint64, authTime time.Time, withID bool) (any, error) {
	scope := req.Scope.String()
	at, jti, exp, err := p.iss.IssueDelegated(req.App, auth.Delegation{ClientID: req.ClientID, Owner: owner, Scope: scope})
	if err != nil {
		return nil, err
	}
	rtok, err := secret()
	if err != nil {
		return nil, err
	}
	enc, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	now := p.iss.Now()
	err = p.store.Issue(ctx, fam, flowstate.Access{ID: jti, Expiry: exp}, hashOf(rtok),
		flowstate.Refresh{Request: enc, Owner: owner, Vehicles: vehicles, Deadline: now.Add(RefreshTTL)}, now)
	if errors.Is(err, flowstate.ErrRevoked) {
		// The access token was signed but is never handed out; revoking it here is belt and braces.
		p.iss.Revoke(jti, exp)
		return nil, auth.Errorf(auth.CodeInvalidGrant, "the tokens of this grant were revoked meanwhile")
	}
	if err != nil {
		return nil, fmt.Errorf("connect: couldn't record the tokens: %w", err)
	}
	out := TokenResponse{AccessToken: at.AccessToken, TokenType: "Bearer", ExpiresIn: at.ExpiresIn, RefreshToken: rtok, Scope: scope}
	if withID && req.Scope.OpenID {
		t := now.Truncate(time.Second)
		out.IDToken, err = p.iss.SignJWT(jwt.Claims{
			Issuer:   p.iss.URL(),
			Subject:  owner.Hex(),
			Audience: jwt.Audience{req.ClientID},
			IssuedAt: jwt.NewNumericDate(t),
			Expiry:   jwt.NewNumericDate(t.Add(IDTokenTTL)),
		}, IDClaims{Nonce: req.Nonce, AuthTime: authTime.Unix(), AZP: req.ClientID, Vehicles: vehicles})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// revokeFamily revokes every refresh token of the family fam in the store, and its access tokens in the
// issuer.
func (p *Provider) revokeFamily(ctx context.Context, fam string) error {
	access, err := p.store.RevokeFamily(ctx, fam, p.iss.Now())
	if err != nil {
		return fmt.Errorf("connect: couldn't revoke a token family: %w", err)
	}
	for _, a := range access {
		p.iss.Revoke(a.ID, a.Expiry)
	}
	return nil
}

// revoke serves POST /oauth/revoke (RFC 7009): the client revokes one of its refresh tokens (and with it
// every token of its family) or access tokens. Unknown and invalid tokens are answered 200, as §2.2 says.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	form, err := auth.ReadForm(w, r)
	if err != nil {
		auth.WriteOAuthError(w, http.StatusBadRequest, auth.CodeInvalidRequest, err.Error())
		return
	}
	app, _, err := p.client(r, form)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="glovebox"`)
		auth.WriteOAuthError(w, http.StatusUnauthorized, auth.CodeInvalidClient, strings.TrimPrefix(err.Error(), auth.CodeInvalidClient+": "))
		return
	}
	tok := form.Get("token")
	if tok == "" {
		auth.WriteOAuthError(w, http.StatusBadRequest, auth.CodeInvalidRequest, "token is missing")
		return
	}
	switch form.Get("token_type_hint") {
	case "", "refresh_token", "access_token":
	default:
		auth.WriteOAuthError(w, http.StatusBadRequest, "unsupported_token_type", "token_type_hint is refresh_token or access_token")
		return
	}
	rt, ok, err := p.store.Refresh(r.Context(), hashOf(tok), p.iss.Now())
	var granted *AuthorizeRequest
	if err == nil && ok {
		granted, err = decodeRequest(rt.Request)
	}
	if err == nil && ok && granted.App != app {
		auth.WriteOAuthError(w, http.StatusBadRequest, auth.CodeInvalidRequest, "the token was issued to another client")
		return
	}
	if err == nil && ok {
		err = p.revokeFamily(r.Context(), rt.Family)
	}
	if err != nil {
		p.logger.Error("connect: couldn't revoke a refresh token", "err", err)
		auth.WriteOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "couldn't revoke the token now; try again")
		return
	}
	if c, err := p.iss.Verify(tok); err == nil && c.Delegation.Owner != (common.Address{}) {
		if c.Subject != app {
			auth.WriteOAuthError(w, http.StatusBadRequest, auth.CodeInvalidRequest, "the token was issued to another client")
			return
		}
		p.iss.Revoke(c.ID, c.Expiry)
		if err := p.store.RevokeAccess(r.Context(), flowstate.Access{ID: c.ID, Expiry: c.Expiry}, p.iss.Now()); err != nil {
			p.logger.Error("connect: couldn't record a revoked access token", "err", err)
			auth.WriteOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "couldn't revoke the token everywhere now; try again")
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// Userinfo is the answer of the userinfo endpoint (OpenID Connect Core §5.3.2).
type Userinfo struct {
	Sub      string   `json:"sub"`      // the driver who consented
	Vehicles []uint64 `json:"vehicles"` // their vehicles on which the app holds a grant in force now
}

// userinfo serves GET and POST /oauth/userinfo with an access token from the code flow whose scope has
// openid. Errors are RFC 6750 §3.1.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	c, err := p.iss.FromRequest(r)
	if err != nil {
		auth.WriteUnauthenticated(w, err)
		return
	}
	if c.Delegation.Owner == (common.Address{}) || !slices.Contains(strings.Split(c.Delegation.Scope, " "), ScopeOpenID) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="glovebox", error="insufficient_scope", scope="openid"`)
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "insufficient_scope", "error_description": "the token was not granted the openid scope"})
		return
	}
	out := Userinfo{Sub: c.Delegation.Owner.Hex(), Vehicles: []uint64{}}
	now := p.iss.Now().Unix()
	p.ledger.Read(func(s *ledger.State) {
		for _, id := range s.Account(c.Delegation.Owner).Vehicles {
			if g, ok := s.GrantOf(id, c.Subject); ok && g.ActiveAt(now) {
				out.Vehicles = append(out.Vehicles, id)
			}
		}
	})
	writeJSON(w, http.StatusOK, out)
}
