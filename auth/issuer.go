package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/glovebox/glovebox/auth/challenge"
	"github.com/glovebox/glovebox/ledger"
)

// Defaults for the zero values of Config.
const (
	DefaultTokenTTL     = time.Hour
	DefaultChallengeTTL = 5 * time.Minute
	DefaultChainID      = 1
)

const (
	// Audience is the "aud" of every token: the node's own API.
	Audience = "glovebox"
	// GrantTypeSIWE is the OAuth 2.0 grant_type (an RFC 6749 §4.5 extension grant) that exchanges a signed
	// EIP-4361 message for an access token.
	GrantTypeSIWE = "urn:glovebox:params:oauth:grant-type:siwe"
	// Statement is the statement line of every challenge.
	Statement = "Sign in to Glovebox. This proves you control this account; it grants nothing."
	// KeyFile is the name of the token signing key in Config.Dir.
	KeyFile = "jwt.key"
	// Skew is how far before a challenge's Issued At, and before a token's nbf, a clock may be.
	Skew = time.Minute
	// MaxToken is the longest bearer token Verify reads, in bytes.
	MaxToken = 4 << 10
)

// Config configures an Issuer. It is the configuration reference: every field's zero value is documented.
type Config struct {
	// Dir holds the token signing key, KeyFile: an ECDSA P-256 private key, PKCS#8 in a PEM "PRIVATE KEY"
	// block, mode 0600. It is created (with Dir, mode 0700) if missing. Required.
	Dir string
	// Issuer is the node's base URL, e.g. "https://node.example". It is the "iss" of every token and the
	// "URI:" of every challenge. Required.
	Issuer string
	// Domain is the RFC 3986 authority (host[:port]) of the node, the first word of every challenge, which
	// wallets compare with the origin asking for the signature. Required.
	Domain string
	// ChainID is the "Chain ID:" of challenges. EIP-4361 requires one, but a sign-in here touches no
	// chain, so it binds nothing; zero means DefaultChainID (1, Ethereum mainnet, which every wallet knows).
	ChainID uint64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TokenTTL is the lifetime of an access token; zero means DefaultTokenTTL.
	TokenTTL time.Duration
	// ChallengeTTL is the lifetime of a challenge; zero means DefaultChallengeTTL.
	ChallengeTTL time.Duration
	// Challenges keeps the outstanding challenges; nil means this process's memory
	// (challenge.NewMemory(DefaultMaxNonces)). A cluster's processes share one (store/postgres), so that
	// a challenge fetched from one is redeemed at any other.
	Challenges challenge.Store
}

// Issuer issues sign-in challenges, exchanges signed challenges for access tokens and verifies tokens.
// It is safe for concurrent use. Everything but the outstanding challenges (in Config.Challenges), the
// revoked tokens and the cache of verified ones is immutable after NewIssuer.
type Issuer struct {
	cfg    Config
	key    *ecdsa.PrivateKey
	kid    string // RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key
	jwks   []byte
	nonces challenge.Store
	// revoked holds the ids of tokens revoked before their expiry (Revoke).
	revoked revokedSet
	// verified holds the claims of tokens whose signature checked, by the token's exact text, so that an
	// app's every request does not pay for an ECDSA verification; expiry, revocation and the rest are
	// still checked on each use.
	verified verifiedCache
}

// NewIssuer loads or creates the signing key in cfg.Dir and returns an Issuer.
func NewIssuer(cfg Config) (*Issuer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("auth: Config.Dir is required")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || !validURI(cfg.Issuer) || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("auth: Config.Issuer %q is not an http(s) URL", cfg.Issuer)
	}
	if !validAuthority(cfg.Domain) {
		return nil, fmt.Errorf("auth: Config.Domain %q is not a host[:port]", cfg.Domain)
	}
	if cfg.ChainID == 0 {
		cfg.ChainID = DefaultChainID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.ChallengeTTL == 0 {
		cfg.ChallengeTTL = DefaultChallengeTTL
	}
	if cfg.Challenges == nil {
		cfg.Challenges = challenge.NewMemory(DefaultMaxNonces)
	}
	if cfg.TokenTTL < time.Second || cfg.ChallengeTTL < time.Second {
		return nil, errors.New("auth: TokenTTL and ChallengeTTL are at least a second")
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.Dir, KeyFile))
	if err != nil {
		return nil, err
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("auth: couldn't compute the key thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, fmt.Errorf("auth: couldn't encode the key set: %w", err)
	}
	return &Issuer{cfg: cfg, key: key, kid: pub.KeyID, jwks: jwks, nonces: cfg.Challenges,
		verified: verifiedCache{max: DefaultVerifiedTokens}}, nil
}

