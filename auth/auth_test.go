package auth

import (
	"context"
	stdcrypto "crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/glovebox/glovebox/ledger"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable fake clock; tests drive it from one goroutine.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func testConfig(dir string, c *clock) Config {
	return Config{Dir: dir, Issuer: "https://node.example", Domain: "node.example", Now: c.Now}
}

func newTestIssuer(t testing.TB) (*Issuer, *clock) {
	t.Helper()
	c := &clock{now: t0}
	iss, err := NewIssuer(testConfig(t.TempDir(), c))
	if err != nil {
		t.Fatal(err)
	}
	return iss, c
}

func newAccount(t testing.TB) (*ecdsa.PrivateKey, common.Address) {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k, crypto.PubkeyToAddress(k.PublicKey)
}

// personalSign signs msg as a wallet's personal_sign does: v is 27 or 28.
func personalSign(t testing.TB, k *ecdsa.PrivateKey, msg string) string {
	t.Helper()
	h := ledger.PersonalHash([]byte(msg))
	sig, err := crypto.Sign(h[:], k)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	return "0x" + hex.EncodeToString(sig)
}

func issueChallenge(t testing.TB, iss *Issuer, a common.Address) string {
	t.Helper()
	msg, err := iss.Challenge(context.Background(), a.Hex())
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestSignInFlow(t *testing.T) {
	iss, _ := newTestIssuer(t)
	k, addr := newAccount(t)
	// Lower case is accepted in the request; the message carries the EIP-55 form.
	msg, err := iss.Challenge(context.Background(), strings.ToLower(addr.Hex()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseSIWE(msg)
	if err != nil {
		t.Fatalf("the challenge does not parse: %v\n%s", err, msg)
	}
	if m.Address != addr || m.Statement != Statement || m.URI != "https://node.example" || m.ChainID != 1 ||
		!m.IssuedAt.Equal(t0) || !m.ExpirationTime.Equal(t0.Add(5*time.Minute)) || len(m.Nonce) < 16 {
		t.Fatalf("unexpected challenge %+v", m)
	}
	tok, err := iss.Exchange(context.Background(), msg, personalSign(t, k, msg))
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || tok.ExpiresIn != 3600 {
		t.Fatalf("token response %+v", tok)
	}
	c, err := iss.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != addr || c.Issuer != "https://node.example" || !c.Expiry.Equal(t0.Add(time.Hour)) || c.ID == "" {
		t.Fatalf("claims %+v", c)
	}

	// Anyone holding only the JWKS can verify the token, with go-jose on its own.
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(iss.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].Use != "sig" || set.Keys[0].Algorithm != "ES256" || set.Keys[0].KeyID != iss.KeyID() {
		t.Fatalf("JWKS %s", iss.JWKS())
	}
	parsed, err := jwt.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("the token's kid %q is not in the JWKS", parsed.Headers[0].KeyID)
	}
	var claims jwt.Claims
	if err := parsed.Claims(keys[0].Key, &claims); err != nil {
		t.Fatal(err)
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: "https://node.example", Subject: addr.Hex(),
		AnyAudience: jwt.Audience{"glovebox"}, Time: t0}, 0); err != nil {
		t.Fatal(err)
	}
	if claims.ID == "" || claims.IssuedAt == nil || claims.NotBefore == nil {
		t.Fatalf("claims lack jti/iat/nbf: %+v", claims)
	}
	// The kid is the RFC 7638 thumbprint.
	thumb, _ := keys[0].Thumbprint(stdcrypto.SHA256)
	if base64.RawURLEncoding.EncodeToString(thumb) != iss.KeyID() {
		t.Fatal("kid is not the JWK thumbprint")
	}
}

func TestSignatureWithV0Or1IsAccepted(t *testing.T) {
	iss, _ := newTestIssuer(t)
	k, addr := newAccount(t)
	msg := issueChallenge(t, iss, addr)
	sig, _ := hex.DecodeString(personalSign(t, k, msg)[2:])
	sig[64] -= 27
	if _, err := iss.Exchange(context.Background(), msg, "0x"+hex.EncodeToString(sig)); err != nil {
		t.Fatal(err)
	}
}

func TestMessageWithOptionalFieldsIsAccepted(t *testing.T) {
	iss, _ := newTestIssuer(t)
	k, addr := newAccount(t)
	m, _ := ParseSIWE(issueChallenge(t, iss, addr))
	m.NotBefore = t0
	m.RequestID = "req-1"
	m.Resources = []string{"https://node.example/v1/vehicles/1"}
	msg := m.String()
	if _, err := iss.Exchange(context.Background(), msg, personalSign(t, k, msg)); err != nil {
		t.Fatal(err)
	}
}

// secp256k1N is the order of the secp256k1 group.
var secp256k1N, _ = new(big.Int).SetString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)

func TestExchangeRefusals(t *testing.T) {
	other, otherAddr := newAccount(t)
	tests := []struct {
		name string
		// attack gets a fresh issuer, its clock, a valid challenge for the signer and the signer's key,
		// and returns the message and signature to exchange.
		attack func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string)
	}{
		{"a reused nonce is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			sig := personalSign(t, k, msg)
			if _, err := iss.Exchange(context.Background(), msg, sig); err != nil {
				t.Fatal(err)
			}
			return msg, sig
		}},
		{"a nonce the node never issued is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			m, _ := ParseSIWE(msg)
			m.Nonce = "abcdefgh12345678"
			return m.String(), personalSign(t, k, m.String())
		}},
		{"a challenge used at its expiration time is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			c.now = t0.Add(5 * time.Minute)
			return msg, personalSign(t, k, msg)
		}},
		{"a challenge whose expiration time the client extended is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			m, _ := ParseSIWE(msg)
			m.ExpirationTime = t0.Add(time.Hour)
			c.now = t0.Add(10 * time.Minute)
			return m.String(), personalSign(t, k, m.String())
		}},
		{"a challenge presented before its issue time less the skew is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			c.now = t0.Add(-Skew - time.Second)
			return msg, personalSign(t, k, msg)
		}},
		{"a message not valid before a later time is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			m, _ := ParseSIWE(msg)
			m.NotBefore = t0.Add(time.Minute)
			return m.String(), personalSign(t, k, m.String())
		}},
		{"a message for another domain is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			m, _ := ParseSIWE(msg)
			m.Domain = "evil.example"
			return m.String(), personalSign(t, k, m.String())
		}},
		{"a message for another scheme is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			m, _ := ParseSIWE(msg)
			m.Scheme = "http"
			return m.String(), personalSign(t, k, m.String())
		}},
		{"a message for another URI is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			m, _ := ParseSIWE(msg)
			m.URI = "https://node.example/other"
			return m.String(), personalSign(t, k, m.String())
		}},
		{"a message for another chain id is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			m, _ := ParseSIWE(msg)
			m.ChainID = 5
			return m.String(), personalSign(t, k, m.String())
		}},
		{"a message of another version is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			return strings.Replace(msg, "Version: 1", "Version: 2", 1), personalSign(t, k, strings.Replace(msg, "Version: 1", "Version: 2", 1))
		}},
		{"a message for another address than its signer is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			m := issueChallenge(t, iss, otherAddr)
			return m, personalSign(t, k, m)
		}},
		{"a challenge issued to another address, rewritten to the signer's, is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			m, _ := ParseSIWE(issueChallenge(t, iss, otherAddr))
			m.Address = crypto.PubkeyToAddress(k.PublicKey)
			return m.String(), personalSign(t, k, m.String())
		}},
		{"a message signed by another key is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			return msg, personalSign(t, other, msg)
		}},
		{"a high-s twin of a valid signature is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			sig, _ := hex.DecodeString(personalSign(t, k, msg)[2:])
			s := new(big.Int).Sub(secp256k1N, new(big.Int).SetBytes(sig[32:64]))
			s.FillBytes(sig[32:64])
			sig[64] = 55 - sig[64] // 27 ↔ 28: the twin recovers the same key
			return msg, "0x" + hex.EncodeToString(sig)
		}},
		{"a signature one byte short is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			return msg, personalSign(t, k, msg)[:130]
		}},
		{"a signature one byte long is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			return msg, personalSign(t, k, msg) + "00"
		}},
		{"a signature that is not hex is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			return msg, "0x" + strings.Repeat("zz", 65)
		}},
		{"a signature without 0x is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			return msg, personalSign(t, k, msg)[2:]
		}},
		{"a signature with v 29 is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			s := personalSign(t, k, msg)
			return msg, s[:130] + "1d"
		}},
		{"a signature over the message with a trailing newline is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			return msg, personalSign(t, k, msg+"\n")
		}},
		{"a message that does not parse is refused", func(t *testing.T, iss *Issuer, c *clock, msg string, k *ecdsa.PrivateKey) (string, string) {
			m := strings.ReplaceAll(msg, "\n", "\r\n")
			return m, personalSign(t, k, m)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, c := newTestIssuer(t)
			k, addr := newAccount(t)
			msg, sig := tt.attack(t, iss, c, issueChallenge(t, iss, addr), k)
			tok, err := iss.Exchange(context.Background(), msg, sig)
			if err == nil {
				t.Fatalf("exchange succeeded: %+v", tok)
			}
			t.Log(err)
			if CodeOf(err) != CodeInvalidGrant {
				t.Fatalf("code %q, want invalid_grant: %v", CodeOf(err), err)
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(sig, "0x")) && len(sig) > 10 {
				t.Fatalf("the error echoes the signature: %v", err)
			}
		})
	}
}

