package node

// Forwarding: every api process takes transactions, but only the lease holder sequences them; the others
// send them on to it (its AdvertiseURL, recorded with the lease) and answer what it answered. Receipts
// asked beyond the followed log wait for a catch-up (catchup.go). Connect's grants take the same way
// (connectLedger in connect.go).

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/store/postgres"
)

// ForwardConns is the most connections a process holds to the sequencer for the requests it forwards.
// The sequencer caps the connections of one address (--max-conns-per-address, api.Limits; 256 by
// default) and every request a process forwards comes from that process's address: without a bound of
// its own, a process forwarding many clients' transactions at once opened a connection for each and
// the cap refused some. Requests beyond ForwardConns wait for a free connection; a sequencer's cap must
// be above it (docs/scale.md).
const ForwardConns = 16

// forwardTransport returns the transport of forwarded requests: http.DefaultTransport's settings with
// at most ForwardConns connections to a host, all of which may stay idle for the next request.
func forwardTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost, t.MaxIdleConnsPerHost = ForwardConns, ForwardConns
	return t
}

// forwarding sends POST /v1/transactions to the sequencer when this process is not it, naming the client
// it came from (forwardedfor.go). Other routes are served here. Without a known, reachable sequencer the
// answer is 503 unavailable: retry.
func (c *Cluster) forwarding(local http.Handler) http.Handler {
	var mu sync.Mutex
	var proxy *httputil.ReverseProxy
	var proxyURL string
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The client of a request another process forwarded is the one it names, if it is a process of the
		// cluster; the budgets per address, and any forwarding on, count that client.
		r = c.fwd.trust(r)
		r = r.WithContext(withClient(r.Context(), r.RemoteAddr))
		// A receipt asked for beyond what this process has followed (a client reading its own write through
		// another process) is looked up after a catch-up that started after the request arrived, rather
		// than answered not_found. Catch-ups are shared and spaced (catchUps): a flood of such requests
		// for indexes that do not exist costs the database one read per ReceiptCatchUpInterval.
		if idx, ok := strings.CutPrefix(r.URL.Path, "/v1/transactions/"); ok && r.Method == http.MethodGet && !c.Ledger.IsLeader() {
			if n, err := strconv.ParseInt(idx, 10, 64); err == nil && n >= c.Log.Size() {
				if err := c.receipts.wait(r.Context()); err != nil && r.Context().Err() == nil {
					c.logger.Warn("couldn't catch up with the log", "err", err)
				}
			}
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/transactions" || c.Ledger.IsLeader() {
			local.ServeHTTP(w, r)
			return
		}
		_, target, _, err := postgres.Leader(r.Context(), c.pool)
		if err != nil || target == "" || target == c.cfg.AdvertiseURL {
			local.ServeHTTP(w, r) // answers unavailable
			return
		}
		mu.Lock()
		if proxyURL != target {
			u, err := url.Parse(target)
			if err != nil {
				mu.Unlock()
				local.ServeHTTP(w, r)
				return
			}
			proxy, proxyURL = httputil.NewSingleHostReverseProxy(u), target
			proxy.Transport = c.toSequencer
			director := proxy.Director
			proxy.Director = func(out *http.Request) {
				director(out)
				c.fwd.sign(out, out.RemoteAddr) // the client's address, not this process's, is budgeted
			}
			proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
				c.logger.Warn("couldn't forward a transaction to the sequencer", "err", err)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, `{"error":{"code":%q,"message":"the sequencer is not reachable; retry"}}`, api.CodeUnavailable)
			}
		}
		p := proxy
		mu.Unlock()
		p.ServeHTTP(w, r)
	})
}
