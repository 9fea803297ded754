package node_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
)

// TestSignInChallengesSpanClusterProcesses: a challenge fetched from api process A is answered at api
// process B, once; of two answers of one challenge sent to A and B at once, one gets a token and the other
// invalid_grant; a challenge answered after its expiry (the processes' shared clock moved 5 minutes on)
// is refused at either process.
func TestSignInChallengesSpanClusterProcesses(t *testing.T) {
	ctx := context.Background()
	dsn, _, ns := pgBackend(t, false)
	data := t.TempDir()
	const public = "http://glovebox.test"
	var skew atomic.Int64 // added to both processes' clocks
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	start := func(roles ...string) string {
		srv := httptest.NewUnstartedServer(nil)
		c, err := node.OpenCluster(ctx, node.ClusterConfig{Store: dsn, NATS: ns.URL(), DataDir: data, Roles: roles, Now: now,
			PublicURL: public, AdvertiseURL: "http://" + srv.Listener.Addr().String(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		srv.Config.Handler = c.API
		srv.Start()
		runCluster(t, ctx, c, srv)
		return srv.URL
	}
	a, b := start(node.RoleAPI), start(node.RoleAPI)
	k := testnode.NewKey(t)

	// challenge fetches a challenge from proc and signs it with k.
	challenge := func(t *testing.T, proc string) url.Values {
		t.Helper()
		resp, err := http.Get(proc + "/v1/auth/challenge?address=" + k.Address.Hex())
		if err != nil {
			t.Fatal(err)
		}
		var ch auth.ChallengeResponse
		err = json.NewDecoder(resp.Body).Decode(&ch)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("challenge from %s: %d %v", proc, resp.StatusCode, err)
		}
		h := ledger.PersonalHash([]byte(ch.Message))
		sig, err := crypto.Sign(h[:], k.Key)
		if err != nil {
			t.Fatal(err)
		}
		sig[64] += 27
		return url.Values{"grant_type": {auth.GrantTypeSIWE}, "message": {ch.Message}, "signature": {"0x" + hex.EncodeToString(sig)}}
	}
	// answer posts a signed challenge to proc's token endpoint: the status and the OAuth error, if any.
	answer := func(proc string, form url.Values) (int, string) {
		resp, err := http.PostForm(proc+"/oauth/token", form)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var out struct {
			AccessToken string `json:"access_token"`
			Error       string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode == http.StatusOK && out.AccessToken == "" {
			return 0, "a 200 without a token"
		}
		return resp.StatusCode, out.Error
	}

	form := challenge(t, a)
	if status, e := answer(b, form); status != 200 {
		t.Fatalf("a challenge from A answered at B: %d %s", status, e)
	}
	for _, proc := range []string{a, b} {
		if status, e := answer(proc, form); status != 400 || e != auth.CodeInvalidGrant {
			t.Fatalf("a challenge answered again at %s: %d %s, want 400 invalid_grant", proc, status, e)
		}
	}

	for round := range 5 {
		form := challenge(t, b)
		type result struct {
			status int
			err    string
		}
		results := make(chan result, 2)
		for _, proc := range []string{a, b} {
			go func() {
				status, e := answer(proc, form)
				results <- result{status, e}
			}()
		}
		r1, r2 := <-results, <-results
		if r1.status == r2.status || r1.status+r2.status != 600 || (r1.err+r2.err) != auth.CodeInvalidGrant {
			t.Fatalf("round %d: one challenge answered at A and B at once: %d %q and %d %q; want one 200 and one 400 invalid_grant",
				round, r1.status, r1.err, r2.status, r2.err)
		}
	}

	form = challenge(t, a)
	skew.Store(int64(auth.DefaultChallengeTTL))
	for _, proc := range []string{b, a} {
		if status, e := answer(proc, form); status != 400 || e != auth.CodeInvalidGrant {
			t.Fatalf("an expired challenge answered at %s: %d %s, want 400 invalid_grant", proc, status, e)
		}
	}
	skew.Store(0)
	if status, e := answer(b, challenge(t, a)); status != 200 {
		t.Fatalf("a fresh challenge from A at B, after the clock came back: %d %s", status, e)
	}
}
