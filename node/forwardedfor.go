package node

// The client address of forwarded requests. An api process that is not the sequencer forwards POST
// /v1/transactions (and the grants signed on Connect's consent screen) to the process that is; the
// sequencer's per-address budgets (api.Budgets) would count the forwarding process, so that one caller
// could spend the budget of every caller behind it. The forwarding process therefore names the address
// it took the request from in a Glovebox-Forwarded-For header, authenticated with a key derived from the
// log's signing key (log.key, which every process of a cluster shares and no client holds). Every
// process takes the client address from that header only when its authentication checks, and drops the
// header (and any other, such as X-Forwarded-For or Forwarded, is never read): a client cannot choose
// the address its requests count against.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ForwardedForHeader carries, from one process of a cluster to another, the address of the client a
// forwarded request came from: "<address>; t=<unix seconds>; mac=<base64url HMAC-SHA256>".
const ForwardedForHeader = "Glovebox-Forwarded-For"

// forwardedForSkew is how far the time in a ForwardedForHeader may be from the receiver's clock: the
// processes of a cluster keep synchronized clocks (as leases need), and a header copied off the
// cluster's network is of no use for longer.
const forwardedForSkew = time.Minute

// forwardedFor signs and checks ForwardedForHeader.
type forwardedFor struct {
	key []byte
	now func() time.Time
}

// newForwardedFor derives the header's key from the log's signing key (the text of log.key).
func newForwardedFor(logKey []byte, now func() time.Time) *forwardedFor {
	m := hmac.New(sha256.New, []byte(strings.TrimSpace(string(logKey))))
	m.Write([]byte("glovebox cluster forwarded-for key v1"))
	if now == nil {
		now = time.Now
	}
	return &forwardedFor{key: m.Sum(nil), now: now}
}

func (f *forwardedFor) mac(addr string, t int64, method, path string) string {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte(addr + "\n" + strconv.FormatInt(t, 10) + "\n" + method + " " + path))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sign names remote (a RemoteAddr, host and port, or a bare address) as the client of out.
func (f *forwardedFor) sign(out *http.Request, remote string) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return // not an address: the request counts against this process's
	}
	addr, t := a.Unmap().String(), f.now().Unix()
	out.Header.Set(ForwardedForHeader, addr+"; t="+strconv.FormatInt(t, 10)+"; mac="+f.mac(addr, t, out.Method, out.URL.Path))
}

// trust removes ForwardedForHeader from r and, when it was signed by a process of the cluster for this
// method and path within forwardedForSkew, returns r with the address it names as RemoteAddr (port 0).
// Otherwise r is unchanged: it counts against the address it came from.
func (f *forwardedFor) trust(r *http.Request) *http.Request {
	v := r.Header.Values(ForwardedForHeader)
	if len(v) == 0 {
		return r
	}
	r.Header.Del(ForwardedForHeader)
	if len(v) != 1 {
		return r
	}
	parts := strings.Split(v[0], "; ")
	if len(parts) != 3 || !strings.HasPrefix(parts[1], "t=") || !strings.HasPrefix(parts[2], "mac=") {
		return r
	}
	a, err := netip.ParseAddr(parts[0])
	if err != nil || a.Unmap().String() != parts[0] {
		return r
	}
	t, err := strconv.ParseInt(parts[1][2:], 10, 64)
	if err != nil {
		return r
	}
	if d := f.now().Sub(time.Unix(t, 0)); d > forwardedForSkew || d < -forwardedForSkew {
		return r
	}
	if !hmac.Equal([]byte(parts[2][4:]), []byte(f.mac(parts[0], t, r.Method, r.URL.Path))) {
		return r
	}
	r2 := r.WithContext(r.Context())
	r2.RemoteAddr = net.JoinHostPort(parts[0], "0")
	return r2
}

// clientKey is the context key of the client address of a request (its RemoteAddr once trust ran), for
// the grants Connect submits while serving it.
type clientKey struct{}

func withClient(ctx context.Context, remote string) context.Context {
	return context.WithValue(ctx, clientKey{}, remote)
}

func clientOf(ctx context.Context) (string, bool) {
	remote, ok := ctx.Value(clientKey{}).(string)
	return remote, ok
}
