package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/client"
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
	apiProc, _ := open(node.RoleAPI)
	for deadline := time.Now().Add(30 * time.Second); !seq.Ledger.IsLeader(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sequencer did not take the lease within 30 s")
		}
	}
	d, err := client.New(seqSrv.URL).Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// post submits a new vehicle's registration to h as a client at address remote, with headers, and
	// returns the status.
	n := 0
	post := func(h http.Handler, remote string, headers ...string) int {
		t.Helper()
		n++
		owner := testnode.NewKey(t)
		tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Volvo", Model: "EX30", Year: 2025}
		client.Prepare(tx, time.Hour)
		if err := d.Sign(tx, owner.Key); err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(tx)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/transactions", bytes.NewReader(body))
		req.RemoteAddr = remote + ":" + strconv.Itoa(40000+n)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
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
