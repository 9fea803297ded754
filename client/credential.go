package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// CredentialRequest is the body of POST /v1/vehicles/{id}/credentials (docs/credentials.md). Times are
// RFC 3339; empty ones are left out.
type CredentialRequest struct {
	Type      string          `json:"type"`
	At        string          `json:"at,omitempty"`
	From      string          `json:"from,omitempty"`
	To        string          `json:"to,omitempty"`
	HolderKey json.RawMessage `json:"holder_key,omitempty"`
}

// IssuedCredential is the node's answer to a credential request.
type IssuedCredential struct {
	SDJWT string // the credential, application/dc+sd-jwt
	// Withheld lists the disclosures the caller's grant did not let it have, and WithheldSignals the
	// signals it lacks for them (the Glovebox-Withheld headers); both empty for the owner.
	Withheld, WithheldSignals []string
}

// IssueCredential asks the node for a credential about vehicle, signed in with token. A refusal is an
// *APIError with the documented code.
func (c *Client) IssueCredential(ctx context.Context, token string, vehicle uint64, r CredentialRequest) (*IssuedCredential, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/v1/vehicles/%d/credentials", c.base, vehicle), bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	var h http.Header
	body, err := c.doHeader(req, &h)
	if err != nil {
		return nil, err
	}
	list := func(v string) []string {
		if v == "" {
			return nil
		}
		return strings.Split(v, ", ")
	}
	return &IssuedCredential{SDJWT: string(body), Withheld: list(h.Get("Glovebox-Withheld")),
		WithheldSignals: list(h.Get("Glovebox-Withheld-Signals"))}, nil
}
