package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// MaxSIWE is the longest EIP-4361 message ParseSIWE reads, in bytes.
const MaxSIWE = 8 << 10

// siweSuffix ends the first line of every EIP-4361 message.
const siweSuffix = " wants you to sign in with your Ethereum account:"

// SIWEMessage is one EIP-4361 (Sign-In with Ethereum) message. String formats it; ParseSIWE parses it.
// Optional fields are absent when they hold their zero value.
type SIWEMessage struct {
	Scheme         string         // optional URI scheme of the origin, e.g. "https"
	Domain         string         // RFC 3986 authority (host[:port]) asking for the sign-in
	Address        common.Address // the account signing in; written EIP-55 checksummed
	Statement      string         // optional human-readable line; no line breaks
	URI            string         // RFC 3986 URI the sign-in is for
	Version        string         // always "1"
	ChainID        uint64         // EIP-155 chain id
	Nonce          string         // at least 8 ASCII letters and digits
	IssuedAt       time.Time      // required
	ExpirationTime time.Time      // optional
	NotBefore      time.Time      // optional
	RequestID      string         // optional RFC 3986 pchar string
	Resources      []string       // optional RFC 3986 URIs
}

// String formats m as EIP-4361 prescribes: lines separated by LF, no trailing newline, date-times as RFC 3339
// in UTC with the fewest fraction digits (time.RFC3339Nano).
func (m *SIWEMessage) String() string {
	var b strings.Builder
	if m.Scheme != "" {
		b.WriteString(m.Scheme + "://")
	}
	b.WriteString(m.Domain + siweSuffix + "\n")
	b.WriteString(m.Address.Hex() + "\n\n")
	if m.Statement != "" {
		b.WriteString(m.Statement + "\n")
	}
	b.WriteString("\nURI: " + m.URI)
	b.WriteString("\nVersion: " + m.Version)
	b.WriteString("\nChain ID: " + strconv.FormatUint(m.ChainID, 10))
	b.WriteString("\nNonce: " + m.Nonce)
	b.WriteString("\nIssued At: " + formatTime(m.IssuedAt))
	if !m.ExpirationTime.IsZero() {
		b.WriteString("\nExpiration Time: " + formatTime(m.ExpirationTime))
	}
	if !m.NotBefore.IsZero() {
		b.WriteString("\nNot Before: " + formatTime(m.NotBefore))
	}
	if m.RequestID != "" {
		b.WriteString("\nRequest ID: " + m.RequestID)
	}
	if len(m.Resources) > 0 {
		b.WriteString("\nResources:")
		for _, r := range m.Resources {
			b.WriteString("\n- " + r)
		}
	}
	return b.String()
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ParseSIWE parses an EIP-4361 message. It accepts only the canonical form, the one String writes back
// byte for byte: LF line breaks and no trailing one, an EIP-55 checksummed address, a chain id without
// leading zeros, date-times in UTC ("Z") without trailing zero fraction digits, and optional fields either
// absent or non-empty (an empty statement, "Request ID: " or "Resources:" list is refused). Every field is
// checked against the ABNF of EIP-4361 and RFC 3986.
func ParseSIWE(s string) (*SIWEMessage, error) {
	if len(s) > MaxSIWE {
		return nil, fmt.Errorf("the message is longer than %d bytes", MaxSIWE)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\n' && (c < 0x20 || c > 0x7e) {
			return nil, errors.New("the message may hold only printable ASCII and LF line breaks")
		}
	}
	p := siweLines{lines: strings.Split(s, "\n")}
	m := new(SIWEMessage)

	head, ok := strings.CutSuffix(p.next(), siweSuffix)
	if !ok {
		return nil, p.errorf("want %q at the end of the first line", siweSuffix)
	}
	if scheme, domain, found := strings.Cut(head, "://"); found {
		if !validScheme(scheme) {
			return nil, p.errorf("bad scheme")
		}
		m.Scheme, head = scheme, domain
	}
	if !validAuthority(head) {
		return nil, p.errorf("the domain is not an RFC 3986 authority")
	}
	m.Domain = head

	addr := p.next()
	if len(addr) != 42 || !common.IsHexAddress(addr) || !strings.HasPrefix(addr, "0x") {
		return nil, p.errorf("want a 0x-prefixed 20-byte hex address")
	}
	m.Address = common.HexToAddress(addr)
	if m.Address.Hex() != addr {
		return nil, p.errorf("the address is not EIP-55 checksummed")
	}
	if p.next() != "" {
		return nil, p.errorf("want an empty line after the address")
	}
	if st := p.next(); st != "" {
		if !validStatement(st) {
			return nil, p.errorf("the statement holds a character EIP-4361 does not allow")
		}
		m.Statement = st
		if p.next() != "" {
			return nil, p.errorf("want an empty line after the statement")
		}
	}

	var err error
	uri, err := p.field("URI: ")
	if err != nil {
		return nil, err
	}
	if !validURI(uri) {
		return nil, p.errorf("the URI is not an RFC 3986 URI")
	}
	m.URI = uri
	if m.Version, err = p.field("Version: "); err != nil {
		return nil, err
	}
	if m.Version != "1" {
		return nil, p.errorf("the version must be 1")
	}
	chain, err := p.field("Chain ID: ")
	if err != nil {
		return nil, err
	}
	if m.ChainID, err = parseDecimal(chain); err != nil {
		return nil, p.errorf("bad chain id: %w", err)
	}
	if m.Nonce, err = p.field("Nonce: "); err != nil {
		return nil, err
	}
	if !validNonce(m.Nonce) {
		return nil, p.errorf("a nonce is at least 8 ASCII letters and digits")
	}
	if m.IssuedAt, err = p.timeField("Issued At: "); err != nil {
		return nil, err
	}
	if p.peek("Expiration Time: ") {
		if m.ExpirationTime, err = p.timeField("Expiration Time: "); err != nil {
			return nil, err
		}
	}
	if p.peek("Not Before: ") {
		if m.NotBefore, err = p.timeField("Not Before: "); err != nil {
			return nil, err
		}
	}
	if p.peek("Request ID: ") {
		if m.RequestID, err = p.field("Request ID: "); err != nil {
			return nil, err
		}
		if !validPchars(m.RequestID) {
			return nil, p.errorf("a request id is one or more RFC 3986 pchars")
		}
	}
	if p.peek("Resources:") {
		if p.next() != "Resources:" {
			return nil, p.errorf(`want "Resources:" alone on its line`)
		}
		for !p.done() {
			r, err := p.field("- ")
			if err != nil {
				return nil, err
			}
			if !validURI(r) {
				return nil, p.errorf("a resource is an RFC 3986 URI")
			}
			m.Resources = append(m.Resources, r)
		}
		if len(m.Resources) == 0 {
			return nil, p.errorf("an empty resource list is written by leaving out \"Resources:\"")
		}
	}
	if !p.done() {
		return nil, fmt.Errorf("line %d: unexpected line (fields are out of order, repeated or unknown)", p.i+1)
	}
	return m, nil
}

