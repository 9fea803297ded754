package connect

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/ledger"
)

// ClientAssertionType is the client_assertion_type of private_key_jwt client authentication (RFC 7523
// §2.2, OpenID Connect Core §9).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionAlg is the JWS algorithm of client assertions: ECDSA over secp256k1 with SHA-256 (RFC 8812),
// the curve of app keys.
const AssertionAlg = "ES256K"

// MaxAssertionLife is how far in the future a client assertion's exp may lie.
const MaxAssertionLife = 10 * time.Minute

// maxAssertion bounds a client assertion, in bytes.
const maxAssertion = 4 << 10

// ClientAssertion is a verified private_key_jwt client assertion.
type ClientAssertion struct {
	Client common.Address // iss and sub: the app, which signed it
	ID     string         // jti, single use
	Expiry time.Time
}

// ParseClientAssertion verifies a private_key_jwt client assertion (RFC 7523 §3): a compact JWS, alg
// ES256K only, every segment canonical base64url; iss and sub the same app address; aud (a string or an
// array) naming one of audiences (the token endpoint URL or the issuer); a jti; exp after now and at most
// MaxAssertionLife ahead; nbf, if present, not after now. The signature (r ‖ s, 64 bytes) must recover
// to the iss address for recovery id 0 or 1. It is a pure function of its inputs; the caller keeps jti
// single use.
func ParseClientAssertion(token string, audiences []string, now time.Time) (ClientAssertion, error) {
	if len(token) > maxAssertion {
		return ClientAssertion{}, errors.New("the client assertion is too long")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ClientAssertion{}, errors.New("the client assertion is not a compact JWS")
	}
	var raw [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || p == "" {
			return ClientAssertion{}, errors.New("the client assertion is not canonical base64url")
		}
		raw[i] = b
	}
	var hdr struct {
		Alg  string `json:"alg"`
		Typ  string `json:"typ"`
		Crit []any  `json:"crit"`
	}
	if err := strictJSON(raw[0], &hdr); err != nil {
		return ClientAssertion{}, fmt.Errorf("the client assertion header: %w", err)
	}
	if hdr.Alg != AssertionAlg {
		return ClientAssertion{}, fmt.Errorf("the client assertion must be signed %s, not %q", AssertionAlg, clip(hdr.Alg))
	}
	if hdr.Crit != nil {
		return ClientAssertion{}, errors.New("the client assertion has critical header parameters")
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp *json.Number    `json:"exp"`
		Nbf *json.Number    `json:"nbf"`
		Jti string          `json:"jti"`
	}
	if err := strictJSON(raw[1], &c); err != nil {
		return ClientAssertion{}, fmt.Errorf("the client assertion claims: %w", err)
	}
	iss, err := ledger.ParseAddress(c.Iss)
	if err != nil {
		return ClientAssertion{}, errors.New("the client assertion's iss is not an app address")
	}
	if sub, err := ledger.ParseAddress(c.Sub); err != nil || sub != iss {
		return ClientAssertion{}, errors.New("the client assertion's sub is not its iss")
	}
	var auds []string
	if err := json.Unmarshal(c.Aud, &auds); err != nil {
		var one string
		if err := json.Unmarshal(c.Aud, &one); err != nil {
			return ClientAssertion{}, errors.New("the client assertion's aud is not a string or an array of strings")
		}
		auds = []string{one}
	}
	matched := false
	for _, a := range auds {
		for _, want := range audiences {
			if a == want {
				matched = true
			}
		}
	}
	if !matched {
		return ClientAssertion{}, fmt.Errorf("the client assertion's aud must name %s", strings.Join(audiences, " or "))
	}
	if c.Jti == "" || len(c.Jti) > 256 {
		return ClientAssertion{}, errors.New("the client assertion needs a jti of at most 256 bytes")
	}
	exp, err := numericDate(c.Exp)
	if err != nil {
		return ClientAssertion{}, fmt.Errorf("the client assertion's exp: %w", err)
	}
	switch {
	case !now.Before(exp):
		return ClientAssertion{}, errors.New("the client assertion expired")
	case exp.After(now.Add(MaxAssertionLife)):
		return ClientAssertion{}, fmt.Errorf("the client assertion's exp is more than %s ahead", MaxAssertionLife)
	}
	if c.Nbf != nil {
		nbf, err := numericDate(c.Nbf)
		if err != nil || now.Add(time.Minute).Before(nbf) {
			return ClientAssertion{}, errors.New("the client assertion is not valid yet")
		}
	}
	if len(raw[2]) != 64 {
		return ClientAssertion{}, errors.New("an ES256K signature is 64 bytes (r ‖ s)")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	sig := make([]byte, 65)
	copy(sig, raw[2])
	for v := byte(0); v < 2; v++ {
		sig[64] = v
		pub, err := crypto.SigToPub(h[:], sig)
		if err == nil && crypto.PubkeyToAddress(*pub) == iss {
			return ClientAssertion{Client: iss, ID: c.Jti, Expiry: exp}, nil
		}
	}
	return ClientAssertion{}, errors.New("the client assertion is not signed by its iss")
}

// numericDate reads an RFC 7519 NumericDate given as a JSON integer.
func numericDate(n *json.Number) (time.Time, error) {
	if n == nil {
		return time.Time{}, errors.New("missing")
	}
	s, err := n.Int64()
	if err != nil || s < 0 || s > 253402300799 {
		return time.Time{}, errors.New("not a whole number of seconds")
	}
	return time.Unix(s, 0), nil
}

// strictJSON decodes one JSON object into v, numbers kept as json.Number, refusing trailing data.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return errors.New("not a JSON object")
	}
	if d.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}