// TestTamperedMessageIsRefused changes each line of a signed challenge and demands a refusal.
func TestTamperedMessageIsRefused(t *testing.T) {
	iss, _ := newTestIssuer(t)
	k, addr := newAccount(t)
	m, _ := ParseSIWE(issueChallenge(t, iss, addr))
	m.NotBefore = t0
	m.RequestID = "r1"
	m.Resources = []string{"https://node.example/a"}
	msg := m.String()
	sig := personalSign(t, k, msg)
	lines := strings.Split(msg, "\n")
	for i, line := range lines {
		for _, change := range []func(string) string{
			func(s string) string { return s + "x" },
			func(s string) string {
				if s == "" {
					return " "
				}
				b := []byte(s)
				b[len(b)-1] ^= 1
				return string(b)
			},
		} {
			l := append([]string(nil), lines...)
			l[i] = change(line)
			if _, err := iss.Exchange(context.Background(), strings.Join(l, "\n"), sig); err == nil {
				t.Errorf("a change of line %d (%q → %q) went unnoticed", i+1, line, l[i])
			}
		}
	}
	if _, err := iss.Exchange(context.Background(), msg, sig); err != nil {
		t.Fatalf("the untampered message is refused: %v", err)
	}
}

func TestChallengeRefusesBadAddresses(t *testing.T) {
	iss, _ := newTestIssuer(t)
	_, addr := newAccount(t)
	bad := []string{"", "0x", addr.Hex()[2:], addr.Hex()[:41], addr.Hex() + "0",
		"0x" + strings.Repeat("g", 40), badChecksum(addr)}
	for _, a := range bad {
		if _, err := iss.Challenge(context.Background(), a); CodeOf(err) != CodeInvalidRequest {
			t.Errorf("Challenge(%q) = %v, want invalid_request", a, err)
		}
	}
}

