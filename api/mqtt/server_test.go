package mqtt_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/api/mqtt"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

var versions = []struct {
	name string
	v    int
}{{"MQTT3.1.1", 4}, {"MQTT5", 5}}

// TestMQTTPublish: a paired device publishes signed records with QoS 1; when the PUBACK is in, the
// records are in the node's store, and the results report accepted, then duplicate.
func TestMQTTPublish(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			f := newFixture(t)
			p := publisher(t, f, f.dev, ver.v)
			ctx := ctx10(t)
			batch := []telemetry.Submission{event(t, f.dev, f.vid, "r1"), event(t, f.dev, f.vid, "r2")}
			rs, err := p.PublishAndWait(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			if got := statuses(rs); got != "accepted,accepted" {
				t.Fatalf("results %s, want accepted,accepted (%+v)", got, rs)
			}
			if rs[0].ID != "r1" || rs[1].ID != "r2" || !strings.EqualFold(rs[0].Source, f.dev.Address.Hex()) {
				t.Errorf("results %+v", rs)
			}
			if c := records(t, f.n); c != 2 {
				t.Fatalf("%d records stored after the PUBACK, want 2", c)
			}
			rs, err = p.PublishAndWait(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			if got := statuses(rs); got != "duplicate,duplicate" {
				t.Fatalf("results %s, want duplicate,duplicate", got)
			}
			// Publish without waiting for results: the acknowledgement alone means durable.
			if err := p.Publish(ctx, []telemetry.Submission{event(t, f.dev, f.vid, "r3")}); err != nil {
				t.Fatal(err)
			}
			if c := records(t, f.n); c != 3 {
				t.Fatalf("%d records stored after the PUBACK, want 3", c)
			}
			// Results still line up with their publishes afterwards.
			rs, err = p.PublishAndWait(ctx, []telemetry.Submission{batch[0], event(t, f.dev, f.vid, "r4")})
			if err != nil {
				t.Fatal(err)
			}
			if got := statuses(rs); got != "duplicate,accepted" || rs[0].ID != "r1" || rs[1].ID != "r4" {
				t.Fatalf("results %s %+v, want duplicate,accepted", got, rs)
			}
		})
	}
}

// TestMQTTUnpairedDevice: a registered device that is not paired may log in, but its records are refused
// with not_paired; on MQTT 5 the PUBACK says not authorized, on 3.1.1 it is a plain PUBACK.
func TestMQTTUnpairedDevice(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			f := newFixture(t)
			loner := testnode.NewKey(t)
			f.n.Submit(t, &ledger.Tx{Type: ledger.TypeRegisterDevice, Device: loner.Address, Kind: ledger.KindSoftware}, loner)
			p := publisher(t, f, loner, ver.v)
			ctx := ctx10(t)
			rs, err := p.PublishAndWait(ctx, []telemetry.Submission{event(t, loner, f.vid, "x1")})
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 || rs[0].Status != telemetry.StatusNotPaired {
				t.Fatalf("results %+v, want not_paired", rs)
			}
			err = p.Publish(ctx, []telemetry.Submission{event(t, loner, f.vid, "x2")})
			var re *mqtt.RefusedError
			if ver.v == 5 {
				if !errors.As(err, &re) || re.Code != 0x87 || !strings.Contains(re.Reason, "not_paired") {
					t.Fatalf("Publish: %v, want a PUBACK with reason 0x87 naming not_paired", err)
				}
			} else if err != nil {
				t.Fatalf("Publish: %v, want a plain PUBACK on MQTT 3.1.1", err)
			}
			if c := records(t, f.n); c != 0 {
				t.Fatalf("%d records stored", c)
			}
		})
	}
}

