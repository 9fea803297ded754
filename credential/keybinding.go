package credential

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// KeyBindingTyp is the typ header of a key-binding JWT (RFC 9901 §4.3).
const KeyBindingTyp = "kb+jwt"

// KeyBinding is a verified key-binding JWT: the holder signed, with the key in the credential's cnf, that
// it presents this credential with these disclosures to Audience, answering Nonce.
type KeyBinding struct {
	IssuedAt time.Time
	Audience string
	Nonce    string
}

// keyBindingAlgs are the JWS algorithms a holder key may sign a key-binding JWT with.
var keyBindingAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.RS256}

// verifyKeyBinding checks a key-binding JWT as RFC 9901 §7.3 says: typ kb+jwt, signed by the holder key
// of cnf, iat, aud and nonce present, and sd_hash the digest of the presentation it ends.
func verifyKeyBinding(kb string, holder *jose.JSONWebKey, sdHash string) (*KeyBinding, error) {
	if holder == nil {
		return nil, fmt.Errorf("a key-binding JWT is present, but the credential names no holder key (cnf)")
	}
	jws, err := jose.ParseSignedCompact(kb, keyBindingAlgs)
	if err != nil {
		return nil, fmt.Errorf("the key-binding JWT is not a JWS: %v", err)
	}
	if typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); typ != KeyBindingTyp {
		return nil, fmt.Errorf("the key-binding JWT's typ is %q, want %q", typ, KeyBindingTyp)
	}
	body, err := jws.Verify(holder.Key)
	if err != nil {
		return nil, fmt.Errorf("the key-binding JWT is not signed by the holder key of cnf")
	}
	var p struct {
		Iat    int64  `json:"iat"`
		Aud    string `json:"aud"`
		Nonce  string `json:"nonce"`
		SDHash string `json:"sd_hash"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&p); err != nil {
		return nil, fmt.Errorf("the key-binding JWT's payload does not decode: %v", err)
	}
	if p.Iat == 0 || p.Aud == "" || p.Nonce == "" {
		return nil, fmt.Errorf("the key-binding JWT needs iat, aud and nonce")
	}
	if p.SDHash != sdHash {
		return nil, fmt.Errorf("the key-binding JWT's sd_hash is not the digest of this presentation (disclosures added, dropped or reordered)")
	}
	return &KeyBinding{IssuedAt: time.Unix(p.Iat, 0).UTC(), Audience: p.Aud, Nonce: p.Nonce}, nil
}
