package node

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A forwarded request's client is the address a process of the cluster signed for that method and path,
// within a minute; any other header leaves the request's own address, and none survives trust.
func TestForwardedForTrustsOnlyTheCluster(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	cluster := newForwardedFor([]byte("PRIVATE+KEY+glovebox.local/1+abcd+secret\n"), clock)
	outsider := newForwardedFor([]byte("PRIVATE+KEY+glovebox.local/1+abcd+other"), clock)
	late := newForwardedFor([]byte("PRIVATE+KEY+glovebox.local/1+abcd+secret"), func() time.Time { return now.Add(-61 * time.Second) })
	signed := func(f *forwardedFor, method, path, client string) []string {
		r := httptest.NewRequest(method, path, nil)
		f.sign(r, client)
		return r.Header.Values(ForwardedForHeader)
	}
	for _, c := range []struct {
		name   string
		header []string
		want   string
	}{
		{"no header", nil, "203.0.113.1:5000"},
		{"signed by the cluster", signed(cluster, "POST", "/v1/transactions", "198.51.100.7:41000"), "198.51.100.7:0"},
		{"an IPv6 client", signed(cluster, "POST", "/v1/transactions", "[2001:db8::1]:41000"), "[2001:db8::1]:0"},
		{"an IPv4-mapped client is its IPv4 address", signed(cluster, "POST", "/v1/transactions", "[::ffff:198.51.100.7]:1"), "198.51.100.7:0"},
		{"signed with another key", signed(outsider, "POST", "/v1/transactions", "198.51.100.7:41000"), "203.0.113.1:5000"},
		{"signed for another path", signed(cluster, "POST", "/v1/events", "198.51.100.7:41000"), "203.0.113.1:5000"},
		{"signed for another method", signed(cluster, "GET", "/v1/transactions", "198.51.100.7:41000"), "203.0.113.1:5000"},
		{"signed over a minute ago", signed(late, "POST", "/v1/transactions", "198.51.100.7:41000"), "203.0.113.1:5000"},
		{"twice", append(signed(cluster, "POST", "/v1/transactions", "198.51.100.7:1"), signed(cluster, "POST", "/v1/transactions", "198.51.100.8:1")...), "203.0.113.1:5000"},
		{"another address under the signature", []string{strings.Replace(signed(cluster, "POST", "/v1/transactions", "198.51.100.7:1")[0], "198.51.100.7", "198.51.100.8", 1)}, "203.0.113.1:5000"},
		{"a bare address", []string{"198.51.100.7"}, "203.0.113.1:5000"},
		{"not an address", []string{"proxy; t=1800000000; mac=x"}, "203.0.113.1:5000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/transactions", nil)
			r.RemoteAddr = "203.0.113.1:5000"
			for _, v := range c.header {
				r.Header.Add(ForwardedForHeader, v)
			}
			got := cluster.trust(r)
			if got.RemoteAddr != c.want || got.Header.Get(ForwardedForHeader) != "" {
				t.Fatalf("client %s (header left: %q), want %s", got.RemoteAddr, got.Header.Get(ForwardedForHeader), c.want)
			}
		})
	}
}
