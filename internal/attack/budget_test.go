package attack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// httpFrom returns an HTTP client whose connections leave from the loopback address local.
func httpFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: time.Minute}
}

// post posts body as JSON to path of n with hc and returns the status, Retry-After and body.
func post(t *testing.T, hc *http.Client, n *testnode.Node, token, path string, body []byte) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), b
}

// errorCode is the REST error code of b, or "".
func errorCode(b []byte) string {
	var e api.ErrorBody
	json.Unmarshal(b, &e)
	return e.Error.Code
}

// TestFreshAccountsDoNotMultiplyTheBudget signs five fresh accounts in from one address and spends each
// one's per-caller budget: together they get no more than the address's budget, and another address is
// served throughout.
func TestFreshAccountsDoNotMultiplyTheBudget(t *testing.T) {
	const perCaller, perAddress = 20, 40
	n := testnode.Start(t, testnode.Options{
		RateLimit: api.NewRateLimiter(api.RateLimitConfig{Rate: 0.001, Burst: perCaller}),
		Budgets:   &api.Budgets{Requests: api.NewRateLimiter(api.RateLimitConfig{Rate: 0.001, Burst: perAddress})},
	})
	var tokens []string
	for range 5 { // two requests each: the challenge and the token
		tokens = append(tokens, n.SignIn(t, testnode.NewKey(t)))
	}
	query, _ := json.Marshal(map[string]string{"query": "{ __typename }"})
	hc := httpFrom("127.0.0.1")
	answered := 0
	for _, token := range tokens {
		for range perCaller {
			status, retry, body := post(t, hc, n, token, "/graphql", query)
			switch {
			case status == http.StatusOK:
				answered++
			case status != http.StatusTooManyRequests || retry == "" || !bytes.Contains(body, []byte(api.GraphQLCodeRateLimited)):
				t.Fatalf("%d %q %s", status, retry, body)
			}
		}
	}
	if want := perAddress - 10; answered != want {
		t.Errorf("five fresh accounts on one address were answered %d times, want the address's %d", answered, want)
	}
	if status, _, body := post(t, httpFrom("127.0.0.2"), n, "", "/graphql", query); status != http.StatusOK {
		t.Errorf("another address: %d %s", status, body)
	}
}

// registrations returns count RegisterVehicle transactions, each signed by a fresh key.
func registrations(t *testing.T, n *testnode.Node, count int) []*ledger.Tx {
	txs := make([]*ledger.Tx, count)
	for i := range txs {
		k := testnode.NewKey(t)
		txs[i] = n.Sign(t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: k.Address, Make: "Volvo", Model: "XC40", Year: 2023}, k)
	}
	return txs
}