// loadOrCreateKey reads the key at path or, if there is none, creates it. A new key is written to a
// temporary file and linked into place, so a reader never sees half a key and of two processes starting
// at once both end up with the one that won.
func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKey(path); err != nil {
			return nil, err
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: couldn't read the signing key: %w", err)
	}
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("auth: %s is not one PEM \"PRIVATE KEY\" block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: couldn't parse %s: %w", path, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("auth: %s is not an ECDSA P-256 key", path)
	}
	return ec, nil
}

func createKey(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("auth: couldn't create the key directory: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("auth: couldn't generate a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("auth: couldn't encode the key: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".jwt.key.*")
	if err != nil {
		return fmt.Errorf("auth: couldn't create the key file: %w", err)
	}
	defer os.Remove(f.Name())
	// CreateTemp makes the file 0600.
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("auth: couldn't write the key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("auth: couldn't write the key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("auth: couldn't write the key: %w", err)
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("auth: couldn't install the key: %w", err)
	}
	return nil
}

// KeyID returns the "kid" of the signing key: its RFC 7638 thumbprint.
func (i *Issuer) KeyID() string { return i.kid }

// JWKS returns the RFC 7517 JSON Web Key Set holding the public token signing key.
func (i *Issuer) JWKS() []byte { return append([]byte(nil), i.jwks...) }

// Challenge returns a fresh EIP-4361 message for address to sign with personal_sign. Its nonce stays
// outstanding for ChallengeTTL or until a successful Exchange.
func (i *Issuer) Challenge(ctx context.Context, address string) (string, error) {
	m, err := i.challenge(ctx, address)
	if err != nil {
		return "", err
	}
	return m.String(), nil
}

func (i *Issuer) challenge(ctx context.Context, address string) (*SIWEMessage, error) {
	a, err := ledger.ParseAddress(address)
	if err != nil {
		return nil, &Error{Code: CodeInvalidRequest, Message: "address: " + err.Error()}
	}
	var rnd [16]byte // 128 bits; hex is alphanumeric, as EIP-4361 nonces must be
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("auth: couldn't draw a nonce: %w", err)
	}
	now := i.cfg.Now().UTC().Truncate(time.Second)
	m := &SIWEMessage{
		Domain:         i.cfg.Domain,
		Address:        a,
		Statement:      Statement,
		URI:            i.cfg.Issuer,
		Version:        "1",
		ChainID:        i.cfg.ChainID,
		Nonce:          hex.EncodeToString(rnd[:]),
		IssuedAt:       now,
		ExpirationTime: now.Add(i.cfg.ChallengeTTL),
	}
	if err := i.nonces.Add(ctx, challenge.Challenge{Nonce: m.Nonce, Address: a, Deadline: m.ExpirationTime}, now); err != nil {
		return nil, fmt.Errorf("auth: couldn't keep the challenge: %w", err)
	}
	return m, nil
}

