package graphql_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// stream is a subscription over server-sent events.
type stream struct {
	events chan sseEvent
}

type sseEvent struct {
	name string
	data response
}

// subscribeSSE posts query to the node's /graphql asking for text/event-stream.
func subscribeSSE(t *testing.T, f *fixture, token, query string) *stream {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "POST", f.n.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("the answer is %d %s", resp.StatusCode, ct)
	}
	s := &stream{events: make(chan sseEvent, 100)}
	go func() {
		defer resp.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data.Raw = []byte(strings.TrimPrefix(line, "data: "))
				json.Unmarshal(ev.data.Raw, &ev.data)
			case line == "" && ev.name != "":
				s.events <- ev
				ev = sseEvent{}
			}
		}
	}()
	return s
}

func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("nothing was pushed for 30 s")
	}
	return sseEvent{}
}

func waitSubscribers(t *testing.T, f *fixture, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for f.n.Live.Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions, want %d", f.n.Live.Subscribers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestASignalsLatestPushMergesTheAcceptedRecordWithTheStoredValues(t *testing.T) {
	f := newFixture(t)
	s := subscribeSSE(t, f, f.n.SignIn(t, f.owner), fmt.Sprintf(
		`subscription { signalsLatest(tokenId: %d) { speed { value } powertrainType { value } currentLocationCoordinates { value { latitude } } } }`, f.vehicle))
	waitSubscribers(t, f, 1)
	at := f.base.Add(3 * time.Second)
	// Posted without indexing: the push must not wait for the indexer.
	res, err := f.n.Client.PostEvents(context.Background(), []telemetry.Submission{testnode.Record(t, f.dev, f.vehicle, "r4", at,
		telemetry.EventSignal{Name: "speed", Timestamp: at, Value: 77.0})})
	if err != nil || res[0].Status != telemetry.StatusAccepted {
		t.Fatal(err, res)
	}
	ev := s.next(t)
	want := fmt.Sprintf(`{"data":{"signalsLatest":{"speed":{"value":77},"powertrainType":{"value":"BEV"},"currentLocationCoordinates":{"value":{"latitude":%v}}}}}`, lat)
	if ev.name != "next" || string(ev.data.Raw) != want {
		t.Fatalf("pushed %s %s, want %s", ev.name, ev.data.Raw, want)
	}
}

func TestAnAppsSubscriptionGetsOnlyWhatItsGrantAllowsAndEndsWhenTheGrantExpires(t *testing.T) {
	f := newFixture(t)
	app := f.n.App(t, f.owner)
	expires := time.Now().Add(8 * time.Second).Unix() // after the record's time, up to 4 s ahead: it is held until then
	f.n.Grant(t, f.owner, f.vehicle, app.Address, expires, ledger.PermSignals, ledger.PermStream)
	s := subscribeSSE(t, f, f.n.SignIn(t, app), fmt.Sprintf(
		`subscription { signalsLatest(tokenId: %d) { speed { value } currentLocationCoordinates { value { latitude } } } }`, f.vehicle))
	waitSubscribers(t, f, 1)
	at := f.base.Add(3 * time.Second)
	// Posted at the node's own time (not post's, ahead of it): the grant is judged as the record arrives.
	res, err := f.n.Client.PostEvents(context.Background(), []telemetry.Submission{testnode.Record(t, f.dev, f.vehicle, "r4", at,
		telemetry.EventSignal{Name: "speed", Timestamp: at, Value: 61.0})})
	if err != nil || res[0].Status != telemetry.StatusAccepted {
		t.Fatal(err, res)
	}
	ev := s.next(t)
	if got := ev.data.codes(); ev.name != "next" || got["signalsLatest.currentLocationCoordinates"] != "FORBIDDEN" || len(got) != 1 ||
		!strings.Contains(string(ev.data.Raw), `"speed":{"value":61}`) {
		t.Fatalf("pushed %s: the speed, and the location refused", ev.data.Raw)
	}
	// No record comes; the grant's expiry alone ends the subscription.
	ev = s.next(t)
	if ev.name != "next" || ev.data.codes()[""] != "FORBIDDEN" || time.Now().Unix() < expires {
		t.Fatalf("at the expiry: %s %s", ev.name, ev.data.Raw)
	}
	if ev := s.next(t); ev.name != "complete" {
		t.Fatalf("after the error: %s", ev.name)
	}
	waitSubscribers(t, f, 0)
}