// TestSubmissionsAreBudgetedPerAddress: a fleet's batch of 1,000 registrations (or records) passes at
// once; what one address submits beyond its budget is refused with 429 rate_limited and Retry-After, and
// stores nothing; another address is served; the Go client waits as told and gets through.
func TestSubmissionsAreBudgetedPerAddress(t *testing.T) {
	ctx := context.Background()
	t.Run("transactions count one each, not per request", func(t *testing.T) {
		n := testnode.Start(t, testnode.Options{Budgets: api.NewBudgets(api.BudgetConfig{TransactionRate: 0.001, TransactionBurst: 1000})})
		batch, _ := json.Marshal(registrations(t, n, 1000))
		status, _, body := post(t, httpFrom("127.0.0.1"), n, "", "/v1/transactions", batch)
		var items []api.BatchItem
		if status != http.StatusOK || json.Unmarshal(body, &items) != nil || len(items) != 1000 || items[999].Receipt == nil {
			t.Fatalf("the batch of 1,000: %d %.300s", status, body)
		}
		before, _ := n.Client.StateDigest(ctx)
		more, _ := json.Marshal(registrations(t, n, 2))
		status, retry, body := post(t, httpFrom("127.0.0.1"), n, "", "/v1/transactions", more)
		if secs, _ := strconv.Atoi(retry); status != http.StatusTooManyRequests || errorCode(body) != api.CodeRateLimited || secs < 1 {
			t.Fatalf("over the budget: %d %q %s", status, retry, body)
		}
		if after, _ := n.Client.StateDigest(ctx); *after != *before {
			t.Errorf("a refused batch changed the state")
		}
		one, _ := json.Marshal(registrations(t, n, 1)[0])
		if status, _, body := post(t, httpFrom("127.0.0.2"), n, "", "/v1/transactions", one); status != http.StatusOK {
			t.Errorf("another address: %d %s", status, body)
		}
	})
	t.Run("the Go client, and so the CLI, waits the Retry-After and sends again", func(t *testing.T) {
		n := testnode.Start(t, testnode.Options{Budgets: api.NewBudgets(api.BudgetConfig{TransactionRate: 1, TransactionBurst: 1000})})
		batch, singles := registrations(t, n, 1000), registrations(t, n, 5)
		obs := &statusCounter{next: httpFrom("127.0.0.1").Transport}
		c := client.New(n.URL).WithHTTPClient(&http.Client{Transport: obs})
		if _, err := c.SubmitBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for _, tx := range singles {
			if _, err := c.Submit(ctx, tx); err != nil {
				t.Fatalf("the client did not get through: %v", err)
			}
		}
		if obs.tooMany == 0 {
			t.Errorf("the node never answered 429: the budget did not bite")
		}
	})
	t.Run("records count one each", func(t *testing.T) {
		n := testnode.Start(t, testnode.Options{Budgets: api.NewBudgets(api.BudgetConfig{EventRate: 0.001, EventBurst: 1000})})
		owner := testnode.NewKey(t)
		vid := n.Vehicle(t, owner)
		dev := n.PairedDevice(t, owner, vid, ledger.KindHardware)
		at := time.Now().Truncate(time.Millisecond)
		var subs []telemetry.Submission
		for i := range 1001 {
			subs = append(subs, testnode.Record(t, dev, vid, fmt.Sprintf("r%d", i), at.Add(time.Duration(i)*time.Millisecond)))
		}
		batch, _ := json.Marshal(subs[:1000])
		status, _, body := post(t, httpFrom("127.0.0.1"), n, "", "/v1/events", batch)
		var res []telemetry.Result
		if status != http.StatusOK || json.Unmarshal(body, &res) != nil || len(res) != 1000 || res[999].Status != telemetry.StatusAccepted {
			t.Fatalf("the batch of 1,000: %d %.300s", status, body)
		}
		last, _ := json.Marshal(subs[1000])
		status, retry, body := post(t, httpFrom("127.0.0.1"), n, "", "/v1/events", last)
		if status != http.StatusTooManyRequests || errorCode(body) != api.CodeRateLimited || retry == "" {
			t.Fatalf("over the budget: %d %q %s", status, retry, body)
		}
		// Nothing of the refused record was stored: the owner's latest speed is the 1,000th record's.
		token, want := n.SignIn(t, owner), at.Add(999*time.Millisecond)
		for i := 0; ; i++ { // the records are indexed after they are acknowledged
			a := graphQL(t, n, token, fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { timestamp } } }`, vid))
			speed, _ := a.Data["signalsLatest"].(map[string]any)["speed"].(map[string]any)
			var got time.Time
			if speed != nil {
				got, _ = time.Parse(time.RFC3339Nano, speed["timestamp"].(string))
			}
			if got.Equal(want) {
				break
			}
			if i == 200 {
				t.Fatalf("the latest speed is at %v, want %v (the 1,000th record's)", got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if status, _, body := post(t, httpFrom("127.0.0.2"), n, "", "/v1/events", last); status != http.StatusOK {
			t.Errorf("another address: %d %s", status, body)
		}
	})
}

// statusCounter counts the 429 answers passing through to the client.
type statusCounter struct {
	next    http.RoundTripper
	tooMany int
}

func (s *statusCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		s.tooMany++
	}
	return resp, err
}
