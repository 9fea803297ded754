package graphql_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/api/graphql"
)

// wsClient speaks graphql-transport-ws by hand, to see every message (pings included).
type wsClient struct {
	c    *websocket.Conn
	msgs chan wsMessage // closed when the socket is
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialWS opens a WebSocket to url's /graphql and signs in with token in connection_init.
func dialWS(t *testing.T, url, token string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1)+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	w := &wsClient{c: c, msgs: make(chan wsMessage, 1000)}
	go func() {
		defer close(w.msgs)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var m wsMessage
			json.Unmarshal(b, &m)
			w.msgs <- m
		}
	}()
	w.send(t, wsMessage{Type: "connection_init", Payload: json.RawMessage(fmt.Sprintf(`{"Authorization": "Bearer %s"}`, token))})
	if m := w.read(t); m.Type != "connection_ack" {
		t.Fatalf("after connection_init: %+v", m)
	}
	return w
}

func (w *wsClient) send(t *testing.T, m wsMessage) {
	t.Helper()
	b, _ := json.Marshal(m)
	if err := w.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// read returns the next message, failing the test when none comes within 30 s or the socket closed.
func (w *wsClient) read(t *testing.T) wsMessage {
	t.Helper()
	select {
	case m, ok := <-w.msgs:
		if !ok {
			t.Fatal("the socket closed")
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no message for 30 s")
	}
	return wsMessage{}
}

func (w *wsClient) subscribe(t *testing.T, id, query string) {
	t.Helper()
	p, _ := json.Marshal(map[string]string{"query": query})
	w.send(t, wsMessage{ID: id, Type: "subscribe", Payload: p})
}

// errorCode returns the extensions.code of the first error of a next or error message.
func errorCode(m wsMessage) string {
	var errs []struct{ Extensions map[string]any }
	if m.Type == "next" {
		var p struct {
			Errors []struct{ Extensions map[string]any }
		}
		json.Unmarshal(m.Payload, &p)
		errs = p.Errors
	} else {
		json.Unmarshal(m.Payload, &errs)
	}
	if len(errs) == 0 {
		return ""
	}
	s, _ := errs[0].Extensions["code"].(string)
	return s
}

func TestAWebSocketCarriesAtMostMaxSubscriptionsAndFreesASlotWhenOneCompletes(t *testing.T) {
	f := newFixture(t)
	token := f.n.SignIn(t, f.owner)
	q := fmt.Sprintf(`subscription { signalsLatest(tokenId: %d) { speed { value } } }`, f.vehicle)
	w := dialWS(t, f.n.URL, token)
	for i := range graphql.MaxSubscriptionsPerConnection {
		w.subscribe(t, fmt.Sprint(i), q)
	}
	waitSubscribers(t, f, graphql.MaxSubscriptionsPerConnection)
	w.subscribe(t, "one-too-many", q)
	m := w.read(t)
	if m.ID != "one-too-many" || m.Type != "next" || errorCode(m) != graphql.CodeTooManySubscriptions {
		t.Fatalf("subscription %d: %+v %s", graphql.MaxSubscriptionsPerConnection+1, m, m.Payload)
	}
	if m := w.read(t); m.ID != "one-too-many" || m.Type != "complete" {
		t.Fatalf("after the refusal: %+v", m)
	}
	// Another socket has slots of its own.
	other := dialWS(t, f.n.URL, token)
	other.subscribe(t, "a", q)
	waitSubscribers(t, f, graphql.MaxSubscriptionsPerConnection+1)
	// Completing one frees its slot: the socket takes a subscription again.
	w.send(t, wsMessage{ID: "0", Type: "complete"})
	if m := w.read(t); m.ID != "0" || m.Type != "complete" {
		t.Fatalf("after the client's complete: %+v", m)
	}
	waitSubscribers(t, f, graphql.MaxSubscriptionsPerConnection)
	// The slot is freed as the subscription's goroutine ends, a moment after: try until a subscription
	// runs rather than being refused.
	for n := 0; ; n++ {
		id := fmt.Sprintf("again-%d", n)
		w.subscribe(t, id, q)
	wait:
		for {
			select {
			case m := <-w.msgs:
				if m.ID != id || errorCode(m) != graphql.CodeTooManySubscriptions || n > 1000 {
					t.Fatalf("after a complete: %+v %s", m, m.Payload)
				}
				if m := w.read(t); m.Type != "complete" {
					t.Fatalf("after a refusal: %+v", m)
				}
				break wait
			case <-time.After(5 * time.Millisecond):
				if f.n.Live.Subscribers() == graphql.MaxSubscriptionsPerConnection+1 {
					return
				}
			}
		}
	}
}

func TestAWebSocketIsPingedAndClosedWhenItAnswersNoPong(t *testing.T) {
	f := newFixture(t)
	h := graphql.NewHandler(graphql.Config{State: f.n.Sequencer.Read, Telemetry: f.n.Telemetry, Live: f.n.Live,
		PingInterval: 100 * time.Millisecond,
		Authenticate: func(token string) (common.Address, time.Time, error) {
			c, err := f.n.Auth.Verify(token)
			return c.Subject, c.Expiry, err
		}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	w := dialWS(t, srv.URL, f.n.SignIn(t, f.owner))
	// The client's own ping is answered with a pong.
	w.send(t, wsMessage{Type: "ping"})
	for pongs, pings := 0, 0; pongs == 0 || pings < 5; {
		switch m := w.read(t); m.Type {
		case "pong":
			pongs++
		case "ping":
			pings++
			w.send(t, wsMessage{Type: "pong"})
		default:
			t.Fatalf("an idle socket got %+v", m)
		}
	}
	// A client that stops answering is closed.
	for {
		select {
		case m, ok := <-w.msgs:
			if !ok {
				return
			}
			if m.Type != "ping" {
				t.Fatalf("while not answering: %+v", m)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the socket stayed open without pongs")
		}
	}
}
