package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// signIn runs the SIWE flow over HTTP: challenge, personal_sign, token.
func signIn(t *testing.T, n *testnode.Node, k testnode.Key) string {
	t.Helper()
	status, body := get(t, n.URL+"/v1/auth/challenge?address="+k.Address.Hex())
	if status != 200 {
		t.Fatalf("challenge: %d %s", status, body)
	}
	var ch struct{ Message string }
	json.Unmarshal(body, &ch)
	h := ledger.PersonalHash([]byte(ch.Message))
	sig, _ := crypto.Sign(h[:], k.Key)
	sig[64] += 27
	form := url.Values{"grant_type": {"urn:glovebox:params:oauth:grant-type:siwe"}, "message": {ch.Message}, "signature": {fmt.Sprintf("0x%x", sig)}}
	resp, err := http.PostForm(n.URL+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.TokenType != "Bearer" || tok.ExpiresIn != 3600 {
		t.Fatalf("token: %d %+v %v", resp.StatusCode, tok, err)
	}
	return tok.AccessToken
}

func authGet(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func graphQL(t *testing.T, n *testnode.Node, token, query string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequest("POST", n.URL+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}

// TestSignInThenReadAsTheLedgerAllows walks the whole path an app and an owner take: sign in with a
// wallet signature, query GraphQL with the token, and — for the owner only — read the access log. A
// revocation takes effect on the next query with the same token.
func TestSignInThenReadAsTheLedgerAllows(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, vid, ledger.KindHardware)
	app := n.App(t, owner)
	n.Grant(t, owner, vid, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals)
	res := post1(t, n, testnode.Record(t, dev, vid, "1", time.Now()))
	if res[0].Status != telemetry.StatusAccepted {
		t.Fatalf("%+v", res)
	}
	if _, err := n.Telemetry.Index(context.Background()); err != nil {
		t.Fatal(err)
	}
	ownerTok, appTok := signIn(t, n, owner), signIn(t, n, app)

	q := fmt.Sprintf(`{ signalsLatest(tokenId: %d) { lastSeen speed { value } currentLocationCoordinates { value { latitude } } } }`, vid)
	got := graphQL(t, n, appTok, q)
	data := got["data"].(map[string]any)["signalsLatest"].(map[string]any)
	if data["speed"].(map[string]any)["value"] != 42.5 || data["currentLocationCoordinates"] != nil {
		t.Fatalf("the app's answer: %v", got)
	}
	if errs, _ := got["errors"].([]any); len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "FORBIDDEN") {
		t.Fatalf("want one FORBIDDEN error for the location, got %v", got["errors"])
	}
	if got := graphQL(t, n, "", q); !strings.Contains(fmt.Sprint(got["errors"]), "UNAUTHENTICATED") {
		t.Fatalf("without a token: %v", got)
	}

	status, body := authGet(t, fmt.Sprintf("%s/v1/vehicles/%d/access", n.URL, vid), ownerTok)
	if status != 200 || !strings.Contains(string(body), `"entries":`) {
		t.Fatalf("the owner's access log: %d %s", status, body)
	}
	if status, body := authGet(t, fmt.Sprintf("%s/v1/vehicles/%d/access", n.URL, vid), appTok); status != 403 || errCode(t, body) != "forbidden" {
		t.Fatalf("an app reading the access log: %d %s", status, body)
	}
	if status, body := authGet(t, fmt.Sprintf("%s/v1/vehicles/%d/access", n.URL, vid), ""); status != 401 || errCode(t, body) != "unauthenticated" {
		t.Fatalf("no token: %d %s", status, body)
	}

	rev := &ledger.Tx{Type: ledger.TypeRevoke, App: app.Address}
	rev.VehicleID.SetUint64(vid)
	n.Submit(t, rev, owner)
	got = graphQL(t, n, appTok, q)
	if !strings.Contains(fmt.Sprint(got["errors"]), "FORBIDDEN") || fmt.Sprint(got["data"]) == fmt.Sprint(data) {
		t.Fatalf("the same token after the revocation: %v", got)
	}
	// The owner sees both of the app's reads, the one answered and the one refused, newest first; the
	// owner's own reads are not listed.
	var page struct {
		Entries []struct {
			Caller, Query, Outcome string
			Values                 int
			Permissions            []string
		}
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, body := authGet(t, fmt.Sprintf("%s/v1/vehicles/%d/access", n.URL, vid), ownerTok)
		json.Unmarshal(body, &page)
		if len(page.Entries) >= 2 {
			break
		}
	}
	if len(page.Entries) != 2 || page.Entries[0].Outcome != "forbidden" || page.Entries[1].Outcome != "ok" ||
		page.Entries[1].Query != "signalsLatest" || page.Entries[1].Values != 2 || page.Entries[1].Caller != app.Address.Hex() ||
		len(page.Entries[1].Permissions) != 1 || page.Entries[1].Permissions[0] != ledger.PermSignals {
		t.Fatalf("access log: %+v", page.Entries)
	}
	if status, body := get(t, n.URL+"/.well-known/jwks.json"); status != 200 || !strings.Contains(string(body), `"ES256"`) {
		t.Fatalf("jwks: %d %s", status, body)
	}
}

// TestACallerOverItsRateIsToldToWait sends a burst of GraphQL requests from one signed-in caller to a
// node with a small limit: the excess is refused with 429, a GraphQL-shaped RATE_LIMITED error and
// Retry-After, while another caller is still served.
func TestACallerOverItsRateIsToldToWait(t *testing.T) {
	n := testnode.Start(t, testnode.Options{RateLimit: api.NewRateLimiter(api.RateLimitConfig{Rate: 1, Burst: 5})})
	owner, other := testnode.NewKey(t), testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	tok := signIn(t, n, owner) // one request of the burst
	q := fmt.Sprintf(`{"query":"{ availableSignals(tokenId: %d) }"}`, vid)
	limited := 0
	for i := 0; i < 10; i++ {
		req, _ := http.NewRequest("POST", n.URL+"/graphql", strings.NewReader(q))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "RATE_LIMITED") {
				t.Fatalf("429 without Retry-After or code: %s", body)
			}
		}
	}
	if limited < 4 {
		t.Fatalf("%d of 10 requests over a burst of 5 were limited", limited)
	}
	if status, body := get(t, n.URL+"/v1/auth/challenge?address="+other.Address.Hex()); status != 200 {
		t.Fatalf("another caller: %d %s", status, body)
	}
}

func TestAGraphQLBodyThatIsNotJSONIsABadRequest(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	resp, err := http.Post(n.URL+"/graphql", "application/json", strings.NewReader("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "BAD_REQUEST") {
		t.Fatalf("HTTP %d %s", resp.StatusCode, b)
	}
}