// badChecksum returns addr's hex with the case of one letter swapped, a broken EIP-55 checksum.
func badChecksum(addr common.Address) string {
	b := []byte(addr.Hex())
	for i := 2; i < len(b); i++ {
		if c := b[i]; 'a' <= c && c <= 'f' {
			b[i] = c - 32
			return string(b)
		} else if 'A' <= c && c <= 'F' {
			b[i] = c + 32
			return string(b)
		}
	}
	return "0xnot-an-address"
}

// signRaw signs an arbitrary header and payload with key (nil key: no signature), as an attacker would.
func signRaw(t *testing.T, header, payload map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
}

func es256(k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		d := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func TestVerifyRefusals(t *testing.T) {
	iss, c := newTestIssuer(t)
	stranger, _ := newTestIssuer(t) // same configuration, another key
	_, addr := newAccount(t)
	good := func() map[string]any {
		return map[string]any{"iss": "https://node.example", "sub": addr.Hex(), "aud": "glovebox",
			"iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "jti": "x"}
	}
	with := func(k string, v any) map[string]any {
		p := good()
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
		return p
	}
	hdr := map[string]any{"alg": "ES256", "typ": "JWT", "kid": iss.KeyID()}
	pubDER, _ := x509.MarshalPKIXPublicKey(&iss.key.PublicKey)
	tests := []struct {
		name  string
		token func() string
		now   time.Time
	}{
		{"a token signed by another node's key is refused", func() string {
			tok, _ := stranger.issue(addr, t0)
			return tok.AccessToken
		}, t0},
		{"a token signed by another key under this node's kid is refused", func() string {
			return signRaw(t, hdr, good(), es256(stranger.key))
		}, t0},
		{"an unsigned alg=none token is refused", func() string {
			return signRaw(t, map[string]any{"alg": "none", "typ": "JWT", "kid": iss.KeyID()}, good(),
				func([]byte) []byte { return nil })
		}, t0},
		{"an alg=none token with a signature is refused", func() string {
			return signRaw(t, map[string]any{"alg": "none", "typ": "JWT", "kid": iss.KeyID()}, good(),
				func([]byte) []byte { return []byte("sig") })
		}, t0},
		{"an HS256 token keyed with the public key (PEM) is refused", func() string {
			pemKey := "-----BEGIN PUBLIC KEY-----\n" + base64.StdEncoding.EncodeToString(pubDER) + "\n-----END PUBLIC KEY-----\n"
			return signRaw(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": iss.KeyID()}, good(),
				func(in []byte) []byte { m := hmac.New(sha256.New, []byte(pemKey)); m.Write(in); return m.Sum(nil) })
		}, t0},
		{"an HS256 token keyed with the JWKS is refused", func() string {
			return signRaw(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": iss.KeyID()}, good(),
				func(in []byte) []byte { m := hmac.New(sha256.New, iss.JWKS()); m.Write(in); return m.Sum(nil) })
		}, t0},
		{"a token at its expiry time is refused", func() string {
			tok, _ := iss.issue(addr, t0)
			return tok.AccessToken
		}, t0.Add(time.Hour)},
		{"a token long before its nbf is refused", func() string {
			tok, _ := iss.issue(addr, t0)
			return tok.AccessToken
		}, t0.Add(-Skew - time.Second)},
		{"a token for another audience is refused", func() string { return signRaw(t, hdr, with("aud", "other"), es256(iss.key)) }, t0},
		{"a token for two audiences is refused", func() string {
			return signRaw(t, hdr, with("aud", []string{"glovebox", "other"}), es256(iss.key))
		}, t0},
		{"a token without an audience is refused", func() string { return signRaw(t, hdr, with("aud", nil), es256(iss.key)) }, t0},
		{"a token from another issuer is refused", func() string {
			return signRaw(t, hdr, with("iss", "https://evil.example"), es256(iss.key))
		}, t0},
		{"a token without exp is refused", func() string { return signRaw(t, hdr, with("exp", nil), es256(iss.key)) }, t0},
		{"a token whose subject is not an address is refused", func() string { return signRaw(t, hdr, with("sub", "alice"), es256(iss.key)) }, t0},
		{"a token whose subject is lower case hex is refused", func() string {
			return signRaw(t, hdr, with("sub", strings.ToLower(addr.Hex())), es256(iss.key))
		}, t0},
		{"a token in JWS JSON serialization is refused", func() string {
			tok, _ := iss.issue(addr, t0)
			p := strings.Split(tok.AccessToken, ".")
			return `{"protected":"` + p[0] + `","payload":"` + p[1] + `","signature":"` + p[2] + `"}`
		}, t0},
		{"a token with a non-canonical last base64 character is refused", func() string {
			tok, _ := iss.issue(addr, t0)
			s := []byte(tok.AccessToken)
			// 64 signature bytes leave 4 unused bits in the last character; set the lowest.
			s[len(s)-1] = base64URL[strings.IndexByte(base64URL, s[len(s)-1])|1]
			return string(s)
		}, t0},
		{"an empty token is refused", func() string { return "" }, t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.now = tt.now
			defer func() { c.now = t0 }()
			claims, err := iss.Verify(tt.token())
			if err == nil {
				t.Fatalf("verified: %+v", claims)
			}
			t.Log(err)
			if !errors.Is(err, ErrInvalidToken) || CodeOf(err) != CodeUnauthenticated {
				t.Fatalf("error %v is not an unauthenticated ErrInvalidToken", err)
			}
		})
	}
	// The helpers themselves make tokens that verify, so the refusals above are for the stated reason.
	if _, err := iss.Verify(signRaw(t, hdr, good(), es256(iss.key))); err != nil {
		t.Fatalf("a well-formed hand-made token is refused: %v", err)
	}
}

const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestEveryBitFlipOfATokenIsRefused(t *testing.T) {
	iss, _ := newTestIssuer(t)
	_, addr := newAccount(t)
	tok, err := iss.issue(addr, t0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte(tok.AccessToken)
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			b[i] ^= 1 << bit
			if _, err := iss.Verify(string(b)); err == nil {
				t.Errorf("flipping bit %d of byte %d still verifies", bit, i)
			}
			b[i] ^= 1 << bit
		}
	}
	if _, err := iss.Verify(string(b)); err != nil {
		t.Fatal(err)
	}
}