// TestMQTTv5ReasonCodesAndResults: MQTT 5 results carry the correlation data; a single envelope gets a
// single result; a payload refused as a whole gets 0x99 and an error body; a mixed message is a success.
func TestMQTTv5ReasonCodesAndResults(t *testing.T) {
	f := newFixture(t)
	user, pass := login(t, f, f.dev)
	c, _, err := dial5(t, f.s.Addr(), user, pass)
	if err != nil {
		t.Fatal(err)
	}
	if code := c.subscribe(t, mqtt.ResultsTopic(f.dev.Address)); code != 1 {
		t.Fatalf("SUBACK 0x%02x for the own results topic", code)
	}
	pub := func(payload []byte, corr string) (*paho.PublishResponse, *paho.Publish) {
		t.Helper()
		pr, err := c.c.Publish(ctx10(t), &paho.Publish{QoS: 1, Topic: mqtt.EventsTopic(f.dev.Address), Payload: payload,
			Properties: &paho.PublishProperties{CorrelationData: []byte(corr)}})
		if pr == nil {
			t.Fatalf("publish: %v", err)
		}
		m := c.next(t)
		if m.Topic != mqtt.ResultsTopic(f.dev.Address) || m.Properties == nil || string(m.Properties.CorrelationData) != corr ||
			m.Properties.ContentType != "application/json" {
			t.Fatalf("results message on %s with properties %+v", m.Topic, m.Properties)
		}
		return pr, m
	}

	single, _ := json.Marshal(event(t, f.dev, f.vid, "s1"))
	pr, m := pub(single, "one")
	var r telemetry.Result
	if pr.ReasonCode != 0 || json.Unmarshal(m.Payload, &r) != nil || r.Status != telemetry.StatusAccepted || r.ID != "s1" {
		t.Fatalf("single envelope: PUBACK 0x%02x, results %s", pr.ReasonCode, m.Payload)
	}

	pr, m = pub([]byte("not json"), "two")
	var eb struct {
		Error struct{ Code, Message string }
	}
	if pr.ReasonCode != 0x99 || json.Unmarshal(m.Payload, &eb) != nil || eb.Error.Code != "malformed" {
		t.Fatalf("garbage: PUBACK 0x%02x, results %s", pr.ReasonCode, m.Payload)
	}

	pr, m = pub([]byte("["+strings.Repeat("{},", mqtt.MaxBatch)+"{}]"), "three")
	if pr.ReasonCode != 0x99 || json.Unmarshal(m.Payload, &eb) != nil || eb.Error.Code != "too_large" {
		t.Fatalf("1001 records: PUBACK 0x%02x, results %s", pr.ReasonCode, m.Payload)
	}

	bad := event(t, f.dev, f.vid, "s2")
	bad.Event = []byte(strings.Replace(string(bad.Event), `"value":42.5`, `"value":43.5`, 1)) // not the time, which may hold 42.5
	mixed, _ := json.Marshal([]telemetry.Submission{bad, event(t, f.dev, f.vid, "s3")})
	pr, m = pub(mixed, "four")
	var rs []telemetry.Result
	if pr.ReasonCode != 0 || json.Unmarshal(m.Payload, &rs) != nil || statuses(rs) != "bad_signature,accepted" {
		t.Fatalf("mixed: PUBACK 0x%02x, results %s", pr.ReasonCode, m.Payload)
	}

	onlyBad, _ := json.Marshal([]telemetry.Submission{bad})
	pr, m = pub(onlyBad, "five")
	if pr.ReasonCode != 0x87 || json.Unmarshal(m.Payload, &rs) != nil || statuses(rs) != "bad_signature" {
		t.Fatalf("all bad: PUBACK 0x%02x, results %s", pr.ReasonCode, m.Payload)
	}
	if n := records(t, f.n); n != 2 {
		t.Fatalf("%d records stored, want 2", n)
	}
}

