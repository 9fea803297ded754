package auth

import (
	"errors"
	"fmt"
	"net/http"
)

// Stable error codes. The REST API writes them as {"error":{"code":…,"message":…}}; the token endpoint
// writes the OAuth ones as RFC 6749 §5.2 {"error":…,"error_description":…}.
const (
	// CodeUnauthenticated: the request carries no bearer token, or one that is invalid or expired.
	CodeUnauthenticated = "unauthenticated"
	// CodeInvalidRequest: a parameter is missing, repeated or malformed (RFC 6749 §5.2 invalid_request).
	CodeInvalidRequest = "invalid_request"
	// CodeInvalidGrant: the SIWE message or its signature is refused, or an authorization code or refresh
	// token is unknown, used, expired, or for another client or redirect URI (RFC 6749 §5.2 invalid_grant).
	CodeInvalidGrant = "invalid_grant"
	// CodeUnsupportedGrantType: grant_type is not GrantTypeSIWE (RFC 6749 §5.2).
	CodeUnsupportedGrantType = "unsupported_grant_type"
	// CodeInvalidClient: the client is unknown or its authentication failed (RFC 6749 §5.2).
	CodeInvalidClient = "invalid_client"
	// CodeUnauthorizedClient: the client may not use this grant type (RFC 6749 §5.2).
	CodeUnauthorizedClient = "unauthorized_client"
	// CodeInvalidScope: a requested scope is unknown or exceeds what was granted (RFC 6749 §5.2).
	CodeInvalidScope = "invalid_scope"
	// CodeServerError: the node could not sign a token (RFC 6749 §5.2 server_error is not defined, so
	// this uses the RFC 6749 §4.1.2.1 name).
	CodeServerError = "server_error"
)

// ErrorCode documents one stable error code: its HTTP status and meaning. The api package appends
// ErrorCodes to its own table.
type ErrorCode struct {
	Code        string
	Status      int
	Description string
}

// ErrorCodes lists every code this package answers with.
var ErrorCodes = []ErrorCode{
	{CodeUnauthenticated, http.StatusUnauthorized, "the request carries no bearer token, or an invalid or expired one; sign in again at /oauth/token"},
	{CodeInvalidRequest, http.StatusBadRequest, "a parameter is missing, repeated or malformed"},
	{CodeInvalidGrant, http.StatusBadRequest, "the sign-in message or its signature was refused (unknown, used or expired nonce, wrong domain, signer is not the message's address, …)"},
	{CodeUnsupportedGrantType, http.StatusBadRequest, "the token endpoint does not take this grant_type (it takes " + GrantTypeSIWE + ", authorization_code and refresh_token)"},
	{CodeInvalidClient, http.StatusUnauthorized, "the client is unknown, or its authentication (client_id, private_key_jwt assertion) failed"},
	{CodeUnauthorizedClient, http.StatusBadRequest, "the client may not use this grant"},
	{CodeInvalidScope, http.StatusBadRequest, "a scope is unknown, or exceeds what was granted"},
	{CodeServerError, http.StatusInternalServerError, "the node could not issue a token; nothing was consumed"},
}

// StatusOf returns the HTTP status of one of this package's codes, 500 for any other.
func StatusOf(code string) int {
	for _, c := range ErrorCodes {
		if c.Code == code {
			return c.Status
		}
	}
	return http.StatusInternalServerError
}

// Sentinels that callers branch on, with errors.Is.
var (
	// ErrNoToken: the request has no "Authorization: Bearer" credential at all.
	ErrNoToken = errors.New("no bearer token")
	// ErrInvalidToken: the bearer token is malformed, not signed by this node, for another audience or
	// issuer, not yet valid or expired.
	ErrInvalidToken = errors.New("invalid bearer token")
)

// Errorf returns an *Error with a stable code and a message safe to show the caller, for packages that
// answer at the token endpoint (see GrantHandler).
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error is the error every function of this package returns for a refused input: a stable code and a
// message safe to show the caller (it never holds a token or a signature).
type Error struct {
	Code    string
	Message string
	kind    error // ErrNoToken, ErrInvalidToken or nil
	err     error // the cause, if any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap lets errors.Is match ErrNoToken / ErrInvalidToken and the cause.
func (e *Error) Unwrap() []error {
	var out []error
	for _, err := range []error{e.kind, e.err} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// CodeOf returns the stable code of err, or "" if it is not one of this package's errors.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// messageOf returns the caller-safe message of err.
func messageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

func grantError(msg string) *Error { return &Error{Code: CodeInvalidGrant, Message: msg} }

func tokenError(msg string, cause error) *Error {
	return &Error{Code: CodeUnauthenticated, Message: msg, kind: ErrInvalidToken, err: cause}
}
