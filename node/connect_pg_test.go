package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/connect"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
)

// connectProcess is one process of a cluster serving its API over HTTP, stopped by stop (and at the end
// of the test).
type connectProcess struct {
	url  string
	stop func()
}

// startConnectProcess opens a cluster process with roles on the shared database, stream and data
// directory, its public URL being the cluster's (publicURL), and serves it.
func startConnectProcess(t *testing.T, dsn, natsURL, dataDir, publicURL string, roles ...string) *connectProcess {
	t.Helper()
	ctx := context.Background()
	srv := httptest.NewUnstartedServer(nil)
	c, err := node.OpenCluster(ctx, node.ClusterConfig{Store: dsn, NATS: natsURL, DataDir: dataDir, Roles: roles,
		PublicURL: publicURL, AdvertiseURL: "http://" + srv.Listener.Addr().String(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = c.API
	srv.Start()
	return &connectProcess{url: srv.URL, stop: runCluster(t, ctx, c, srv)}
}

var connectData = regexp.MustCompile(`(?s)<script type="application/json" id="connect-data">(.*?)</script>`)

// consentGrant reads the consent screen page (its status was code) and returns the screen's request and
// the grant of car to app it asks the driver to sign.
func consentGrant(t *testing.T, code int, page []byte, app common.Address, car uint64) (string, *ledger.Tx) {
	t.Helper()
	m := connectData.FindSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("consent screen: %d", code)
	}
	var s struct {
		Request, App, Purpose, TermsURI, ExpiresAt string
		Permissions                                []string
	}
	if err := json.Unmarshal(m[1], &s); err != nil {
		t.Fatal(err)
	}
	tx := &ledger.Tx{Type: ledger.TypeGrant, App: app, Permissions: s.Permissions, Purpose: s.Purpose, TermsURI: s.TermsURI}
	tx.VehicleID.SetUint64(car)
	if err := tx.ExpiresAt.SetFromDecimal(s.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	return s.Request, tx
}

// TestConnectFlowsSpanClusterProcessesAndRestarts: an app's driver consents through process A (api only:
// the grants it takes are forwarded to the sequencer, B), the code is redeemed through B, the refresh token
// rotates through A and B, and after A restarts the newest one still works there; a used refresh token
// presented to B revokes the family, and its access tokens, for A too; of two concurrent redeems of one
// code through A and B, at most one gets tokens, revoked everywhere at once. The ID token is verified with
// either process's key set.
func TestConnectFlowsSpanClusterProcessesAndRestarts(t *testing.T) {
	ctx := context.Background()
	dsn, _, ns := pgBackend(t, false)
	data := t.TempDir()
	const public = "http://glovebox.test"
	b := startConnectProcess(t, dsn, ns.URL(), data, public, node.RoleSequencer, node.RoleAPI)
	a := startConnectProcess(t, dsn, ns.URL(), data, public, node.RoleAPI)

	pb := &pgCluster{cl: client.New(b.url), url: b.url, dsn: dsn, now: time.Now}
	var err error
	if pb.domain, err = pb.cl.Domain(ctx); err != nil {
		t.Fatal(err)
	}
	owner, app := testnode.NewKey(t), testnode.NewKey(t)
	rc := pb.submit(t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Volvo", Model: "XC40", Year: 2023}, owner)
	car := rc.Result.VehicleID
	const redirect = "https://app.example/callback"
	pb.submit(t, &ledger.Tx{Type: ledger.TypeRegisterApp, App: app.Address, Owner: owner.Address, Name: "Acme",
		RedirectURIs: []string{redirect}}, owner, app)
	// A follows the log: wait until it knows the app.
	ca := client.New(a.url)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := ca.App(ctx, app.Address); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("process A never saw the app: %v", err)
		}
	}

	// Every api process is the one provider: the same discovery document and key set.
	var keySets []string
	for _, proc := range []*connectProcess{a, b} {
		resp, err := http.Get(proc.url + connect.PathDiscovery)
		if err != nil {
			t.Fatal(err)
		}
		var d connect.Discovery
		json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if resp.StatusCode != 200 || d.Issuer != public || d.TokenEndpoint != public+connect.PathToken {
			t.Fatalf("discovery through %s: %d %+v", proc.url, resp.StatusCode, d)
		}
		resp, err = http.Get(proc.url + connect.PathJWKS)
		if err != nil {
			t.Fatal(err)
		}
		jwks, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		keySets = append(keySets, string(jwks))
	}
	if keySets[0] != keySets[1] || !strings.Contains(keySets[0], `"ES256"`) {
		t.Fatalf("the processes publish different key sets:\n%s\n%s", keySets[0], keySets[1])
	}

	// code runs a flow through proc up to the code: the consent screen, then the owner's signed grant.
	code := func(t *testing.T, proc *connectProcess) (code, verifier string) {
		t.Helper()
		verifier = strings.Repeat("v", 20) + base64.RawURLEncoding.EncodeToString([]byte(time.Now().String()))
		sum := sha256.Sum256([]byte(verifier))
		q := url.Values{"response_type": {"code"}, "client_id": {app.Address.Hex()}, "redirect_uri": {redirect},
			"scope": {"openid vehicle:signals"}, "state": {"s1"}, "nonce": {"n1"}, "code_challenge_method": {"S256"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "purpose": {"Quote"}}
		resp, err := http.Get(proc.url + connect.PathAuthorize + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		request, tx := consentGrant(t, resp.StatusCode, page, app.Address, car)
		client.Prepare(tx, time.Hour)
		if err := pb.domain.Sign(tx, owner.Key); err != nil {
			t.Fatal(err)
		}
		raw, _ := tx.MarshalJSON()
		body, _ := json.Marshal(connect.DecisionRequest{Request: request, Grants: []json.RawMessage{raw}})
		resp, err = http.Post(proc.url+connect.PathDecision, "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		var d connect.DecisionResponse
		json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		u, err := url.Parse(d.Redirect)
		if resp.StatusCode != 200 || err != nil || u.Query().Get("code") == "" || u.Query().Get("iss") != public {
			t.Fatalf("decision: %d %q", resp.StatusCode, d.Redirect)
		}
		return u.Query().Get("code"), verifier
	}
	token := func(t *testing.T, proc *connectProcess, form url.Values) (int, map[string]any) {
		t.Helper()
		form.Set("client_id", app.Address.Hex())
		resp, err := http.PostForm(proc.url+connect.PathToken, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	refresh := func(t *testing.T, proc *connectProcess, rt string) (int, map[string]any) {
		t.Helper()
		return token(t, proc, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}
	rotate := func(t *testing.T, proc *connectProcess, rt string) (refreshToken, accessToken string) {
		t.Helper()
		status, out := refresh(t, proc, rt)
		if status != 200 {
			t.Fatalf("refresh through %s: %d %v", proc.url, status, out)
		}
		return out["refresh_token"].(string), out["access_token"].(string)
	}

	c1, v1 := code(t, a)
	status, out := token(t, b, url.Values{"grant_type": {"authorization_code"}, "code": {c1}, "redirect_uri": {redirect}, "code_verifier": {v1}})
	if status != 200 {
		t.Fatalf("the code from A redeemed through B: %d %v", status, out)
	}
	// Both processes sign with the one shared key: the ID token from B verifies with A's key set.
	keys := oidc.NewRemoteKeySet(ctx, a.url+connect.PathJWKS)
	idt, err := oidc.NewVerifier(public, keys, &oidc.Config{ClientID: app.Address.Hex(), SupportedSigningAlgs: []string{"ES256"}}).Verify(ctx, out["id_token"].(string))
	if err != nil {
		t.Fatalf("the ID token from B against A's keys: %v", err)
	}
	if idt.Subject != owner.Address.Hex() || idt.Nonce != "n1" {
		t.Fatalf("ID token sub %s nonce %s", idt.Subject, idt.Nonce)
	}
	// The access token from B reads userinfo through A.
	req, _ := http.NewRequest("GET", a.url+connect.PathUserinfo, nil)
	req.Header.Set("Authorization", "Bearer "+out["access_token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui connect.Userinfo
	json.NewDecoder(resp.Body).Decode(&ui)
	resp.Body.Close()
	if resp.StatusCode != 200 || ui.Sub != owner.Address.Hex() || len(ui.Vehicles) != 1 || ui.Vehicles[0] != car {
		t.Fatalf("userinfo through A: %d %+v", resp.StatusCode, ui)
	}

	// userinfo answers the status of GET /oauth/userinfo through proc with the access token at.
	userinfo := func(t *testing.T, proc *connectProcess, at string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", proc.url+connect.PathUserinfo, nil)
		req.Header.Set("Authorization", "Bearer "+at)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// refusedEverywhere waits until both processes refuse the access token at: a revocation through one
	// reaches the other within its FollowInterval.
	refusedEverywhere := func(t *testing.T, at string) {
		t.Helper()
		for _, proc := range []*connectProcess{a, b} {
			for deadline := time.Now().Add(10 * time.Second); userinfo(t, proc, at) != 401; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s still takes a revoked access token", proc.url)
				}
			}
		}
	}

	rt1 := out["refresh_token"].(string)
	rt2, _ := rotate(t, a, rt1)
	a.stop()
	a = startConnectProcess(t, dsn, ns.URL(), data, public, node.RoleAPI)
	rt3, at3 := rotate(t, a, rt2) // the restarted process knows the token B's rotation issued
	if got := userinfo(t, b, at3); got != 200 {
		t.Fatalf("the access token from A through B: %d", got)
	}
	if status, out := refresh(t, b, rt2); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("a used token again through B: %d %v", status, out)
	}
	if status, out := refresh(t, a, rt3); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("the family's newest token through A after a reuse through B: %d %v", status, out)
	}
	refusedEverywhere(t, at3)

	// Two exchanges of one code, through A and through B at once: the store lets one redeem it; the other
	// is a reuse, which revokes whatever the first got (RFC 6749 §4.1.2), so no token of it outlives the
	// race, whichever process saw which.
	c2, v2 := code(t, a)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {c2}, "redirect_uri": {redirect}, "code_verifier": {v2},
		"client_id": {app.Address.Hex()}}
	type answer struct {
		status int
		out    map[string]any
	}
	answers := make(chan answer, 2)
	for _, proc := range []*connectProcess{a, b} {
		go func() {
			resp, err := http.PostForm(proc.url+connect.PathToken, form)
			if err != nil {
				answers <- answer{}
				return
			}
			defer resp.Body.Close()
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			answers <- answer{resp.StatusCode, out}
		}()
	}
	got := []answer{<-answers, <-answers}
	var won *answer
	for i, g := range got {
		switch {
		case g.status == 200 && won == nil:
			won = &got[i]
		case g.status == 400 && g.out["error"] == "invalid_grant":
		default:
			t.Fatalf("two concurrent redeems of one code answered %d %v and %d %v", got[0].status, got[0].out, got[1].status, got[1].out)
		}
	}
	if won != nil {
		for _, proc := range []*connectProcess{a, b} {
			if status, _ := refresh(t, proc, won.out["refresh_token"].(string)); status != 400 {
				t.Fatalf("the refresh token of a raced code works through %s", proc.url)
			}
		}
		refusedEverywhere(t, won.out["access_token"].(string))
	}
}