// TestMQTTQoS0 publishes are ingested too, without an acknowledgement; the results topic says so.
func TestMQTTQoS0(t *testing.T) {
	f := newFixture(t)
	user, pass := login(t, f, f.dev)
	c, err := dial3(t, f.s.Addr(), user, pass, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code := c.subscribe(t, mqtt.ResultsTopic(f.dev.Address)); code != 1 {
		t.Fatalf("SUBACK 0x%02x", code)
	}
	payload, _ := json.Marshal([]telemetry.Submission{event(t, f.dev, f.vid, "q0")})
	if err := wait3(t, c.c.Publish(mqtt.EventsTopic(f.dev.Address), 0, false, payload)); err != nil {
		t.Fatal(err)
	}
	m := c.next(t)
	var rs []telemetry.Result
	if json.Unmarshal(m.Payload(), &rs) != nil || statuses(rs) != "accepted" {
		t.Fatalf("results %s", m.Payload())
	}
	if n := records(t, f.n); n != 1 {
		t.Fatalf("%d records", n)
	}
}

// TestMQTTQoS2 is acknowledged (PUBREC) after the records are durable too.
func TestMQTTQoS2(t *testing.T) {
	f := newFixture(t)
	user, pass := login(t, f, f.dev)
	c, err := dial3(t, f.s.Addr(), user, pass, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal([]telemetry.Submission{event(t, f.dev, f.vid, "q2")})
	if err := wait3(t, c.c.Publish(mqtt.EventsTopic(f.dev.Address), 2, false, payload)); err != nil {
		t.Fatal(err)
	}
	if n := records(t, f.n); n != 1 {
		t.Fatalf("%d records", n)
	}
}

// TestMQTTTopicRules: a device may publish only to its own events topic and subscribe only to its own
// results topic.
func TestMQTTTopicRules(t *testing.T) {
	f := newFixture(t)
	other := testnode.NewKey(t)
	own := f.dev.Address
	refusedFilters := []string{
		mqtt.ResultsTopic(other.Address), // another device's results
		mqtt.EventsTopic(own),            // its own events
		"glovebox/v1/devices/+/results",
		"glovebox/v1/devices/" + strings.ToLower(own.Hex()) + "/#",
		"#",
		"$SYS/#",
		"$share/g/" + mqtt.ResultsTopic(own),
	}
	payload, _ := json.Marshal([]telemetry.Submission{event(t, f.dev, f.vid, "t1")})
	user, pass := login(t, f, f.dev)

	t.Run("MQTT3.1.1", func(t *testing.T) {
		c, err := dial3(t, f.s.Addr(), user, pass, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, filter := range refusedFilters {
			if code := c.subscribe(t, filter); code != 0x80 {
				t.Errorf("SUBACK 0x%02x for %s, want 0x80", code, filter)
			}
		}
		if code := c.subscribe(t, mqtt.ResultsTopic(own)); code != 1 {
			t.Errorf("SUBACK 0x%02x for the own results topic", code)
		}
		if code := c.subscribe(t, "glovebox/v1/devices/"+own.Hex()+"/results"); code != 1 {
			t.Errorf("SUBACK 0x%02x for the own results topic in EIP-55", code)
		}
		// MQTT 3.1.1 has no negative PUBACK: mochi closes the connection.
		err = wait3(t, c.c.Publish(mqtt.EventsTopic(other.Address), 1, false, payload))
		if err == nil {
			t.Fatal("publish to another device's topic acknowledged")
		}
		select {
		case <-c.lost:
		case <-time.After(5 * time.Second):
			t.Fatal("connection not closed")
		}
		// A retained publish closes the connection too.
		c, err = dial3(t, f.s.Addr(), user, pass, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := wait3(t, c.c.Publish(mqtt.EventsTopic(own), 1, true, payload)); err == nil {
			t.Fatal("retained publish acknowledged")
		}
	})
	t.Run("MQTT5", func(t *testing.T) {
		c, ca, err := dial5(t, f.s.Addr(), user, pass)
		if err != nil {
			t.Fatal(err)
		}
		p := ca.Properties
		if p == nil || p.RetainAvailable || p.WildcardSubAvailable || p.SharedSubAvailable {
			t.Errorf("CONNACK properties %+v: want retain, wildcard and shared subscriptions unavailable", p)
		}
		for _, filter := range refusedFilters {
			if strings.ContainsAny(filter, "+#") || strings.HasPrefix(filter, "$share/") {
				// The client library doesn't even send these: the CONNACK said the broker takes none.
				_, err := c.c.Subscribe(ctx10(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
				if !errors.Is(err, paho.ErrInvalidArguments) {
					t.Errorf("subscribe %s: %v, want a refusal by the client library", filter, err)
				}
				continue
			}
			if code := c.subscribe(t, filter); code != 0x87 {
				t.Errorf("SUBACK 0x%02x for %s, want 0x87", code, filter)
			}
		}
		pr, err := c.c.Publish(ctx10(t), &paho.Publish{QoS: 1, Topic: mqtt.EventsTopic(other.Address), Payload: payload})
		if pr == nil || pr.ReasonCode != 0x87 {
			t.Fatalf("publish to another device's topic: %+v, %v; want PUBACK 0x87", pr, err)
		}
		// The client library refuses a retained publish, because the CONNACK said retain is unavailable.
		_, err = c.c.Publish(ctx10(t), &paho.Publish{QoS: 1, Topic: mqtt.EventsTopic(own), Payload: payload, Retain: true})
		if !errors.Is(err, paho.ErrInvalidArguments) {
			t.Fatalf("retained publish: %v", err)
		}
	})
	if n := records(t, f.n); n != 0 {
		t.Fatalf("%d records stored from refused publishes", n)
	}
}

// TestMQTTLoginRefused: only a registered device with a valid token for this node may connect.
func TestMQTTLoginRefused(t *testing.T) {
	f := newFixture(t)
	origin := f.n.Log.Origin()
	stranger := testnode.NewKey(t)
	sign := func(k testnode.Key, as string, origin string, exp int64) string {
		h := ledger.PersonalHash([]byte(fmt.Sprintf("glovebox mqtt login\norigin: %s\ndevice: %s\nexpires: %d", origin, strings.ToLower(as), exp)))
		sig, err := crypto.Sign(h[:], k.Key)
		if err != nil {
			t.Fatal(err)
		}
		sig[64] += 27
		return fmt.Sprintf("%d.0x%x", exp, sig)
	}
	dev := f.dev.Address.Hex()
	soon := time.Now().Add(time.Hour).Unix()
	cases := []struct{ name, user, pass string }{
		{"unknown device", stranger.Address.Hex(), sign(stranger, stranger.Address.Hex(), origin, soon)},
		{"token by another key", dev, sign(stranger, dev, origin, soon)},
		{"expired token", dev, sign(f.dev, dev, origin, time.Now().Add(-time.Minute).Unix())},
		{"token more than 24h ahead", dev, sign(f.dev, dev, origin, time.Now().Add(25*time.Hour).Unix())},
		{"token for another origin", dev, sign(f.dev, dev, "glovebox.local/elsewhere", soon)},
		{"garbage password", dev, "hunter2"},
		{"no password", dev, ""},
		{"user name not an address", "device-1", sign(f.dev, dev, origin, soon)},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/MQTT3.1.1", func(t *testing.T) {
			// mochi maps MQTT 5's "bad user name or password" to 3.1.1's return code 5, not authorized.
			_, err := dial3(t, f.s.Addr(), tc.user, tc.pass, nil)
			if !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
				t.Fatalf("connect: %v, want not authorized", err)
			}
		})
		t.Run(tc.name+"/MQTT5", func(t *testing.T) {
			_, ca, err := dial5(t, f.s.Addr(), tc.user, tc.pass)
			if err == nil || ca == nil || ca.ReasonCode != 0x86 {
				t.Fatalf("connect: %+v, %v; want CONNACK 0x86", ca, err)
			}
		})
	}
	// The same device with a good token, for contrast; and a will is refused.
	if _, err := dial3(t, f.s.Addr(), dev, sign(f.dev, dev, origin, soon), nil); err != nil {
		t.Fatalf("good token refused: %v", err)
	}
	_, err := dial3(t, f.s.Addr(), dev, sign(f.dev, dev, origin, soon), func(o *paho3.ClientOptions) {
		o.SetWill(mqtt.ResultsTopic(stranger.Address), `{"status":"accepted"}`, 0, false)
	})
	if !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Fatalf("connect with a will: %v, want not authorized", err)
	}
}

// TestMQTTClientIDsArePerDevice: a device can't take over another device's session by reusing its
// client id.
func TestMQTTClientIDsArePerDevice(t *testing.T) {
	f := newFixture(t)
	other := testnode.NewKey(t)
	f.n.Submit(t, &ledger.Tx{Type: ledger.TypeRegisterDevice, Device: other.Address, Kind: ledger.KindSoftware}, other)
	sameID := func(o *paho3.ClientOptions) { o.SetClientID("car") }
	u1, p1 := login(t, f, f.dev)
	a, err := dial3(t, f.s.Addr(), u1, p1, sameID)
	if err != nil {
		t.Fatal(err)
	}
	u2, p2 := login(t, f, other)
	if _, err := dial3(t, f.s.Addr(), u2, p2, sameID); err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal([]telemetry.Submission{event(t, f.dev, f.vid, "c1")})
	if err := wait3(t, a.c.Publish(mqtt.EventsTopic(f.dev.Address), 1, false, payload)); err != nil {
		t.Fatalf("the first device was disconnected: %v", err)
	}
}

// TestMQTTTokenExpiryClosesTheConnection: after the login token expired, the next publish closes the
// connection (MQTT 5: DISCONNECT 0xA0) and is not ingested.
func TestMQTTTokenExpiryClosesTheConnection(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, vid, ledger.KindHardware)
	var skew atomic.Int64
	s := broker(t, n, nil, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	f := &fixture{n: n, s: s, vid: vid, dev: dev}
	user, pass, err := mqtt.LoginToken(dev.Key, n.Log.Origin(), time.Now().Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := dial5(t, s.Addr(), user, pass)
	if err != nil {
		t.Fatal(err)
	}
	skew.Store(int64(11 * time.Minute))
	payload, _ := json.Marshal([]telemetry.Submission{event(t, dev, vid, "e1")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if pr, err := c.c.Publish(ctx, &paho.Publish{QoS: 1, Topic: mqtt.EventsTopic(dev.Address), Payload: payload}); err == nil {
		t.Fatalf("publish after expiry acknowledged: %+v", pr)
	}
	select {
	case d := <-c.disc:
		if d.ReasonCode != 0xA0 {
			t.Fatalf("DISCONNECT 0x%02x, want 0xA0", d.ReasonCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no DISCONNECT")
	}
	if c := records(t, f.n); c != 0 {
		t.Fatalf("%d records", c)
	}
}

// blockingStore holds every write until released.
type blockingStore struct {
	telemetry.Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) Write(ctx context.Context, recs []*telemetry.Record) ([]telemetry.Status, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.Write(ctx, recs)
}

// TestMQTTAckWaitsForDurability: with a store that blocks, the PUBACK does not come until the write
// returned.
func TestMQTTAckWaitsForDurability(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			n := testnode.Start(t, testnode.Options{})
			owner := testnode.NewKey(t)
			vid := n.Vehicle(t, owner)
			dev := n.PairedDevice(t, owner, vid, ledger.KindHardware)
			store := &blockingStore{Store: n.Telemetry, entered: make(chan struct{}, 1), release: make(chan struct{})}
			ing := telemetry.NewIngester(telemetry.DefaultCatalog, n.Sequencer.Read, store, telemetry.IngesterOptions{Logger: quiet})
			ctx, cancel := context.WithCancel(context.Background())
			ingDone := make(chan struct{})
			go func() { defer close(ingDone); ing.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-ingDone })
			f := &fixture{n: n, s: broker(t, n, ing, nil), vid: vid, dev: dev}
			p := publisher(t, f, dev, ver.v)
			if err := p.Connect(ctx10(t)); err != nil {
				t.Fatal(err)
			}
			acked := make(chan error, 1)
			go func() { acked <- p.Publish(context.Background(), []telemetry.Submission{event(t, dev, vid, "d1")}) }()
			select {
			case <-store.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the store was never written")
			}
			select {
			case err := <-acked:
				t.Fatalf("PUBACK before the write returned (err %v)", err)
			case <-time.After(300 * time.Millisecond):
			}
			if c := records(t, n); c != 0 {
				t.Fatalf("%d records before the write", c)
			}
			close(store.release)
			select {
			case err := <-acked:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no PUBACK after the write")
			}
			if c := records(t, n); c != 1 {
				t.Fatalf("%d records after the PUBACK, want 1", c)
			}
		})
	}
}

// TestMQTTLimitsMatchTheHTTPAPI: a message takes what POST /v1/events takes.
func TestMQTTLimitsMatchTheHTTPAPI(t *testing.T) {
	if mqtt.MaxBatch != api.MaxEventBatch || mqtt.MaxPayload != api.MaxEventBatchBody {
		t.Fatalf("MQTT limits %d records / %d bytes, HTTP %d / %d", mqtt.MaxBatch, mqtt.MaxPayload, api.MaxEventBatch, api.MaxEventBatchBody)
	}
}

// TestMQTTCloseWaitsForIngest: Close disconnects clients at once but returns only when the message being
// ingested is done; that message is stored but never acknowledged (the device publishes it again and
// gets duplicate).
func TestMQTTCloseWaitsForIngest(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, vid, ledger.KindHardware)
	store := &blockingStore{Store: n.Telemetry, entered: make(chan struct{}, 1), release: make(chan struct{})}
	ing := telemetry.NewIngester(telemetry.DefaultCatalog, n.Sequencer.Read, store, telemetry.IngesterOptions{Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	ingDone := make(chan struct{})
	go func() { defer close(ingDone); ing.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ingDone })
	s, err := mqtt.New(mqtt.Config{Addr: "127.0.0.1:0", Ingester: ing, State: n.Sequencer.Read, Origin: n.Log.Origin(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	f := &fixture{n: n, s: s, vid: vid, dev: dev}
	p := publisher(t, f, dev, 5)
	acked := make(chan error, 1)
	go func() { acked <- p.Publish(context.Background(), []telemetry.Submission{event(t, dev, vid, "c1")}) }()
	<-store.entered
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a message was being ingested", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(store.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := <-acked; err == nil {
		t.Fatal("acknowledged although the server closed the connection")
	}
	if c := records(t, n); c != 1 {
		t.Fatalf("%d records, want 1", c)
	}
	if err := s.Serve(); !errors.Is(err, mqtt.ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}