// siweLines walks the lines of a message.
type siweLines struct {
	lines []string
	i     int // the next line to read
}

func (p *siweLines) done() bool { return p.i >= len(p.lines) }

// next returns the next line, or "\x00" (which no line holds) at the end, so comparisons fail.
func (p *siweLines) next() string {
	if p.done() {
		p.i++
		return "\x00"
	}
	p.i++
	return p.lines[p.i-1]
}

func (p *siweLines) peek(prefix string) bool {
	return !p.done() && strings.HasPrefix(p.lines[p.i], prefix)
}

// errorf reports a problem with the line last read.
func (p *siweLines) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: "+format, append([]any{p.i}, args...)...)
}

func (p *siweLines) field(prefix string) (string, error) {
	v, ok := strings.CutPrefix(p.next(), prefix)
	if !ok {
		return "", p.errorf("want %q", prefix)
	}
	return v, nil
}

func (p *siweLines) timeField(prefix string) (time.Time, error) {
	v, err := p.field(prefix)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.IsZero() || formatTime(t) != v {
		return time.Time{}, p.errorf("%swant an RFC 3339 UTC date-time such as 2006-01-02T15:04:05Z", prefix)
	}
	return t, nil
}

func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, errors.New("want a decimal number without leading zeros")
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, errors.New("want a decimal number")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// Character classes of RFC 3986 and EIP-4361, ASCII only.

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
func isUnreserved(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("-._~", c) >= 0
}
func isSubDelim(c byte) bool { return strings.IndexByte("!$&'()*+,;=", c) >= 0 }
func isGenDelim(c byte) bool { return strings.IndexByte(":/?#[]@", c) >= 0 }

// validChars reports whether s is made of bytes ok accepts and well-formed %XX escapes (if pct).
func validChars(s string, pct bool, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case ok(c):
		case pct && c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			i += 2
		default:
			return false
		}
	}
	return true
}

func validScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	return validChars(s, false, func(c byte) bool {
		return isAlpha(c) || isDigit(c) || c == '+' || c == '-' || c == '.'
	})
}

func validStatement(s string) bool {
	return validChars(s, false, func(c byte) bool {
		return isUnreserved(c) || isGenDelim(c) || isSubDelim(c) || c == ' '
	})
}

func validNonce(s string) bool {
	return len(s) >= 8 && validChars(s, false, func(c byte) bool { return isAlpha(c) || isDigit(c) })
}

func validPchars(s string) bool {
	return s != "" && validChars(s, true, func(c byte) bool {
		return isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@'
	})
}

// validAuthority checks an RFC 3986 authority: [userinfo "@"] host [":" port], with a non-empty host and,
// when the colon is there, a non-empty port.
func validAuthority(s string) bool {
	if at := strings.IndexByte(s, '@'); at >= 0 {
		userinfo := s[:at]
		s = s[at+1:]
		if !validChars(userinfo, true, func(c byte) bool { return isUnreserved(c) || isSubDelim(c) || c == ':' }) {
			return false
		}
	}
	host, port := s, ""
	hasPort := false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, s = s[:end+1], s[end+1:]
		if s != "" {
			if s[0] != ':' {
				return false
			}
			port, hasPort = s[1:], true
		}
		inner := host[1 : len(host)-1]
		if inner == "" || !validChars(inner, false, func(c byte) bool { return isHex(c) || c == ':' || c == '.' }) {
			return false
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port, hasPort = s[:i], s[i+1:], true
		}
		if host == "" || !validChars(host, true, func(c byte) bool { return isUnreserved(c) || isSubDelim(c) }) {
			return false
		}
	}
	if hasPort && (port == "" || !validChars(port, false, isDigit)) {
		return false
	}
	return true
}

// validURI checks an RFC 3986 URI: a scheme, a colon, and characters of the URI grammar; net/url must
// also be able to parse it.
func validURI(s string) bool {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !validScheme(scheme) {
		return false
	}
	if !validChars(rest, true, func(c byte) bool { return isUnreserved(c) || isGenDelim(c) || isSubDelim(c) }) {
		return false
	}
	_, err := url.Parse(s)
	return err == nil
}
