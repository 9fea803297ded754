package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// MaxURLLen is the longest webhook URL accepted.
const MaxURLLen = 2048

// Policy is what the operator allows webhook targets to be. The zero value is the safe default: HTTPS
// only, public addresses only.
type Policy struct {
	// AllowHTTP accepts plain http:// URLs (serve --webhook-allow-http).
	AllowHTTP bool
	// AllowPrivate lets deliveries connect to loopback, private, link-local and other non-public
	// addresses (serve --webhook-allow-private); tests and private deployments use it.
	AllowPrivate bool
}

// URL errors, for the API to branch on.
var (
	ErrURLScheme  = errors.New("the URL must be https:// (plain http:// only when the operator allows it)")
	ErrURLTooLong = fmt.Errorf("the URL is longer than %d bytes", MaxURLLen)
	ErrURLInvalid = errors.New("the URL is not an absolute http(s) URL with a host, without user info or fragment")
	ErrURLPrivate = errors.New("the URL's address is loopback, private or link-local, which this node does not deliver to")
)

// CheckURL checks a webhook URL against the policy as far as it can without resolving names: scheme,
// length, form, and a literal IP address. Names are checked on the address connected to (Dialer).
func (p Policy) CheckURL(raw string) error {
	if len(raw) > MaxURLLen {
		return ErrURLTooLong
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return ErrURLInvalid
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !p.AllowHTTP {
			return ErrURLScheme
		}
	default:
		return ErrURLScheme
	}
	host := u.Hostname()
	if host == "" {
		return ErrURLInvalid
	}
	if ip, err := netip.ParseAddr(host); err == nil && !p.AllowPrivate && !Public(ip) {
		return ErrURLPrivate
	}
	if !p.AllowPrivate && (strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost")) {
		return ErrURLPrivate
	}
	return nil
}

// nonPublic lists the special-purpose ranges (RFC 6890 and successors) beyond what netip classifies.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/23"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fc00::/7"),
}

// Public reports whether ip is a public unicast address a webhook may be delivered to. IPv4-mapped IPv6
// addresses are judged as the IPv4 address they carry.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsGlobalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// errRefused is returned by the dialer for an address the policy refuses.
var errRefused = errors.New("refused: the address is not public")

// Client returns the HTTP client deliveries are sent with: its dialer checks every address it connects to
// (after name resolution, so a name that resolves to 127.0.0.1 is refused), it uses no proxy, follows no
// redirect (a 3xx is a failed attempt) and gives up after timeout.
func (p Policy) Client(timeout time.Duration) *http.Client { return p.client(timeout, 64) }

// client is Client keeping up to conns idle connections a host: an engine keeps as many as it has
// workers, since many webhooks of one app often share a host, and a connection closed for want of an
// idle slot is a dial and a handshake for a later delivery.
func (p Policy) client(timeout time.Duration, conns int) *http.Client {
	d := &net.Dialer{Timeout: timeout, Control: func(network, address string, _ syscall.RawConn) error {
		if p.AllowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", errRefused, address)
		}
		if !Public(ap.Addr()) {
			return fmt.Errorf("%w: %s", errRefused, ap.Addr())
		}
		return nil
	}}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(256, conns),
		MaxIdleConnsPerHost:   conns, // many webhooks of one app often share a host: reuse, not a handshake per delivery
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{Transport: t, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// refused reports whether err is the guard refusing an address.
func refused(err error) bool { return errors.Is(err, errRefused) }
