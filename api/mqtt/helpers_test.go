package mqtt_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/glovebox/glovebox/api/mqtt"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// broker starts an MQTT server for node n on a free loopback port; ing defaults to the node's ingester.
func broker(t *testing.T, n *testnode.Node, ing *telemetry.Ingester, now func() time.Time) *mqtt.Server {
	t.Helper()
	if ing == nil {
		ing = n.Ingester
	}
	return serve(t, mqtt.Config{Addr: "127.0.0.1:0", Ingester: ing, State: n.Sequencer.Read, Origin: n.Log.Origin(),
		Logger: quiet, Now: now})
}

// serve starts a broker with cfg and closes it when the test ends.
func serve(t *testing.T, cfg mqtt.Config) *mqtt.Server {
	t.Helper()
	s, err := mqtt.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// fixture is a node with a vehicle, its paired device and an MQTT broker.
type fixture struct {
	n   *testnode.Node
	s   *mqtt.Server
	vid uint64
	dev testnode.Key
}

func newFixture(t *testing.T) *fixture {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, vid, ledger.KindHardware)
	return &fixture{n: n, s: broker(t, n, nil, nil), vid: vid, dev: dev}
}

// event builds and signs a record of dev for vehicle id.
func event(t testing.TB, dev testnode.Key, vid uint64, id string) telemetry.Submission {
	t.Helper()
	return testnode.Record(t, dev, vid, id, time.Now())
}

func records(t *testing.T, n *testnode.Node) int {
	t.Helper()
	var c int
	if err := n.Telemetry.DB().QueryRow(`SELECT count(*) FROM records`).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func publisher(t *testing.T, f *fixture, dev testnode.Key, version int) *mqtt.Publisher {
	t.Helper()
	p, err := mqtt.NewPublisher(mqtt.PublisherOptions{Addr: f.s.Addr(), Key: dev.Key, Origin: f.n.Log.Origin(), Version: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func statuses(rs []telemetry.Result) string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Status))
	}
	return strings.Join(out, ",")
}

func login(t *testing.T, f *fixture, dev testnode.Key) (user, pass string) {
	t.Helper()
	user, pass, err := mqtt.LoginToken(dev.Key, f.n.Log.Origin(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return user, pass
}

// ---- raw MQTT 3.1.1 client ----

type client3 struct {
	c    paho3.Client
	lost chan struct{}
	msgs chan paho3.Message
}

func dial3(t *testing.T, addr, user, pass string, opt func(*paho3.ClientOptions)) (*client3, error) {
	t.Helper()
	c := &client3{lost: make(chan struct{}), msgs: make(chan paho3.Message, 16)}
	var once sync.Once
	o := paho3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("t3-%d", time.Now().UnixNano())).
		SetUsername(user).SetPassword(pass).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectionLostHandler(func(paho3.Client, error) { once.Do(func() { close(c.lost) }) }).
		SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { c.msgs <- m })
	if opt != nil {
		opt(o)
	}
	c.c = paho3.NewClient(o)
	tok := c.c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.c.Disconnect(50) })
	return c, nil
}

func wait3(t *testing.T, tok paho3.Token) error {
	t.Helper()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("timed out")
	}
	return tok.Error()
}

// subscribe3 subscribes and returns the granted code (0x80 = refused).
func (c *client3) subscribe(t *testing.T, topic string) byte {
	t.Helper()
	tok := c.c.Subscribe(topic, 1, func(_ paho3.Client, m paho3.Message) { c.msgs <- m })
	if err := wait3(t, tok); err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	res := tok.(*paho3.SubscribeToken).Result() // keyed by topic, without a $share/<group>/ prefix
	if len(res) != 1 {
		t.Fatalf("subscribe %s: results %v", topic, res)
	}
	for _, code := range res {
		return code
	}
	return 0
}

func (c *client3) next(t *testing.T) paho3.Message {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return nil
	}
}

// ---- raw MQTT 5 client ----

type client5 struct {
	c    *paho.Client
	msgs chan *paho.Publish
	disc chan *paho.Disconnect
}

func dial5(t *testing.T, addr, user, pass string) (*client5, *paho.Connack, error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &client5{msgs: make(chan *paho.Publish, 16), disc: make(chan *paho.Disconnect, 1)}
	c.c = paho.NewClient(paho.ClientConfig{
		Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			c.msgs <- pr.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) { c.disc <- d },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := c.c.Connect(ctx, &paho.Connect{ClientID: fmt.Sprintf("t5-%d", time.Now().UnixNano()), KeepAlive: 30, CleanStart: true,
		Username: user, UsernameFlag: true, Password: []byte(pass), PasswordFlag: pass != ""})
	if err != nil {
		nc.Close()
		return nil, ca, err
	}
	t.Cleanup(func() { c.c.Disconnect(&paho.Disconnect{}) })
	return c, ca, nil
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// subscribe returns the SUBACK reason code.
func (c *client5) subscribe(t *testing.T, topic string) byte {
	t.Helper()
	sa, err := c.c.Subscribe(ctx10(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}})
	if sa == nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	return sa.Reasons[0]
}

func (c *client5) next(t *testing.T) *paho.Publish {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return nil
	}
}
