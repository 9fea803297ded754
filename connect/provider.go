package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/connect/flowstate"
	"github.com/glovebox/glovebox/ledger"
)

// Paths of the provider's endpoints, under the issuer URL.
const (
	PathDiscovery = "/.well-known/openid-configuration"
	PathAuthorize = "/oauth/authorize"
	PathDecision  = "/oauth/authorize/decision"
	PathDeny      = "/oauth/authorize/deny"
	PathToken     = "/oauth/token"
	PathUserinfo  = "/oauth/userinfo"
	PathRevoke    = "/oauth/revoke"
	PathJWKS      = "/.well-known/jwks.json"
	PathScript    = "/connect/consent.js"
)

// Grant types the provider adds to the token endpoint.
const (
	GrantTypeCode    = "authorization_code"
	GrantTypeRefresh = "refresh_token"
)

// IDTokenTTL is the lifetime of an ID token.
const IDTokenTTL = time.Hour

// Config configures a Provider.
type Config struct {
	// Issuer signs the tokens; its URL is the OpenID issuer. Required.
	Issuer *auth.Issuer
	// Ledger holds apps, vehicles and grants, and takes the grants drivers sign: the node's
	// *ledger.Sequencer, or a cluster process's view of the ledger. Required.
	Ledger Ledger
	// Store keeps open consent screens, codes, refresh tokens and used client assertion ids; nil means a
	// new flowstate.Memory (this process only). A cluster passes its PostgreSQL store, which every process
	// shares.
	Store flowstate.Store
	// Script is the consent page's JavaScript bundle (package web), served at PathScript. Required.
	Script []byte
	// Logger gets one line per refused or failed flow step at Debug level; nil means slog.Default().
	Logger *slog.Logger
}

// Ledger is what the provider needs of the ledger. *ledger.Sequencer implements it.
type Ledger interface {
	// Read calls f with the current state, which f must not keep.
	Read(f func(*ledger.State))
	// Domain is the EIP-712 domain grants are signed in.
	Domain() *ledger.Domain
	// Submit sequences transactions and returns once they are durable in the log (or refused).
	Submit(ctx context.Context, txs []*ledger.Tx, signers [][]common.Address) ([]ledger.Outcome, error)
}

var _ Ledger = (*ledger.Sequencer)(nil)

// Provider is the OpenID Provider of one node, or of one api process of a cluster. It is safe for
// concurrent use; its mutable state is in store, which guards it.
type Provider struct {
	iss    *auth.Issuer
	ledger Ledger
	script []byte
	logger *slog.Logger
	store  flowstate.Store
	mux    *http.ServeMux
}

// pending is an open consent screen, decoded from the store.
type pending struct {
	req       *AuthorizeRequest
	expiresAt int64 // unix seconds the grants will carry: the request time + the requested duration
}

// NewProvider returns a Provider for cfg.
func NewProvider(cfg Config) (*Provider, error) {
	if cfg.Issuer == nil || cfg.Ledger == nil || len(cfg.Script) == 0 {
		return nil, errors.New("connect: Config.Issuer, Ledger and Script are required")
	}
	p := &Provider{iss: cfg.Issuer, ledger: cfg.Ledger, script: cfg.Script, logger: cfg.Logger, store: cfg.Store, mux: http.NewServeMux()}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	if p.store == nil {
		p.store = flowstate.NewMemory()
	}
	p.mux.Handle("GET "+PathDiscovery, CORS(http.HandlerFunc(p.discovery)))
	p.mux.HandleFunc("GET "+PathAuthorize, p.authorize)
	p.mux.HandleFunc("POST "+PathDecision, p.decision)
	p.mux.HandleFunc("POST "+PathDeny, p.deny)
	p.mux.Handle("GET "+PathUserinfo, CORS(http.HandlerFunc(p.userinfo)))
	p.mux.Handle("POST "+PathUserinfo, CORS(http.HandlerFunc(p.userinfo)))
	p.mux.Handle("POST "+PathRevoke, CORS(http.HandlerFunc(p.revoke)))
	for _, path := range []string{PathDiscovery, PathUserinfo, PathRevoke} {
		p.mux.Handle("OPTIONS "+path, CORS(http.NotFoundHandler()))
	}
	p.mux.HandleFunc("GET "+PathScript, p.serveScript)
	// The same paths with any other method: the API's JSON 405.
	for _, path := range Paths() {
		p.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": map[string]string{
				"code": "method_not_allowed", "message": r.Method + " is not allowed on " + r.URL.Path}})
		})
	}
	return p, nil
}