// Token is an RFC 6749 §5.1 access token response.
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// Exchange checks a signed challenge and returns an access token for the address that signed it. The
// message must be one this Issuer handed out (its nonce outstanding, and issued to the same address),
// for this node's domain, URI, chain id and version 1, and valid now: from Issued At (less Skew) and Not
// Before, until its Expiration Time and the nonce's. signatureHex is the personal_sign signature of the
// message's bytes, 0x and 65 bytes in hex, v 27/28 or 0/1, low s. The nonce is consumed only on success,
// so a forged signature cannot burn someone else's challenge. Refusals are *Error with CodeInvalidGrant.
func (i *Issuer) Exchange(ctx context.Context, message, signatureHex string) (Token, error) {
	m, err := ParseSIWE(message)
	if err != nil {
		return Token{}, &Error{Code: CodeInvalidGrant, Message: "message: " + err.Error(), err: err}
	}
	switch {
	case m.Domain != i.cfg.Domain:
		return Token{}, grantError("the message is for another domain")
	case m.Scheme != "" && !strings.HasPrefix(i.cfg.Issuer, m.Scheme+"://"):
		return Token{}, grantError("the message is for another scheme")
	case m.URI != i.cfg.Issuer:
		return Token{}, grantError("the message is for another URI")
	case m.ChainID != i.cfg.ChainID:
		return Token{}, grantError("the message is for another chain id")
	case m.Version != "1":
		return Token{}, grantError("the message has an unknown version")
	}
	now := i.cfg.Now()
	n, ok, err := i.nonces.Get(ctx, m.Nonce, now)
	if err != nil {
		return Token{}, &Error{Code: CodeServerError, Message: "couldn't look the challenge up", err: err}
	}
	if !ok {
		return Token{}, grantError("the nonce is unknown, used or expired; ask for a new challenge")
	}
	if n.Address != m.Address {
		return Token{}, grantError("the challenge was issued to another address")
	}
	switch {
	case now.Before(m.IssuedAt.Add(-Skew)):
		return Token{}, grantError("the message is issued in the future")
	case !m.NotBefore.IsZero() && now.Before(m.NotBefore):
		return Token{}, grantError("the message is not valid yet (Not Before)")
	case !m.ExpirationTime.IsZero() && !now.Before(m.ExpirationTime), !now.Before(n.Deadline):
		return Token{}, grantError("the challenge expired; ask for a new one")
	}
	sig, err := ledger.ParseSignature(signatureHex)
	if err != nil {
		return Token{}, grantError("signature: a signature is 0x and 130 hex digits (65 bytes)")
	}
	signer, err := ledger.Recover(ledger.PersonalHash([]byte(message)), sig)
	if err != nil {
		var le *ledger.Error
		msg := "the signature does not recover"
		if errors.As(err, &le) {
			msg = le.Message
		}
		return Token{}, grantError("signature: " + msg)
	}
	if signer != m.Address {
		return Token{}, grantError("the message was not signed by its address")
	}
	tok, err := i.issue(m.Address, now)
	if err != nil {
		return Token{}, &Error{Code: CodeServerError, Message: "couldn't sign the token", err: err}
	}
	if ok, err := i.nonces.Consume(ctx, m.Nonce, now); err != nil {
		return Token{}, &Error{Code: CodeServerError, Message: "couldn't consume the challenge", err: err}
	} else if !ok {
		return Token{}, grantError("the nonce is unknown, used or expired; ask for a new challenge")
	}
	return tok, nil
}

// issue signs an access token for sub.
func (i *Issuer) issue(sub common.Address, now time.Time) (Token, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: i.key, KeyID: i.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return Token{}, err
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return Token{}, err
	}
	now = now.Truncate(time.Second)
	s, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:    i.cfg.Issuer,
		Subject:   sub.Hex(),
		Audience:  jwt.Audience{Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(i.cfg.TokenTTL)),
		ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
	}).Serialize()
	if err != nil {
		return Token{}, err
	}
	return Token{AccessToken: s, TokenType: "Bearer", ExpiresIn: int(i.cfg.TokenTTL / time.Second)}, nil
}

// Claims is what a verified token says: who the caller is. It says nothing about what the caller may
// read; that is decided against the ledger on every request.
type Claims struct {
	Subject   common.Address // the account that signed in
	Issuer    string
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
	ID        string // jti
	// Delegation is set on tokens issued through a consent flow (IssueDelegated), zero otherwise.
	Delegation Delegation
}

// Verify checks an access token: compact JWS, ES256 only (so "none", HS256 keyed with the public key and
// every other algorithm are refused before any key is touched), this Issuer's kid and signature, every
// segment in canonical base64url, iss, aud, and nbf ≤ now < exp on the Issuer's clock (nbf with Skew).
// Refusals are *Error with CodeUnauthenticated matching ErrInvalidToken.
func (i *Issuer) Verify(token string) (Claims, error) {
	if len(token) > MaxToken {
		return Claims{}, tokenError("the token is too long", nil)
	}
	sc, ok := i.verified.get(token)
	if !ok {
		var err error
		if sc, err = i.verifySignature(token); err != nil {
			return Claims{}, err
		}
		i.verified.add(token, sc)
	}
	return i.checkClaims(sc.c, sc.dc)
}

