package webhook

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers and key prefixes.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"

	SecretPrefix     = "whsec_" // an HMAC secret
	PublicKeyPrefix  = "whpk_"  // an Ed25519 public key
	PrivateKeyPrefix = "whsk_"  // an Ed25519 private key (its 32-byte seed)
)

// NewSecret returns a new HMAC secret in the Standard Webhooks form: "whsec_" and the base64 of 32 random
// bytes.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// ParseSecret returns the key bytes of a "whsec_" secret.
func ParseSecret(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("webhook: a secret starts with " + SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, errors.New("webhook: a secret is the base64 of 24 to 64 bytes")
	}
	return key, nil
}

// EncodePublicKey returns the Standard Webhooks form of an Ed25519 public key, "whpk_" and its base64.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads a "whpk_" key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(s, PublicKeyPrefix)
	if !ok {
		return nil, errors.New("webhook: a public key starts with " + PublicKeyPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("webhook: a public key is the base64 of 32 bytes")
	}
	return ed25519.PublicKey(b), nil
}

// EncodePrivateKey returns the Standard Webhooks form of an Ed25519 private key: "whsk_" and the base64 of
// its 32-byte seed.
func EncodePrivateKey(k ed25519.PrivateKey) string {
	return PrivateKeyPrefix + base64.StdEncoding.EncodeToString(k.Seed())
}

// ParsePrivateKey reads a "whsk_" key.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), PrivateKeyPrefix)
	if !ok {
		return nil, errors.New("webhook: a private key starts with " + PrivateKeyPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(b) != ed25519.SeedSize {
		return nil, errors.New("webhook: a private key is the base64 of a 32-byte seed")
	}
	return ed25519.NewKeyFromSeed(b), nil
}

// signedContent is what both signatures cover: "id.timestamp.body".
func signedContent(id string, ts int64, body []byte) []byte {
	b := make([]byte, 0, len(id)+len(body)+24)
	b = append(b, id...)
	b = append(b, '.')
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, '.')
	return append(b, body...)
}

// Sign sets the three Standard Webhooks headers on h for a message: webhook-signature carries "v1," the
// HMAC-SHA256 with secret's key and, when key is not nil, "v1a," the Ed25519 signature, separated by a
// space.
func Sign(h http.Header, id string, at time.Time, body []byte, secret []byte, key ed25519.PrivateKey) {
	ts, sig := signature(id, at.Unix(), body, secret, key)
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, sig)
}

// signature returns the webhook-timestamp and webhook-signature values of a message sent at unix time ts.
func signature(id string, ts int64, body []byte, secret []byte, key ed25519.PrivateKey) (string, string) {
	msg := signedContent(id, ts, body)
	mac := hmac.New(sha256.New, secret)
	mac.Write(msg)
	var sum [sha256.Size]byte
	enc := base64.StdEncoding
	sig := make([]byte, 0, len("v1,")+enc.EncodedLen(sha256.Size)+len(" v1a,")+enc.EncodedLen(ed25519.SignatureSize))
	sig = append(sig, "v1,"...)
	sig = enc.AppendEncode(sig, mac.Sum(sum[:0]))
	if key != nil {
		sig = append(sig, " v1a,"...)
		sig = enc.AppendEncode(sig, ed25519.Sign(key, msg))
	}
	return strconv.FormatInt(ts, 10), string(sig)
}

// Tolerance is how far a message's timestamp may be from the verifier's clock.
const Tolerance = 5 * time.Minute

// Verify checks a message's headers as a receiver would: the timestamp within Tolerance of now, and a
// "v1," signature by secret (when secret is not nil) or a "v1a," signature by pub (when pub is not nil)
// among the space-separated signatures. It is the receiver side of Sign, for tests and Go receivers.
func Verify(h http.Header, body []byte, secret []byte, pub ed25519.PublicKey, now time.Time) error {
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook: bad webhook-timestamp %q", tsText)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("webhook: the timestamp is %s from now", d)
	}
	msg := signedContent(id, ts, body)
	var want []byte
	if secret != nil {
		mac := hmac.New(sha256.New, secret)
		mac.Write(msg)
		want = mac.Sum(nil)
	}
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		switch {
		case version == "v1" && want != nil && hmac.Equal(raw, want):
			return nil
		case version == "v1a" && pub != nil && ed25519.Verify(pub, msg, raw):
			return nil
		}
	}
	return errors.New("webhook: no signature matches")
}

// LoadOrCreateKey reads the node's Ed25519 webhook key from path ("whsk_…", one line), creating it (mode
// 0600) on first use.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("couldn't generate the webhook key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("couldn't create %s: %w", path, err)
		}
		if _, err := f.WriteString(EncodePrivateKey(k) + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("couldn't write %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("couldn't sync %s: %w", path, err)
		}
		return k, f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read the webhook key: %w", err)
	}
	k, err := ParsePrivateKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