func TestKeyPersistsAcrossIssuers(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: t0}
	a, err := NewIssuer(testConfig(dir, c))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewIssuer(testConfig(dir, c))
	if err != nil {
		t.Fatal(err)
	}
	if a.KeyID() != b.KeyID() {
		t.Fatal("a second issuer on the same directory has another key")
	}
	_, addr := newAccount(t)
	tok, _ := a.issue(addr, t0)
	if _, err := b.Verify(tok.AccessToken); err != nil {
		t.Fatalf("a token of the first issuer does not verify with the second: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("the key directory holds %d files, want only %s", len(entries), KeyFile)
	}
}

func TestNewIssuerRefusals(t *testing.T) {
	dir := t.TempDir()
	good := Config{Dir: dir, Issuer: "https://node.example", Domain: "node.example"}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"a config without a directory is refused", func(c *Config) { c.Dir = "" }},
		{"an issuer that is not a URL is refused", func(c *Config) { c.Issuer = "node.example" }},
		{"an issuer that is not http(s) is refused", func(c *Config) { c.Issuer = "ftp://node.example" }},
		{"a domain with a path is refused", func(c *Config) { c.Domain = "node.example/x" }},
		{"a domain with a space is refused", func(c *Config) { c.Domain = "node example" }},
		{"a sub-second token lifetime is refused", func(c *Config) { c.TokenTTL = time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			if _, err := NewIssuer(c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	os.MkdirAll(filepath.Join(dir, "bad"), 0o700)
	os.WriteFile(filepath.Join(dir, "bad", KeyFile), []byte("not a key"), 0o600)
	c := good
	c.Dir = filepath.Join(dir, "bad")
	if _, err := NewIssuer(c); err == nil {
		t.Fatal("a garbage key file is accepted")
	}
}

func FuzzVerify(f *testing.F) {
	iss, _ := newTestIssuer(f)
	_, addr := newAccount(f)
	tok, err := iss.issue(addr, t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok.AccessToken)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		_, err := iss.Verify(s)
		if err == nil && s != tok.AccessToken {
			t.Fatalf("a token other than the one issued verifies: %q", s)
		}
		r := httptestRequest("Bearer " + s)
		if _, err := iss.FromRequest(r); err == nil && s != tok.AccessToken {
			t.Fatalf("FromRequest accepts %q", s)
		}
	})
}

