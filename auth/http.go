package auth

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// maxForm bounds the token request body: a message of MaxSIWE bytes, percent-encoded, and the rest.
const maxForm = 4*MaxSIWE + 1024

// ChallengeResponse is the body of GET /v1/auth/challenge.
type ChallengeResponse struct {
	Message   string `json:"message"`   // the EIP-4361 message to sign, verbatim
	Nonce     string `json:"nonce"`     // its nonce
	ExpiresAt string `json:"expiresAt"` // its Expiration Time, RFC 3339
}

// ChallengeHandler serves GET /v1/auth/challenge?address=0x…: a new challenge for address, as a
// ChallengeResponse. Errors use the REST shape {"error":{"code":…,"message":…}}.
func (i *Issuer) ChallengeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeRESTError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
			return
		}
		q := r.URL.Query()
		if len(q["address"]) != 1 {
			writeRESTError(w, http.StatusBadRequest, CodeInvalidRequest, "give exactly one address parameter")
			return
		}
		m, err := i.challenge(r.Context(), q.Get("address"))
		if err != nil {
			code := CodeOf(err)
			if code == "" {
				writeRESTError(w, http.StatusInternalServerError, "internal", "couldn't make a challenge")
				return
			}
			writeRESTError(w, StatusOf(code), code, messageOf(err))
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, ChallengeResponse{
			Message:   m.String(),
			Nonce:     m.Nonce,
			ExpiresAt: m.ExpirationTime.Format(time.RFC3339),
		})
	})
}

// oauthError is the RFC 6749 §5.2 error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// GrantHandler answers one extra grant_type at the token endpoint (see TokenHandler). form holds the
// request body's parameters, each present at most once. It returns the RFC 6749 §5.1 answer to encode as
// JSON, or a refusal: an *Error whose Code is an RFC 6749 §5.2 code (its status from StatusOf; 401
// CodeInvalidClient answers carry WWW-Authenticate), any other error being a server_error.
type GrantHandler func(r *http.Request, form url.Values) (any, error)

// TokenHandler serves POST /oauth/token: an RFC 6749 token endpoint for the extension grant
// GrantTypeSIWE, taking application/x-www-form-urlencoded grant_type, message and signature, and for each
// grant_type in extra (package connect adds authorization_code and refresh_token). It answers a Token
// (§5.1) or an error (§5.2), both with Cache-Control: no-store. Error descriptions never repeat the
// signature. No parameter may be repeated (§3.2), and only the body counts, never the query string,
// which ends up in logs.
func (i *Issuer) TokenHandler(extra map[string]GrantHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(status int, code, desc string) {
			WriteOAuthError(w, status, code, desc)
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			fail(http.StatusMethodNotAllowed, CodeInvalidRequest, "use POST")
			return
		}
		form, err := ReadForm(w, r)
		if err != nil {
			fail(http.StatusBadRequest, CodeInvalidRequest, messageOf(err))
			return
		}
		grant := form.Get("grant_type")
		if grant == "" {
			fail(http.StatusBadRequest, CodeInvalidRequest, "grant_type is missing")
			return
		}
		if h, ok := extra[grant]; ok {
			out, err := h(r, form)
			if err != nil {
				code := CodeOf(err)
				if code == "" || code == CodeServerError {
					fail(http.StatusInternalServerError, CodeServerError, "couldn't issue a token")
					return
				}
				if code == CodeInvalidClient {
					w.Header().Set("WWW-Authenticate", `Bearer realm="glovebox"`)
				}
				fail(StatusOf(code), code, messageOf(err))
				return
			}
			writeOAuth(w, http.StatusOK, out)
			return
		}
		if grant != GrantTypeSIWE {
			supported := []string{GrantTypeSIWE}
			for g := range extra {
				supported = append(supported, g)
			}
			slices.Sort(supported)
			fail(http.StatusBadRequest, CodeUnsupportedGrantType, "grant_type must be one of "+strings.Join(supported, ", "))
			return
		}
		message, signature := form.Get("message"), form.Get("signature")
		if message == "" || signature == "" {
			fail(http.StatusBadRequest, CodeInvalidRequest, "message and signature are required")
			return
		}
		tok, err := i.Exchange(r.Context(), message, signature)
		if err != nil {
			code := CodeOf(err)
			if code == "" || code == CodeServerError {
				fail(http.StatusInternalServerError, CodeServerError, "couldn't issue a token")
				return
			}
			fail(StatusOf(code), code, messageOf(err))
			return
		}
		writeOAuth(w, http.StatusOK, tok)
	})
}

