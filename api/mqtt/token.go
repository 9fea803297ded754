package mqtt

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/ledger"
)

// MaxTokenTTL is how far ahead of the node's clock a login token may expire.
const MaxTokenTTL = 24 * time.Hour

// TokenClockSkew is how much further ahead than MaxTokenTTL the node still takes a token's expiry, for a
// device whose clock runs a little ahead of the node's.
const TokenClockSkew = 5 * time.Minute

// Errors of CheckLogin. The broker answers all of them with "bad user name or password"; they are for
// logs and tests.
var (
	ErrBadUsername  = errors.New("the user name is not a 0x device address")
	ErrBadToken     = errors.New("the password is not a login token <expires>.<signature>")
	ErrTokenExpired = errors.New("the login token has expired")
	ErrTokenTooLong = errors.New("the login token expires more than 24h ahead")
	ErrWrongSigner  = errors.New("the login token is not signed by the device")
)

// LoginMessage returns the text a device signs with EIP-191 personal_sign to log in:
//
//	glovebox mqtt login
//	origin: <the log's origin line>
//	device: <the device address, lower-case 0x hex>
//	expires: <unix seconds, decimal>
//
// Lines are separated by a single "\n"; there is no trailing line break.
func LoginMessage(origin string, device common.Address, expires int64) []byte {
	return []byte("glovebox mqtt login\norigin: " + origin + "\ndevice: " + strings.ToLower(device.Hex()) +
		"\nexpires: " + strconv.FormatInt(expires, 10))
}

// LoginToken returns the MQTT user name (the device's address, lower-case) and password (a login token
// "<expires>.0x<signature>") with which the device of key connects to the node whose log has origin. The
// token is valid until expires, which must be in the future and at most MaxTokenTTL ahead.
func LoginToken(key *ecdsa.PrivateKey, origin string, expires time.Time) (username, password string, err error) {
	if key == nil {
		return "", "", errors.New("no device key")
	}
	if origin == "" || strings.ContainsAny(origin, "\r\n") {
		return "", "", fmt.Errorf("the origin %q is not a log origin line", origin)
	}
	exp := expires.Unix()
	now := time.Now()
	if exp <= now.Unix() {
		return "", "", fmt.Errorf("the expiry %s is not in the future", expires.UTC().Format(time.RFC3339))
	}
	if exp > now.Add(MaxTokenTTL).Unix() {
		return "", "", fmt.Errorf("the expiry %s is more than %s ahead", expires.UTC().Format(time.RFC3339), MaxTokenTTL)
	}
	addr := crypto.PubkeyToAddress(key.PublicKey)
	h := ledger.PersonalHash(LoginMessage(origin, addr, exp))
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		return "", "", fmt.Errorf("couldn't sign the login token: %w", err)
	}
	sig[64] += 27
	return strings.ToLower(addr.Hex()), strconv.FormatInt(exp, 10) + ".0x" + hex.EncodeToString(sig), nil
}

// ParseToken splits a login token "<expires>.<signature>" into the expiry (unix seconds, canonical
// decimal) and the 65-byte signature (130 hex digits, with or without 0x; v is 27/28 or 0/1). It checks
// the form only.
func ParseToken(password string) (expires int64, sig ledger.Signature, err error) {
	exp, sigHex, ok := strings.Cut(password, ".")
	if !ok {
		return 0, sig, ErrBadToken
	}
	expires, err = strconv.ParseInt(exp, 10, 64)
	if err != nil || expires <= 0 || strconv.FormatInt(expires, 10) != exp {
		return 0, sig, fmt.Errorf("%w: the expiry is not unix seconds in decimal", ErrBadToken)
	}
	if strings.HasPrefix(sigHex, "0x") || strings.HasPrefix(sigHex, "0X") {
		sigHex = sigHex[2:]
	}
	if len(sigHex) != 2*len(sig) {
		return 0, sig, fmt.Errorf("%w: the signature is not 65 bytes of hex", ErrBadToken)
	}
	if _, err := hex.Decode(sig[:], []byte(sigHex)); err != nil {
		return 0, sig, fmt.Errorf("%w: the signature is not hex", ErrBadToken)
	}
	if sig[64] < 2 {
		sig[64] += 27
	}
	return expires, sig, nil
}

// Login is a checked login: who the device is and until when its token is valid.
type Login struct {
	Device  common.Address
	Expires int64 // unix seconds
}

// CheckLogin checks an MQTT user name and password against the log's origin at now: the user name is a
// 0x address, the password a token by that address for this origin, not expired and at most MaxTokenTTL
// (plus TokenClockSkew) ahead. It does not look at the ledger (whether the device is registered).
func CheckLogin(username string, password []byte, origin string, now time.Time) (Login, error) {
	addr, err := ledger.ParseAddress(username)
	if err != nil {
		return Login{}, ErrBadUsername
	}
	exp, sig, err := ParseToken(string(password))
	if err != nil {
		return Login{}, err
	}
	if exp <= now.Unix() {
		return Login{}, ErrTokenExpired
	}
	if exp > now.Add(MaxTokenTTL+TokenClockSkew).Unix() {
		return Login{}, ErrTokenTooLong
	}
	signer, err := ledger.Recover(ledger.PersonalHash(LoginMessage(origin, addr, exp)), sig)
	if err != nil || signer != addr {
		return Login{}, ErrWrongSigner
	}
	return Login{Device: addr, Expires: exp}, nil
}