func TestConcurrentExchangesOfOneChallengeYieldOneToken(t *testing.T) {
	iss, _ := newTestIssuer(t)
	k, addr := newAccount(t)
	msg := issueChallenge(t, iss, addr)
	sig := personalSign(t, k, msg)
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() { _, err := iss.Exchange(context.Background(), msg, sig); errs <- err }()
	}
	ok := 0
	for range n {
		if <-errs == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d exchanges succeeded, want 1", ok)
	}
}

// TestAVerifiedTokenIsCheckedAgainOnEveryUse verifies a token (so its signature is remembered), then
// checks that expiry, revocation and bit flips still refuse it, and that the memory stays bounded.
func TestAVerifiedTokenIsCheckedAgainOnEveryUse(t *testing.T) {
	iss, c := newTestIssuer(t)
	_, addr := newAccount(t)
	tok, err := iss.issue(addr, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Verify(tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, ok := iss.verified.get(tok.AccessToken); !ok {
		t.Fatal("a verified token is not remembered")
	}
	b := []byte(tok.AccessToken)
	b[len(b)-5] ^= 1
	if _, err := iss.Verify(string(b)); err == nil {
		t.Error("a token one bit away from a remembered one verifies")
	}
	c.now = t0.Add(time.Hour)
	if _, err := iss.Verify(tok.AccessToken); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("a remembered token past its expiry: %v", err)
	}
	c.now = t0.Add(time.Minute)
	claims, err := iss.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	iss.Revoke(claims.ID, claims.Expiry)
	if _, err := iss.Verify(tok.AccessToken); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a remembered token after its revocation: %v", err)
	}
	small := verifiedCache{max: 3}
	for i := range 10 {
		small.add(fmt.Sprint(i), signedClaims{})
	}
	if len(small.m) != 3 || len(small.order) != 3 {
		t.Errorf("the cache holds %d tokens, at most 3 allowed", len(small.m))
	}
	if _, ok := small.get("9"); !ok {
		t.Error("the newest token was evicted")
	}
}
