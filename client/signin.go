package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/glovebox/glovebox/ledger"
)

// SIWEGrantType is the OAuth grant type of POST /oauth/token that exchanges a signed Sign-In with Ethereum
// message for a bearer token (docs/graphql.md).
const SIWEGrantType = "urn:glovebox:params:oauth:grant-type:siwe"

// Token is a bearer token for /graphql and the access log, as POST /oauth/token answers it.
type Token struct {
	AccessToken string    // the ES256 JWT to send as "Authorization: Bearer <AccessToken>"
	Expires     time.Time // when the node stops accepting it
}

// TokenError is the token endpoint's refusal (RFC 6749 section 5.2), with its error code.
type TokenError struct {
	Status      int
	Code        string // e.g. invalid_grant
	Description string
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Description, e.Status)
}

// SignIn signs key in with Sign-In with Ethereum (EIP-4361): it fetches a challenge for the key's address,
// signs the message exactly as given with personal_sign (EIP-191) and exchanges it at POST /oauth/token
// for a bearer token. The key never leaves this process.
func (c *Client) SignIn(ctx context.Context, key *ecdsa.PrivateKey) (*Token, error) {
	addr := crypto.PubkeyToAddress(key.PublicKey)
	var ch struct {
		Message string `json:"message"`
	}
	if err := c.getJSON(ctx, "/v1/auth/challenge?address="+addr.Hex(), &ch); err != nil {
		return nil, fmt.Errorf("couldn't get a sign-in challenge: %w", err)
	}
	h := ledger.PersonalHash([]byte(ch.Message))
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign the sign-in message: %w", err)
	}
	sig[64] += 27 // personal_sign's v is 27 or 28
	form := url.Values{"grant_type": {SIWEGrantType}, "message": {ch.Message}, "signature": {"0x" + common.Bytes2Hex(sig)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	now := time.Now()
	resp, body, err := c.send(req)
	if err != nil {
		return nil, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		return nil, fmt.Errorf("the token endpoint answered HTTP %d, not JSON: %.200s", resp.StatusCode, body)
	}
	if resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return nil, &TokenError{Status: resp.StatusCode, Code: tok.Error, Description: tok.Description}
	}
	return &Token{AccessToken: tok.AccessToken, Expires: now.Add(time.Duration(tok.ExpiresIn) * time.Second)}, nil
}

// GraphQLResponse is a GraphQL answer: data, and errors with their extensions.code.
type GraphQLResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []GraphQLError  `json:"errors,omitempty"`
}

// GraphQLError is one error of a GraphQL answer.
type GraphQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// GraphQL posts query with its variables to /graphql with the bearer token (none when token is empty) and
// returns the answer, errors included; an error is returned only when there is no GraphQL answer.
func (c *Client) GraphQL(ctx context.Context, token, query string, variables map[string]any) (*GraphQLResponse, error) {
	b, err := json.Marshal(map[string]any{"query": query, "variables": variables})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/graphql", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, body, err := c.send(req)
	if err != nil {
		return nil, err
	}
	var out GraphQLResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("/graphql answered HTTP %d, not GraphQL: %.200s", resp.StatusCode, body)
	}
	return &out, nil
}
