package credential

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/mod/sumdb/note"
)

// IssuerKey is the issuer's public key, derived from the log's note verifier key: a credential is signed
// by the very key that signs the log's checkpoints, so a verifier who pins the log key (as `glovebox
// verify` does) needs nothing else to trust the issuer.
type IssuerKey struct {
	// LogKey is the note verifier key, "<name>+<hash>+<base64 of 0x01 and the 32-byte Ed25519 key>".
	LogKey string
	// KeyID is "<name>+<hash>", the JWS kid of every credential signed with the key.
	KeyID string
	// Public is the Ed25519 public key.
	Public ed25519.PublicKey
}

// ParseLogKey parses a note verifier key of the log (an Ed25519 key, C2SP signed-note algorithm 0x01)
// into the issuer key it names. It checks the key hash as note.NewVerifier does.
func ParseLogKey(vkey string) (*IssuerKey, error) {
	vkey = strings.TrimSpace(vkey)
	if _, err := note.NewVerifier(vkey); err != nil {
		return nil, fmt.Errorf("the log key %q is not a note verifier key: %w", vkey, err)
	}
	name, rest, _ := strings.Cut(vkey, "+")
	hash, b64, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		return nil, fmt.Errorf("the log key %q is not an Ed25519 note key", vkey)
	}
	return &IssuerKey{LogKey: vkey, KeyID: name + "+" + hash, Public: ed25519.PublicKey(raw[1:])}, nil
}

// JWK returns the key as a JSON Web Key (OKP, Ed25519, alg EdDSA, use sig, kid KeyID).
func (k *IssuerKey) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Public, KeyID: k.KeyID, Algorithm: string(jose.EdDSA), Use: "sig"}
}

// noteSigner signs JWS payloads with the log's note signer: for an Ed25519 note key, note.Signer.Sign is
// a plain Ed25519 signature of the bytes, which is exactly an EdDSA JWS signature (RFC 8037). The two
// uses cannot be confused: a note's signed text ends in a newline, a JWS signing input never holds one.
type noteSigner struct {
	key    *IssuerKey
	signer note.Signer
}

func (s *noteSigner) Public() *jose.JSONWebKey {
	k := s.key.JWK()
	return &k
}

func (s *noteSigner) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{jose.EdDSA} }

func (s *noteSigner) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != jose.EdDSA {
		return nil, fmt.Errorf("the log key signs EdDSA only, not %s", alg)
	}
	return s.signer.Sign(payload)
}