// signedClaims are the claims of a token whose signature checked.
type signedClaims struct {
	c  jwt.Claims
	dc delegatedClaims
}

// verifySignature checks that token is a canonical ES256 JWS by this issuer's key and returns its claims.
func (i *Issuer) verifySignature(token string) (signedClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return signedClaims{}, tokenError("the token is not a compact JWS", nil)
	}
	for _, p := range parts {
		// Strict: the unused bits of the last character must be zero, so one token has one spelling.
		if _, err := base64.RawURLEncoding.Strict().DecodeString(p); err != nil || p == "" {
			return signedClaims{}, tokenError("the token is not canonical base64url", nil)
		}
	}
	t, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return signedClaims{}, tokenError("the token is not an ES256 JWS", err)
	}
	if len(t.Headers) != 1 || t.Headers[0].KeyID != i.kid {
		return signedClaims{}, tokenError("the token is signed by another key", nil)
	}
	var sc signedClaims
	if err := t.Claims(&i.key.PublicKey, &sc.c, &sc.dc); err != nil {
		return signedClaims{}, tokenError("the token signature is invalid", err)
	}
	return sc, nil
}

// checkClaims checks the claims of a signed token at this moment.
func (i *Issuer) checkClaims(c jwt.Claims, dc delegatedClaims) (Claims, error) {
	now := i.cfg.Now()
	switch {
	case c.Issuer != i.cfg.Issuer:
		return Claims{}, tokenError("the token is from another issuer", nil)
	case len(c.Audience) != 1 || c.Audience[0] != Audience:
		return Claims{}, tokenError("the token is for another audience", nil)
	case c.Expiry == nil || c.NotBefore == nil || c.IssuedAt == nil:
		return Claims{}, tokenError("the token lacks exp, nbf or iat", nil)
	case !now.Before(c.Expiry.Time()):
		return Claims{}, tokenError("the token expired", nil)
	case now.Before(c.NotBefore.Time().Add(-Skew)):
		return Claims{}, tokenError("the token is not valid yet", nil)
	}
	sub, err := ledger.ParseAddress(c.Subject)
	if err != nil || sub.Hex() != c.Subject {
		return Claims{}, tokenError("the token subject is not an EIP-55 address", nil)
	}
	if i.revoked.has(c.ID) {
		return Claims{}, tokenError("the token was revoked", nil)
	}
	var d Delegation
	if dc.Owner != "" {
		owner, err := ledger.ParseAddress(dc.Owner)
		if err != nil {
			return Claims{}, tokenError("the token owner is not an address", nil)
		}
		d = Delegation{ClientID: dc.ClientID, Owner: owner, Scope: dc.Scope}
	}
	return Claims{
		Delegation: d,
		Subject:    sub,
		Issuer:     c.Issuer,
		IssuedAt:   c.IssuedAt.Time(),
		NotBefore:  c.NotBefore.Time(),
		Expiry:     c.Expiry.Time(),
		ID:         c.ID,
	}, nil
}

// DefaultVerifiedTokens is how many verified tokens an Issuer remembers.
const DefaultVerifiedTokens = 10000

// verifiedCache is a bounded map from token text to its verified claims; when full, the oldest entry goes.
type verifiedCache struct {
	mu    sync.Mutex
	max   int
	m     map[string]signedClaims
	order []string
}

func (v *verifiedCache) get(token string) (signedClaims, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	sc, ok := v.m[token]
	return sc, ok
}

func (v *verifiedCache) add(token string, sc signedClaims) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.max <= 0 {
		return
	}
	if v.m == nil {
		v.m = make(map[string]signedClaims)
	}
	if _, ok := v.m[token]; ok {
		return
	}
	if len(v.order) >= v.max {
		delete(v.m, v.order[0])
		v.order = v.order[1:]
	}
	v.m[token] = sc
	v.order = append(v.order, token)
}
