package node_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/connect"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/node"
)

// TestClusterProcessesServeTheSurfaceOfANode asks a single node, a cluster process with every role and
// a cluster process with the api role alone the same requests, none signed in, and compares each answer's
// status with a literal: the node and the full process answer alike, and the api process differs only
// where its role says (it takes no records). GET /v1/signals on an api process once dropped the
// connection (the catalogue was read from the ingester it does not have).
func TestClusterProcessesServeTheSurfaceOfANode(t *testing.T) {
	ctx := context.Background()
	single := testnode.Start(t, testnode.Options{})
	dsn, _, ns := pgBackend(t, false)
	data := t.TempDir()
	const public = "http://glovebox.test"
	full := startConnectProcess(t, dsn, ns.URL(), data, public, node.RoleSequencer, node.RoleAPI, node.RoleIngest)
	apiOnly := startConnectProcess(t, dsn, ns.URL(), data, public, node.RoleAPI)
	const someone = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
	// The log's first checkpoint is signed once the sequencer holds the lease: wait for it on both
	// processes, so that the table below compares routes, not start-up order.
	for _, u := range []string{full.url, apiOnly.url} {
		waitFor(t, 30*time.Second, "the first checkpoint at "+u, func() bool {
			resp, err := http.Get(u + "/log/checkpoint")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}

	for _, tc := range []struct {
		method, path, body string
		want, wantAPIOnly  int
	}{
		{"GET", "/", "", 200, 200},
		{"GET", "/app/app.js", "", 200, 200},
		{"GET", "/graphql/playground", "", 200, 200},
		{"GET", "/v1/node", "", 200, 200},
		{"GET", "/v1/eip712", "", 200, 200},
		{"GET", "/v1/signals", "", 200, 200},
		{"GET", "/v1/state/digest", "", 200, 200},
		{"GET", "/v1/vehicles/1", "", 404, 404},
		{"GET", "/v1/accounts/" + someone, "", 200, 200},
		{"GET", "/v1/apps/" + someone, "", 404, 404},
		{"GET", "/v1/transactions/0", "", 404, 404},
		{"POST", "/v1/events", "[]", 200, 404},
		{"GET", "/v1/events", "", 405, 404},
		{"GET", "/v1/auth/challenge?address=" + someone, "", 200, 200},
		{"POST", "/oauth/token", "grant_type=password", 400, 400},
		{"GET", "/.well-known/jwks.json", "", 200, 200},
		{"GET", connect.PathDiscovery, "", 200, 200},
		{"GET", connect.PathScript, "", 200, 200},
		{"GET", connect.PathUserinfo, "", 401, 401},
		{"GET", "/.well-known/jwt-vc-issuer", "", 200, 200},
		{"GET", api.WebhookKeysPath, "", 200, 200},
		{"POST", "/graphql", `{"query":"{__typename}"}`, 200, 200},
		{"GET", "/v1/vehicles/1/access", "", 401, 401},
		{"GET", "/v1/vehicles/1/retention", "", 401, 401},
		{"GET", "/v1/vehicles/1/export", "", 401, 401},
		{"POST", "/v1/vehicles/1/credentials", "{}", 401, 401},
		{"POST", "/v1/attestations", "{}", 401, 401},
		{"GET", "/v1/apps/" + someone + "/webhooks", "", 401, 401},
		{"GET", "/log/checkpoint", "", 200, 200},
		{"GET", "/no/such/route", "", 404, 404},
	} {
		for _, p := range []struct {
			name, url string
			want      int
		}{{"a node", single.URL, tc.want}, {"a process with every role", full.url, tc.want}, {"an api process", apiOnly.url, tc.wantAPIOnly}} {
			req, err := http.NewRequestWithContext(ctx, tc.method, p.url+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case strings.HasPrefix(tc.body, "grant_type"):
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			case tc.body != "":
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s %s of %s: %v", tc.method, tc.path, p.name, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != p.want {
				t.Errorf("%s %s of %s: %d, want %d: %s", tc.method, tc.path, p.name, resp.StatusCode, p.want, bytes.TrimSpace(body))
			}
		}
	}
}