func TestASubscriptionOutsideAStreamIsABadRequest(t *testing.T) {
	f := newFixture(t)
	body, _ := json.Marshal(map[string]string{"query": fmt.Sprintf(`subscription { signalsLatest(tokenId: %d) { speed { value } } }`, f.vehicle)})
	req, _ := http.NewRequest("POST", f.n.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.n.SignIn(t, f.owner))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r response
	json.NewDecoder(resp.Body).Decode(&r)
	if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "BAD_REQUEST" || f.n.Live.Subscribers() != 0 {
		t.Fatalf("a subscription over plain POST: %+v", r)
	}
}

func TestAnEventsSubscriptionNeedsInsights(t *testing.T) {
	f := newFixture(t)
	app := f.n.App(t, f.owner)
	f.n.Grant(t, f.owner, f.vehicle, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals, ledger.PermStream)
	s := subscribeSSE(t, f, f.n.SignIn(t, app), fmt.Sprintf(`subscription { events(tokenId: %d) { name } }`, f.vehicle))
	ev := s.next(t)
	if ev.name != "next" || len(ev.data.Errors) != 1 || ev.data.Errors[0].Extensions["code"] != "FORBIDDEN" ||
		ev.data.Errors[0].Extensions["permission"] != ledger.PermInsights {
		t.Fatalf("without insights: %s", ev.data.Raw)
	}
}

func TestASubscriptionHonoursAGrantOfOneSignal(t *testing.T) {
	f := newFixture(t)
	app := f.n.App(t, f.owner)
	f.n.Grant(t, f.owner, f.vehicle, app.Address, time.Now().Add(time.Hour).Unix(), ledger.SignalPermission("speed"), ledger.PermStream)
	s := subscribeSSE(t, f, f.n.SignIn(t, app), fmt.Sprintf(
		`subscription { signalsLatest(tokenId: %d) { speed { value } powertrainType { value } } }`, f.vehicle))
	waitSubscribers(t, f, 1)
	at := f.base.Add(3 * time.Second)
	f.post(t, testnode.Record(t, f.dev, f.vehicle, "r4", at, telemetry.EventSignal{Name: "speed", Timestamp: at, Value: 33.0}))
	ev := s.next(t)
	if got := ev.data.codes(); got["signalsLatest.powertrainType"] != "FORBIDDEN" || len(got) != 1 ||
		!strings.Contains(string(ev.data.Raw), `"speed":{"value":33}`) {
		t.Fatalf("pushed %s: the speed, and powertrainType refused", ev.data.Raw)
	}
}

func TestASubscriptionEndsWhenItsTokenExpires(t *testing.T) {
	f := newFixture(t)
	// A token signed in an hour minus three seconds ago: it expires three seconds from now.
	f.advanceNode(-time.Hour + 3*time.Second)
	token := f.n.SignIn(t, f.owner)
	f.advanceNode(time.Hour - 3*time.Second)
	s := subscribeSSE(t, f, token, fmt.Sprintf(`subscription { signalsLatest(tokenId: %d) { speed { value } } }`, f.vehicle))
	waitSubscribers(t, f, 1)
	// No record comes; the token's expiry alone ends the subscription.
	ev := s.next(t)
	if ev.name != "next" || ev.data.codes()[""] != "UNAUTHENTICATED" || !strings.Contains(string(ev.data.Raw), "expired") {
		t.Fatalf("at the token's expiry: %s %s", ev.name, ev.data.Raw)
	}
	if ev := s.next(t); ev.name != "complete" {
		t.Fatalf("after the error: %s", ev.name)
	}
	waitSubscribers(t, f, 0)
}
