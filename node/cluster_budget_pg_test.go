package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/api/wire"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/connect"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
)

// TestClusterBudgetsForwardedTransactionsPerClient runs two processes: a sequencer (with the api role)
// and an api process that forwards POST /v1/transactions to it, each with its own budget of two
// transactions per client address. Clients reach the api process from their own addresses: the sequencer
// counts each forwarded transaction against the address of the client that sent it, not the api
// process's, so one client spending its budget leaves another's whole. A client that names another
// address in X-Forwarded-For, Forwarded or the cluster's own Glovebox-Forwarded-For header, at the api
// process or straight at the sequencer, still spends its own budget.
func TestClusterBudgetsForwardedTransactionsPerClient(t *testing.T) {
	seq, apiProc, d := budgetedPair(t)
	// post submits a new vehicle's registration to h as a client at address remote, with headers, and
	// returns the status.
	post := func(h http.Handler, remote string, headers ...string) int {
		t.Helper()
		owner := testnode.NewKey(t)
		tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Volvo", Model: "EX30", Year: 2025}
		w := serveAs(t, h, remote, http.MethodPost, "/v1/transactions", signedJSON(t, d, tx, owner), headers...)
		if w.Code != http.StatusOK && w.Code != http.StatusTooManyRequests {
			t.Fatalf("POST /v1/transactions from %s: %d %s", remote, w.Code, w.Body)
		}
		return w.Code
	}
	const x, y, z = "203.0.113.5", "198.51.100.7", "192.0.2.99"
	forged := fmt.Sprintf("%s; t=%d; mac=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", z, time.Now().Unix())
	for _, c := range []struct {
		name    string
		h       http.Handler
		remote  string
		headers []string
		want    int
	}{
		{"the first client's first transaction, forwarded", apiProc.API, x, nil, 200},
		{"its second", apiProc.API, x, nil, 200},
		{"its third is over its budget", apiProc.API, x, nil, 429},
		{"another client behind the same api process has its own budget", apiProc.API, y, nil, 200},
		{"X-Forwarded-For does not choose the budget", apiProc.API, x, []string{"X-Forwarded-For", z}, 429},
		{"nor Forwarded", apiProc.API, x, []string{"Forwarded", "for=" + z}, 429},
		{"nor a forged " + node.ForwardedForHeader + " at the api process", apiProc.API, x, []string{node.ForwardedForHeader, forged}, 429},
		{"nor one straight at the sequencer", seq.API, x, []string{node.ForwardedForHeader, forged}, 429},
		{"nor X-Forwarded-For straight at the sequencer", seq.API, x, []string{"X-Forwarded-For", z}, 429},
		{"the address named in vain still has its whole budget", apiProc.API, z, nil, 200},
		{"and the second client its second transaction", seq.API, y, nil, 200},
		{"but not a third", apiProc.API, y, nil, 429},
	} {
		if got := post(c.h, c.remote, c.headers...); got != c.want {
			t.Fatalf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// TestClusterBudgetsForwardedGrantsPerDriver: a grant a driver signs on Connect's consent screen at an api
// process is forwarded to the sequencer, which counts it against the driver's address: a driver whose
// address spent its budget is refused there, another is not, whatever the api process's address spent.
func TestClusterBudgetsForwardedGrantsPerDriver(t *testing.T) {
	seq, apiProc, d := budgetedPair(t)
	const setup, spent, fresh = "192.0.2.1", "203.0.113.5", "198.51.100.7"
	owner, app := testnode.NewKey(t), testnode.NewKey(t)
	const redirect = "https://app.example/callback"
	submit := func(remote string, tx *ledger.Tx, keys ...testnode.Key) *wire.Receipt {
		t.Helper()
		w := serveAs(t, seq.API, remote, http.MethodPost, "/v1/transactions", signedJSON(t, d, tx, keys...))
		var rc wire.Receipt
		if err := json.Unmarshal(w.Body.Bytes(), &rc); w.Code != http.StatusOK || err != nil {
			t.Fatalf("%s from %s: %d %s", tx.Type, remote, w.Code, w.Body)
		}
		return &rc
	}
	car := submit(setup, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Volvo", Model: "XC40", Year: 2023}, owner).Result.VehicleID
	submit(setup, &ledger.Tx{Type: ledger.TypeRegisterApp, App: app.Address, Owner: owner.Address, Name: "Acme",
		RedirectURIs: []string{redirect}}, owner, app)
	// The first driver's address spent its budget (the api process's own, 127.0.0.1, spent nothing).
	other := testnode.NewKey(t)
	for range 2 {
		submit(spent, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: other.Address, Make: "Volvo", Model: "EX30", Year: 2025}, other)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		w := serveAs(t, apiProc.API, fresh, http.MethodGet, "/v1/apps/"+app.Address.Hex(), nil)
		if w.Code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the api process never saw the app")
		}
	}
	// consent runs a flow through the api process as a driver at remote, up to the decision's status.
	consent := func(remote string) int {
		t.Helper()
		q := url.Values{"response_type": {"code"}, "client_id": {app.Address.Hex()}, "redirect_uri": {redirect},
			"scope": {"openid vehicle:signals"}, "state": {"s1"}, "nonce": {"n1"}, "code_challenge_method": {"S256"},
			"code_challenge": {strings.Repeat("c", 43)}, "purpose": {"Quote"}}
		w := serveAs(t, apiProc.API, remote, http.MethodGet, connect.PathAuthorize+"?"+q.Encode(), nil)
		request, tx := consentGrant(t, w.Code, w.Body.Bytes(), app.Address, car)
		raw := signedJSON(t, d, tx, owner)
		body, _ := json.Marshal(connect.DecisionRequest{Request: request, Grants: []json.RawMessage{raw}})
		return serveAs(t, apiProc.API, remote, http.MethodPost, connect.PathDecision, body).Code
	}
	// The sequencer's 429 reaches the consent screen as its "try again".
	if got := consent(spent); got != http.StatusServiceUnavailable {
		t.Fatalf("a driver whose address spent its budget: the decision answered %d, want 503", got)
	}
	if got := consent(fresh); got != http.StatusOK {
		t.Fatalf("a driver with a whole budget: the decision answered %d", got)
	}
}

// budgetedPair starts two processes on a fresh database, stream and shared data directory: a sequencer
// (with the api role) and an api process forwarding to it, each budgeting two transactions per client
// address; it returns them once the sequencer holds the lease, with the log's domain.
func budgetedPair(t *testing.T) (seq, apiProc *node.Cluster, d *ledger.Domain) {
	t.Helper()
	ctx := context.Background()
	dsn, _, ns := pgBackend(t, false)
	data := t.TempDir()
	open := func(roles ...string) (*node.Cluster, *httptest.Server) {
		srv := httptest.NewUnstartedServer(nil)
		c, err := node.OpenCluster(ctx, node.ClusterConfig{Store: dsn, NATS: ns.URL(), Roles: roles, DataDir: data,
			Logger: slog.New(slog.DiscardHandler), AdvertiseURL: "http://" + srv.Listener.Addr().String(),
			Budgets: &api.Budgets{Transactions: api.NewRateLimiter(api.RateLimitConfig{Rate: 0.001, Burst: 2})}})
		if err != nil {
			t.Fatal(err)
		}
		srv.Config.Handler = c.API
		srv.Start()
		runCluster(t, ctx, c, srv)
		return c, srv
	}
	seq, seqSrv := open(node.RoleSequencer, node.RoleAPI)
	apiProc, _ = open(node.RoleAPI)
	for deadline := time.Now().Add(30 * time.Second); !seq.Ledger.IsLeader(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sequencer did not take the lease within 30 s")
		}
	}
	d, err := client.New(seqSrv.URL).Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return seq, apiProc, d
}

// signedJSON prepares tx (an hour to its deadline), signs it with keys and encodes it.
func signedJSON(t *testing.T, d *ledger.Domain, tx *ledger.Tx, keys ...testnode.Key) []byte {
	t.Helper()
	client.Prepare(tx, time.Hour)
	for _, k := range keys {
		if err := d.Sign(tx, k.Key); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(tx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var serveAsPort atomic.Int64

// serveAs serves a request to h as a client at address remote (each request from a new port), with
// headers (name, value, …), a JSON body when body is not nil.
func serveAs(t *testing.T, h http.Handler, remote, method, target string, body []byte, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.RemoteAddr = net.JoinHostPort(remote, strconv.FormatInt(40000+serveAsPort.Add(1)%20000, 10))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}