// Paths lists the paths Handler serves (each with the methods above), for the API's router.
func Paths() []string {
	return []string{PathDiscovery, PathAuthorize, PathDecision, PathDeny, PathUserinfo, PathRevoke, PathScript}
}

// Handler serves every endpoint but the token endpoint and the key set, which package auth serves (with
// TokenGrants added).
func (p *Provider) Handler() http.Handler { return p.mux }

// TokenGrants returns the grant types the provider adds to auth.Issuer.TokenHandler.
func (p *Provider) TokenGrants() map[string]auth.GrantHandler {
	return map[string]auth.GrantHandler{GrantTypeCode: p.exchangeCode, GrantTypeRefresh: p.exchangeRefresh}
}

// Discovery is the OpenID Provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414).
type Discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported"`
	AuthorizationResponseIssParameter bool     `json:"authorization_response_iss_parameter_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	ServiceDocumentation              string   `json:"service_documentation,omitempty"`
}

// Metadata returns the provider's discovery document.
func (p *Provider) Metadata() Discovery {
	base := p.iss.URL()
	return Discovery{
		Issuer:                            base,
		AuthorizationEndpoint:             base + PathAuthorize,
		TokenEndpoint:                     base + PathToken,
		UserinfoEndpoint:                  base + PathUserinfo,
		RevocationEndpoint:                base + PathRevoke,
		JWKSURI:                           base + PathJWKS,
		ScopesSupported:                   ScopeNames(),
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{GrantTypeCode, GrantTypeRefresh, auth.GrantTypeSIWE},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{"ES256"},
		TokenEndpointAuthMethodsSupported: []string{"none", "private_key_jwt"},
		TokenEndpointAuthSigningAlgs:      []string{AssertionAlg},
		RevocationEndpointAuthMethods:     []string{"none", "private_key_jwt"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		ClaimsSupported:                   []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "vehicles"},
		PromptValuesSupported:             []string{"consent", "login", "select_account"},
		AuthorizationResponseIssParameter: true,
	}
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, p.Metadata())
}

func (p *Provider) serveScript(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(p.script)
}

// app looks an app up in the current state.
func (p *Provider) app(a common.Address) (ledger.App, bool) {
	var out ledger.App
	var ok bool
	p.ledger.Read(func(s *ledger.State) { out, ok = s.App(a) })
	return out, ok
}

// authorize serves GET /oauth/authorize: the consent screen, or an error shown (untrusted client or
// redirect URI) or sent back to the app.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	req, aerr := ParseAuthorizeRequest(r.URL.Query(), p.app)
	if aerr != nil {
		p.logger.Debug("connect: authorization request refused", "code", aerr.Code, "why", aerr.Description)
		if !aerr.Redirect {
			p.errorPage(w, http.StatusBadRequest, aerr)
			return
		}
		http.Redirect(w, r, p.errorRedirect(aerr.RedirectURI, aerr.Code, aerr.Description, aerr.State), http.StatusFound)
		return
	}
	id, err := secret()
	if err != nil {
		p.errorPage(w, http.StatusInternalServerError, &AuthorizeError{Code: "server_error", Description: "couldn't open a consent screen"})
		return
	}
	now := p.iss.Now()
	pd := &pending{req: req, expiresAt: now.Add(req.Duration).Unix()}
	enc, err := encodeRequest(req)
	if err == nil {
		err = p.store.AddPending(r.Context(), id, flowstate.Pending{Request: enc, ExpiresAt: pd.expiresAt, Deadline: now.Add(PendingTTL)}, now)
	}
	if err != nil {
		p.logger.Error("connect: couldn't open a consent screen", "err", err)
		p.errorPage(w, http.StatusServiceUnavailable, &AuthorizeError{Code: "temporarily_unavailable", Description: "couldn't open a consent screen; try again"})
		return
	}
	p.consentPage(w, id, pd)
}

func (p *Provider) errorRedirect(redirectURI, code, desc, state string) string {
	q := url.Values{"error": {code}, "error_description": {desc}, "iss": {p.iss.URL()}}
	if state != "" {
		q.Set("state", state)
	}
	return RedirectURL(redirectURI, q)
}

// takePending removes and returns the open consent screen id, if it is still open.
func (p *Provider) takePending(ctx context.Context, id string) (*pending, bool, error) {
	sp, ok, err := p.store.TakePending(ctx, id, p.iss.Now())
	return p.decodePending(sp, ok, err)
}

// peekPending returns the open consent screen id without closing it.
func (p *Provider) peekPending(ctx context.Context, id string) (*pending, bool, error) {
	sp, ok, err := p.store.Pending(ctx, id, p.iss.Now())
	return p.decodePending(sp, ok, err)
}

func (p *Provider) decodePending(sp flowstate.Pending, ok bool, err error) (*pending, bool, error) {
	if err != nil || !ok {
		return nil, false, err
	}
	req, err := decodeRequest(sp.Request)
	if err != nil {
		return nil, false, err
	}
	return &pending{req: req, expiresAt: sp.ExpiresAt}, true, nil
}

// deny serves POST /oauth/authorize/deny (the consent screen's Deny button, a plain form): the app gets
// error=access_denied.
func (p *Provider) deny(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, http.StatusBadRequest, &AuthorizeError{Code: "invalid_request", Description: "couldn't read the form"})
		return
	}
	pd, ok, err := p.takePending(r.Context(), r.PostForm.Get("request"))
	if err != nil {
		p.logger.Error("connect: couldn't read a consent screen", "err", err)
		p.errorPage(w, http.StatusServiceUnavailable, &AuthorizeError{Code: "temporarily_unavailable", Description: "try again"})
		return
	}
	if !ok {
		p.errorPage(w, http.StatusBadRequest, &AuthorizeError{Code: CodeRequestExpired, Description: "this request was already answered or is too old; go back to the app and start again"})
		return
	}
	http.Redirect(w, r, p.errorRedirect(pd.req.RedirectURI, "access_denied", "the driver denied access", pd.req.State), http.StatusSeeOther)
}

// Stable codes of the decision endpoint (the consent screen's own API).
const (
	CodeRequestExpired = "request_expired" // the consent screen is unknown, answered or older than PendingTTL
	CodeGrantMismatch  = "grant_mismatch"  // a signed grant is not the one the screen showed
	CodeNotOwner       = "not_owner"       // the signer does not own a chosen vehicle
	CodeNotGranted     = "not_granted"     // "continue" without a grant in force that covers the request
)

// ErrorCodes documents the decision endpoint's own codes; it also answers invalid_request, invalid_grant
// (a refused sign-in), the ledger's codes for a grant the log refused, and unavailable.
var ErrorCodes = []auth.ErrorCode{
	{Code: CodeRequestExpired, Status: http.StatusBadRequest, Description: "the consent screen is unknown, already answered or older than 15 minutes; start again from the app"},
	{Code: CodeGrantMismatch, Status: http.StatusBadRequest, Description: "a signed grant is not the one the consent screen showed (app, permissions, purpose, terms or expiry differ)"},
	{Code: CodeNotGranted, Status: http.StatusBadRequest, Description: "a sign-in to continue, but the owner's grants in force do not cover the request"},
}

// DecisionRequest is the body of POST /oauth/authorize/decision. Either Grants (Allow: one signed Grant
// per chosen vehicle, in the POST /v1/transactions format) or Message and Signature (an EIP-4361 sign-in,
// to continue with grants the driver made before).
type DecisionRequest struct {
	Request   string            `json:"request"`
	Grants    []json.RawMessage `json:"grants,omitempty"`
	Message   string            `json:"message,omitempty"`
	Signature string            `json:"signature,omitempty"`
}

// DecisionResponse is the answer: where the browser goes next, with the code.
type DecisionResponse struct {
	Redirect string `json:"redirect"`
}

// maxGrants bounds the vehicles of one decision.
const maxGrants = 100

// decision serves POST /oauth/authorize/decision. A code is issued only against the owner's signatures:
// the grants, durable in the log, or a sign-in by an owner whose grants in force already cover the
// request. A refused decision changes nothing and leaves the screen open.
func (p *Provider) decision(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, msg string) {
		p.logger.Debug("connect: decision refused", "code", code, "why", msg)
		writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
	}
	if mt := r.Header.Get("Content-Type"); !strings.HasPrefix(mt, "application/json") {
		fail(http.StatusUnsupportedMediaType, "invalid_request", "send application/json")
		return
	}
	var d DecisionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxGrants*ledger.MaxTxJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "bad JSON")
		return
	}
	pd, ok, err := p.peekPending(r.Context(), d.Request)
	if err != nil {
		p.logger.Error("connect: couldn't read a consent screen", "err", err)
		fail(http.StatusServiceUnavailable, "unavailable", "try again")
		return
	}
	if !ok {
		fail(http.StatusBadRequest, CodeRequestExpired, "this request was already answered or is too old; go back to the app and start again")
		return
	}
	req := pd.req
	var owner common.Address
	var vehicles []uint64
	switch {
	case len(d.Grants) > 0 && d.Message == "" && d.Signature == "":
		if len(d.Grants) > maxGrants {
			fail(http.StatusBadRequest, "invalid_request", fmt.Sprintf("at most %d vehicles at once", maxGrants))
			return
		}
		txs, signers, o, ids, code, msg := p.checkGrants(pd, d.Grants)
		if code != "" {
			status := http.StatusBadRequest
			if code == CodeNotOwner {
				status = http.StatusForbidden
			}
			fail(status, code, msg)
			return
		}
		out, err := p.ledger.Submit(r.Context(), txs, signers)
		if err != nil {
			fail(http.StatusServiceUnavailable, "unavailable", "the log is not taking transactions now; try again")
			return
		}
		for _, res := range out {
			if res.Err != nil {
				var le *ledger.Error
				if errors.As(res.Err, &le) {
					fail(http.StatusBadRequest, string(le.Code), le.Message)
				} else {
					fail(http.StatusInternalServerError, "internal", "couldn't record the permission")
				}
				return
			}
		}
		owner, vehicles = o, ids
		p.logger.Info("connect: grants recorded", "app", req.App.Hex(), "owner", owner.Hex(), "vehicles", vehicles,
			"permissions", req.Scope.Permissions(), "first_entry", out[0].Index)
	case len(d.Grants) == 0 && d.Message != "" && d.Signature != "":
		m, err := auth.ParseSIWE(d.Message)
		if err != nil {
			fail(http.StatusBadRequest, "invalid_request", "the sign-in message does not parse")
			return
		}
		if _, err := p.iss.Exchange(r.Context(), d.Message, d.Signature); err != nil {
			fail(http.StatusBadRequest, auth.CodeInvalidGrant, "the sign-in was refused: "+err.Error())
			return
		}
		owner = m.Address
		now := p.iss.Now().Unix()
		p.ledger.Read(func(s *ledger.State) {
			for _, id := range s.Account(owner).Vehicles {
				if g, ok := s.GrantOf(id, req.App); ok && g.ActiveAt(now) && req.Scope.covers(g.Permissions) {
					vehicles = append(vehicles, id)
				}
			}
		})
		if len(vehicles) == 0 {
			fail(http.StatusBadRequest, CodeNotGranted, "you have not allowed this app this access yet")
			return
		}
	default:
		fail(http.StatusBadRequest, "invalid_request", "send either grants, or message and signature")
		return
	}
	if _, ok, err := p.takePending(r.Context(), d.Request); err != nil || !ok {
		if err != nil {
			p.logger.Error("connect: couldn't close a consent screen", "err", err)
			fail(http.StatusServiceUnavailable, "unavailable", "try again")
			return
		}
		fail(http.StatusBadRequest, CodeRequestExpired, "this request was already answered")
		return
	}
	code, err := secret()
	if err != nil {
		fail(http.StatusInternalServerError, "internal", "couldn't make a code")
		return
	}
	now := p.iss.Now()
	enc, err := encodeRequest(req)
	if err == nil {
		err = p.store.AddCode(r.Context(), code, flowstate.Code{Request: enc, Owner: owner, Vehicles: vehicles, AuthTime: now,
			Deadline: now.Add(CodeTTL)}, now)
	}
	if err != nil {
		p.logger.Error("connect: couldn't record a code", "err", err)
		fail(http.StatusServiceUnavailable, "unavailable", "couldn't record the code; start again from the app")
		return
	}
	q := url.Values{"code": {code}, "iss": {p.iss.URL()}}
	if req.State != "" {
		q.Set("state", req.State)
	}
	writeJSON(w, http.StatusOK, DecisionResponse{Redirect: RedirectURL(req.RedirectURI, q)})
}

// checkGrants checks that each raw transaction is the Grant the screen showed (this app, exactly the
// requested permissions, purpose, terms and expiry), signed by one account that owns every chosen
// vehicle, each vehicle once. It returns the transactions and signers for the sequencer, or a code and
// message.
func (p *Provider) checkGrants(pd *pending, raws []json.RawMessage) (txs []*ledger.Tx, signers [][]common.Address, owner common.Address, ids []uint64, code, msg string) {
	req := pd.req
	want := req.Scope.Permissions()
	for i, raw := range raws {
		tx, err := ledger.DecodeTxJSON(raw)
		if err != nil {
			return nil, nil, owner, nil, "invalid_request", fmt.Sprintf("grant %d: %v", i, err)
		}
		got := slices.Clone(tx.Permissions)
		slices.Sort(got)
		w := slices.Clone(want)
		slices.Sort(w)
		switch {
		case tx.Type != ledger.TypeGrant:
			return nil, nil, owner, nil, CodeGrantMismatch, fmt.Sprintf("transaction %d is a %s, not a Grant", i, tx.Type)
		case tx.App != req.App:
			return nil, nil, owner, nil, CodeGrantMismatch, fmt.Sprintf("grant %d is for another app", i)
		case !slices.Equal(got, w):
			return nil, nil, owner, nil, CodeGrantMismatch, fmt.Sprintf("grant %d names other permissions than the app asked for", i)
		case tx.Purpose != req.Purpose || tx.TermsURI != req.TermsURI:
			return nil, nil, owner, nil, CodeGrantMismatch, fmt.Sprintf("grant %d has another purpose or terms than the app gave", i)
		case !tx.ExpiresAt.IsUint64() || tx.ExpiresAt.Uint64() != uint64(pd.expiresAt):
			return nil, nil, owner, nil, CodeGrantMismatch, fmt.Sprintf("grant %d ends at another time than the screen showed", i)
		case !tx.VehicleID.IsUint64():
			return nil, nil, owner, nil, CodeNotOwner, fmt.Sprintf("grant %d: no such vehicle", i)
		}
		s, err := p.ledger.Domain().Signers(tx)
		if err != nil || len(s) != 1 {
			return nil, nil, owner, nil, "bad_signature", fmt.Sprintf("grant %d: the signature does not recover", i)
		}
		if i == 0 {
			owner = s[0]
		} else if s[0] != owner {
			return nil, nil, owner, nil, CodeNotOwner, "every grant must be signed by the same owner"
		}
		id := tx.VehicleID.Uint64()
		if slices.Contains(ids, id) {
			return nil, nil, owner, nil, "invalid_request", fmt.Sprintf("vehicle %d is chosen twice", id)
		}
		ids = append(ids, id)
		txs, signers = append(txs, tx), append(signers, s)
	}
	var bad uint64
	var found bool
	p.ledger.Read(func(s *ledger.State) {
		for _, id := range ids {
			v, ok := s.Vehicle(id)
			if !ok || v.Burned || !strings.EqualFold(v.Owner, owner.Hex()) {
				bad, found = id, true
				return
			}
		}
	})
	if found {
		return nil, nil, owner, nil, CodeNotOwner, fmt.Sprintf("%s does not own vehicle %d", owner.Hex(), bad)
	}
	return txs, signers, owner, ids, "", ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"couldn't encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