// ReadForm reads an application/x-www-form-urlencoded POST body of at most 4*MaxSIWE+1 KiB, as the OAuth
// endpoints take it: only the body counts (never the query string), and no parameter may be repeated
// (RFC 6749 §3.2). A parameter without a value counts as absent, so it is dropped. Refusals are *Error
// with CodeInvalidRequest.
func ReadForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &Error{Code: CodeInvalidRequest, Message: "the body must be application/x-www-form-urlencoded"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return nil, &Error{Code: CodeInvalidRequest, Message: "couldn't read the form (too large or malformed)", err: err}
	}
	out := url.Values{}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, &Error{Code: CodeInvalidRequest, Message: "parameter " + k + " is repeated"}
		}
		if v[0] != "" {
			out[k] = v
		}
	}
	return out, nil
}

// WriteOAuthError writes an RFC 6749 §5.2 error answer: {"error": code, "error_description": desc}, never
// cached.
func WriteOAuthError(w http.ResponseWriter, status int, code, desc string) {
	writeOAuth(w, status, oauthError{Error: code, Description: desc})
}

// WriteOAuth writes an RFC 6749 §5.1 answer (or any JSON an OAuth endpoint returns): never cached.
func WriteOAuth(w http.ResponseWriter, status int, v any) { writeOAuth(w, status, v) }

// JWKSHandler serves GET /.well-known/jwks.json: the public key set that verifies the node's tokens.
func (i *Issuer) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeRESTError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		w.Write(i.jwks)
	})
}

// FromRequest verifies the request's "Authorization: Bearer" token (RFC 6750 §2.1). The error matches
// ErrNoToken when there is no bearer credential at all, ErrInvalidToken when there is one but it is
// malformed, repeated, forged or expired; both have CodeUnauthenticated.
func (i *Issuer) FromRequest(r *http.Request) (Claims, error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return Claims{}, &Error{Code: CodeUnauthenticated, Message: "sign in: send Authorization: Bearer <token>", kind: ErrNoToken}
	}
	if len(h) > 1 {
		return Claims{}, tokenError("more than one Authorization header", nil)
	}
	scheme, token, _ := strings.Cut(h[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return Claims{}, &Error{Code: CodeUnauthenticated, Message: "sign in: send Authorization: Bearer <token>", kind: ErrNoToken}
	}
	if token == "" {
		return Claims{}, tokenError("the bearer token is empty", nil)
	}
	return i.Verify(token)
}

type claimsKey struct{}

// Middleware lets through only requests with a valid bearer token, whose Claims it puts in the request's
// context (see ClaimsFromContext). Others get 401 with an RFC 6750 WWW-Authenticate challenge and the
// REST error {"error":{"code":"unauthenticated",…}}. Routes open to anyone use FromRequest directly.
func (i *Issuer) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := i.FromRequest(r)
		if err != nil {
			WriteUnauthenticated(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

// ClaimsFromContext returns the Claims Middleware stored.
func ClaimsFromContext(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(Claims)
	return c, ok
}

// WriteUnauthenticated answers 401 for an error of FromRequest, with the RFC 6750 §3 WWW-Authenticate
// header (error="invalid_token" unless the token was missing).
func WriteUnauthenticated(w http.ResponseWriter, err error) {
	challenge := `Bearer realm="glovebox"`
	if !errors.Is(err, ErrNoToken) {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeRESTError(w, http.StatusUnauthorized, CodeUnauthenticated, messageOf(err))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"couldn't encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeRESTError(w http.ResponseWriter, status int, code, msg string) {
	type detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, struct {
		Error detail `json:"error"`
	}{detail{code, msg}})
}

// writeOAuth writes an RFC 6749 §5.1/§5.2 answer: JSON, never cached.
func writeOAuth(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, v)
}
