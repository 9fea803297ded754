package connect

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/ledger"
)

// Limits of an authorization request.
const (
	// DefaultDuration is how long a grant lasts when the request names no duration.
	DefaultDuration = 90 * 24 * time.Hour
	// MaxDuration is the longest duration a request may ask for.
	MaxDuration = 366 * 24 * time.Hour
	// MinDuration is the shortest.
	MinDuration = time.Hour
	// maxParam bounds each parameter of an authorization request, in bytes.
	maxParam = 2048
)

// AuthorizeRequest is a checked authorization request (RFC 6749 §4.1.1 with RFC 7636 PKCE and OpenID
// Connect Core §3.1.2.1), plus Glovebox's purpose, terms_uri and duration.
type AuthorizeRequest struct {
	ClientID      string         // as the client sent it; the app's address in any case
	App           common.Address // the app
	AppName       string         // from the app's registration in the log
	RedirectURI   string         // exactly one of the app's registered redirect URIs
	Scope         ScopeSet
	State         string // opaque, returned as is; may be empty
	Nonce         string // OpenID Connect nonce, put in the ID token; may be empty
	CodeChallenge string // RFC 7636 S256 challenge: base64url of SHA-256 of the verifier, 43 characters
	Purpose       string // why the app asks, shown to the driver and signed into the grant
	TermsURI      string // the app's terms, shown and signed into the grant; may be empty
	Duration      time.Duration
}

// AuthorizeError is a refused authorization request. When Redirect is false the client or redirect URI
// could not be trusted, and the error is shown to the driver and never sent to the redirect URI (RFC 6749
// §4.1.2.1); otherwise it goes back to RedirectURI as error, error_description and state.
type AuthorizeError struct {
	Code        string // an RFC 6749 §4.1.2.1 / OpenID Connect §3.1.2.6 error code
	Description string
	Redirect    bool
	RedirectURI string // when Redirect
	State       string // when Redirect
}

func (e *AuthorizeError) Error() string { return e.Code + ": " + e.Description }

// NoPurpose is the purpose of a request that names none; the consent screen says it plainly.
const NoPurpose = "The app did not say why it wants this."

// ParseAuthorizeRequest checks the query of an authorization request. app looks up a registered app by
// address. The client and redirect URI are checked first, and errors about them are never redirected.
// Unknown parameters are ignored (RFC 6749 §3.1); none may be repeated.
func ParseAuthorizeRequest(q url.Values, app func(common.Address) (ledger.App, bool)) (*AuthorizeRequest, *AuthorizeError) {
	page := func(code, format string, args ...any) (*AuthorizeRequest, *AuthorizeError) {
		return nil, &AuthorizeError{Code: code, Description: fmt.Sprintf(format, args...)}
	}
	one := func(name string) (string, bool) {
		v := q[name]
		if len(v) > 1 {
			return "", false
		}
		if len(v) == 0 {
			return "", true
		}
		return v[0], true
	}
	clientID, ok := one("client_id")
	if !ok {
		return page("invalid_request", "client_id is repeated")
	}
	if clientID == "" {
		return page("invalid_request", "client_id is missing")
	}
	addr, err := ledger.ParseAddress(clientID)
	if err != nil {
		return page("invalid_client", "client_id %q is not an app address", clip(clientID))
	}
	a, found := app(addr)
	if !found {
		return page("invalid_client", "no app %s is registered in this node's log", addr.Hex())
	}
	redirect, ok := one("redirect_uri")
	if !ok {
		return page("invalid_request", "redirect_uri is repeated")
	}
	if redirect == "" {
		return page("invalid_request", "redirect_uri is missing")
	}
	registered := false
	for _, u := range a.RedirectURIs {
		if u == redirect {
			registered = true
		}
	}
	if !registered {
		return page("invalid_request", "redirect_uri %q is not one of the app's registered redirect URIs", clip(redirect))
	}
	r := &AuthorizeRequest{ClientID: clientID, App: addr, AppName: a.Name, RedirectURI: redirect}
	state, ok := one("state")
	if !ok {
		return r.fail("invalid_request", "state is repeated", "")
	}
	r.State = state
	fail := func(code, format string, args ...any) (*AuthorizeRequest, *AuthorizeError) {
		return r.fail(code, fmt.Sprintf(format, args...), state)
	}
	vals := map[string]string{}
	for _, name := range []string{"response_type", "scope", "nonce", "code_challenge", "code_challenge_method",
		"purpose", "terms_uri", "duration", "prompt", "request", "request_uri", "response_mode"} {
		v, ok := one(name)
		if !ok {
			return fail("invalid_request", "%s is repeated", name)
		}
		if len(v) > maxParam || !utf8.ValidString(v) {
			return fail("invalid_request", "%s is longer than %d bytes or not UTF-8", name, maxParam)
		}
		vals[name] = v
	}
	if len(state) > maxParam || !utf8.ValidString(state) {
		return fail("invalid_request", "state is longer than %d bytes or not UTF-8", maxParam)
	}
	switch {
	case vals["request"] != "":
		return fail("request_not_supported", "request objects are not supported")
	case vals["request_uri"] != "":
		return fail("request_uri_not_supported", "request_uri is not supported")
	case vals["response_type"] == "":
		return fail("invalid_request", "response_type is missing")
	case vals["response_type"] != "code":
		return fail("unsupported_response_type", "only response_type=code is supported")
	case vals["response_mode"] != "" && vals["response_mode"] != "query":
		return fail("invalid_request", "only response_mode=query is supported")
	}
	if r.Scope, err = ParseScope(vals["scope"]); err != nil {
		return fail("invalid_scope", "%s", err.Error())
	}
	for _, p := range strings.Split(vals["prompt"], " ") {
		switch p {
		case "", "consent", "login", "select_account":
		case "none":
			// Consent is always given by a signature the driver makes in the browser.
			return fail("interaction_required", "prompt=none is not possible: the driver signs every consent")
		default:
			return fail("invalid_request", "unknown prompt value %q", clip(p))
		}
	}
	r.Nonce = vals["nonce"]
	switch m := vals["code_challenge_method"]; {
	case vals["code_challenge"] == "":
		return fail("invalid_request", "code_challenge is required (PKCE, RFC 7636, method S256)")
	case m == "plain":
		return fail("invalid_request", "code_challenge_method plain is refused; use S256")
	case m != "S256":
		return fail("invalid_request", "code_challenge_method must be S256")
	case !isChallenge(vals["code_challenge"]):
		return fail("invalid_request", "code_challenge must be 43 base64url characters (SHA-256 of the verifier)")
	}
	r.CodeChallenge = vals["code_challenge"]
	r.Purpose = strings.TrimSpace(vals["purpose"])
	if r.Purpose == "" {
		r.Purpose = NoPurpose
	}
	if n := utf8.RuneCountInString(r.Purpose); n > ledger.MaxPurposeLen {
		return fail("invalid_request", "purpose is longer than %d characters", ledger.MaxPurposeLen)
	}
	for _, c := range r.Purpose {
		if c < 0x20 || c == 0x7f {
			return fail("invalid_request", "purpose has a control character")
		}
	}
	if c, ok := ledger.Invisible(r.Purpose); ok {
		return fail("invalid_request", "purpose holds the invisible character %U", c)
	}
	if t := vals["terms_uri"]; t != "" {
		u, err := url.Parse(t)
		if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || len(t) > ledger.MaxURILen {
			return fail("invalid_request", "terms_uri must be an absolute http(s) URL of at most %d bytes", ledger.MaxURILen)
		}
		r.TermsURI = t
	}
	r.Duration = DefaultDuration
	if d := vals["duration"]; d != "" {
		secs, err := strconv.ParseInt(d, 10, 64)
		if err != nil || strconv.FormatInt(secs, 10) != d || secs < int64(MinDuration/time.Second) || secs > int64(MaxDuration/time.Second) {
			return fail("invalid_request", "duration is a number of seconds from %d (an hour) to %d (366 days)",
				int64(MinDuration/time.Second), int64(MaxDuration/time.Second))
		}
		r.Duration = time.Duration(secs) * time.Second
	}
	return r, nil
}

func (r *AuthorizeRequest) fail(code, desc, state string) (*AuthorizeRequest, *AuthorizeError) {
	return nil, &AuthorizeError{Code: code, Description: desc, Redirect: true, RedirectURI: r.RedirectURI, State: state}
}

// isChallenge reports whether s is an S256 code challenge: 43 base64url characters without padding.
func isChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	return isUnreserved(s, false)
}

// isVerifier reports whether s is an RFC 7636 §4.1 code verifier: 43 to 128 unreserved characters.
func isVerifier(s string) bool {
	return len(s) >= 43 && len(s) <= 128 && isUnreserved(s, true)
}

func isUnreserved(s string, dotTilde bool) bool {
	for _, c := range []byte(s) {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case dotTilde && (c == '.' || c == '~'):
		default:
			return false
		}
	}
	return true
}

// RedirectURL returns the redirect URI with the query parameters added to any it already has (RFC 6749
// §3.1.2: the query component is retained).
func RedirectURL(redirectURI string, params url.Values) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return redirectURI
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}
