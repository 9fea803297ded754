package mqtt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/glovebox/glovebox/api/mqtt"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// guardedFixture is newFixture with a broker that caps connections per address at perAddress and
// waits timeout for a CONNECT.
func guardedFixture(t *testing.T, perAddress int, timeout time.Duration) *fixture {
	return cappedFixture(t, mqtt.Config{MaxConnsPerAddress: perAddress, ConnectTimeout: timeout})
}

// cappedFixture is newFixture with a broker of caps's MaxConnsPerAddress, MaxConns and ConnectTimeout.
func cappedFixture(t *testing.T, caps mqtt.Config) *fixture {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, vid, ledger.KindHardware)
	s := serve(t, mqtt.Config{Addr: "127.0.0.1:0", Ingester: n.Ingester, State: n.Sequencer.Read, Origin: n.Log.Origin(),
		Logger: quiet, MaxConnsPerAddress: caps.MaxConnsPerAddress, MaxConns: caps.MaxConns, ConnectTimeout: caps.ConnectTimeout})
	return &fixture{n: n, s: s, vid: vid, dev: dev}
}

// raw opens a TCP connection to the broker and writes b on it.
func raw(t *testing.T, addr string, b []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	return c
}

// closedWithin reports whether the broker closes c within d, sending nothing.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(c)
	if len(got) > 0 {
		t.Fatalf("the broker answered %q", got)
	}
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestMQTTConnectionsMustLogInInTime: a connection that sends no CONNECT, or only part of one, is
// closed once the connect timeout has passed; it held the broker's goroutines and buffers until then.
func TestMQTTConnectionsMustLogInInTime(t *testing.T) {
	f := guardedFixture(t, 0, time.Second)
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"nothing", nil},
		{"a fixed header only", []byte{0x10, 0x20}},
		{"a length cut short", []byte{0x10, 0x85}},
		{"half a CONNECT", []byte{0x10, 0x20, 0x00, 0x04, 'M', 'Q'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := raw(t, f.s.Addr(), tc.bytes)
			if closedWithin(t, c, 200*time.Millisecond) {
				t.Fatal("closed before the connect timeout")
			}
			if !closedWithin(t, c, 5*time.Second) {
				t.Fatal("still open 5 s after the connect timeout")
			}
		})
	}
	// A device that logs in in time stays connected past it, and publishes.
	p := publisher(t, f, f.dev, 5)
	if err := p.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	rs, err := p.PublishAndWait(context.Background(), []telemetry.Submission{event(t, f.dev, f.vid, "in-time")})
	if err != nil || statuses(rs) != "accepted" {
		t.Fatalf("publish after the connect timeout: %v %v", statuses(rs), err)
	}
}

// TestMQTTOversizedConnectIsRefusedAtOnce: a first packet announcing more than MaxConnectPacket bytes, or
// a length longer than MQTT's four bytes, closes the connection before the broker allocates for it or
// reads on (the connect timeout here is a minute, so only the check can close it in time).
func TestMQTTOversizedConnectIsRefusedAtOnce(t *testing.T) {
	f := guardedFixture(t, 0, time.Minute)
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"16 MiB announced", []byte{0x10, 0xff, 0xff, 0xff, 0x07}},
		{"MaxConnectPacket + 1", []byte{0x10, 0x81, 0x40}},
		{"five length bytes", []byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x00}},
		{"a PUBLISH first, 1 MiB", []byte{0x30, 0x80, 0x80, 0x40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := raw(t, f.s.Addr(), tc.bytes)
			if !closedWithin(t, c, 5*time.Second) {
				t.Fatal("the connection was kept")
			}
		})
	}
	// MaxConnectPacket itself is let through to the broker, which waits for the bytes.
	c := raw(t, f.s.Addr(), []byte{0x10, 0x80, 0x40})
	if closedWithin(t, c, 300*time.Millisecond) {
		t.Fatal("a first packet of MaxConnectPacket bytes was refused")
	}
}

// TestMQTTConnectionsPerAddress: one client address holds at most MaxConnsPerAddress connections,
// logged in or not; one over it is closed at once, and a place freed is taken again.
func TestMQTTConnectionsPerAddress(t *testing.T) {
	f := guardedFixture(t, 2, time.Minute)
	a := raw(t, f.s.Addr(), nil)
	p := publisher(t, f, f.dev, 5)
	if err := p.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	over := raw(t, f.s.Addr(), nil)
	if !closedWithin(t, over, 5*time.Second) {
		t.Fatal("a third connection from the address was kept")
	}
	q := publisher(t, f, f.dev, 4)
	if err := q.Connect(context.Background()); err == nil {
		t.Fatal("a device logged in over the cap")
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := q.Connect(context.Background())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place after one connection closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, pub := range []*mqtt.Publisher{p, q} {
		rs, err := pub.PublishAndWait(context.Background(), []telemetry.Submission{event(t, f.dev, f.vid, "cap-"+time.Now().String())})
		if err != nil || statuses(rs) != "accepted" {
			t.Fatalf("publish under the cap: %v %v", statuses(rs), err)
		}
	}
}

// TestMQTTConnectionsInAll: clients of many addresses (loopback's 127/8), each under its own cap, hold at
// most MaxConns connections, logged in or not; one over it is closed at once (a broker's connections are
// never idle to make room), and a place freed is taken again.
func TestMQTTConnectionsInAll(t *testing.T) {
	const timeout = 2 * time.Second
	f := cappedFixture(t, mqtt.Config{MaxConnsPerAddress: 2, MaxConns: 3, ConnectTimeout: timeout})
	from := func(i int) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 3, byte(i))}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", f.s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := from(1), from(2)
	p := publisher(t, f, f.dev, 5)
	if err := p.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if over := from(3); !closedWithin(t, over, 5*time.Second) {
		t.Fatal("a fourth connection, from an address of its own, was kept")
	}
	for _, c := range []net.Conn{a, b} {
		if closedWithin(t, c, 100*time.Millisecond) {
			t.Fatal("a connection under the cap was closed")
		}
	}
	b.Close()
	var c net.Conn
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c = from(4); !closedWithin(t, c, 200*time.Millisecond) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no place after one connection closed")
		}
	}
	rs, err := p.PublishAndWait(context.Background(), []telemetry.Submission{event(t, f.dev, f.vid, "all-"+time.Now().String())})
	if err != nil || statuses(rs) != "accepted" {
		t.Fatalf("publish under the cap: %v %v", statuses(rs), err)
	}
	// The connections that never logged in end by the connect timeout, before the broker is closed (whose
	// Close races with a connection it is still setting up).
	for _, raw := range []net.Conn{a, c} {
		if !closedWithin(t, raw, timeout+5*time.Second) {
			t.Fatal("a connection that never logged in outlived the connect timeout")
		}
	}
}

// TestMQTTLargePublishesHoldBoundedMemory: connections of a logged-in device that each announce a 16 MiB
// publish, send all but its last byte and wait made the broker hold two copies of each (it allocates
// for the announced length at once): eight connections, 256 MiB. A packet now takes its memory from
// PacketMemory (PacketMemoryPerAddress for one address) before the broker sees its length, so the heap
// holds one such packet however many connections wait.
func TestMQTTLargePublishesHoldBoundedMemory(t *testing.T) {
	f := guardedFixture(t, 0, time.Minute)
	user, pass := login(t, f, f.dev)
	const conns = 8
	payload := mqtt.MaxPayload
	topic := mqtt.EventsTopic(f.dev.Address)
	before := testnode.HeapInUse()
	done := make(chan error, conns)
	for i := 0; i < conns; i++ {
		c := raw(t, f.s.Addr(), connectPacket(t, fmt.Sprintf("big-%d", i), user, pass))
		go func() {
			if err := connack(c); err != nil {
				done <- err
				return
			}
			// The payload all but its last byte.
			head := publishHead(topic, payload)
			c.SetWriteDeadline(time.Now().Add(3 * time.Second))
			_, err := c.Write(head)
			chunk := make([]byte, 1<<20)
			for left := payload - 1; left > 0 && err == nil; left -= len(chunk) {
				_, err = c.Write(chunk[:min(left, len(chunk))])
			}
			done <- err // nil, or the write deadline while the broker does not read
		}()
	}
	for i := 0; i < conns; i++ {
		if err := <-done; err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	grown := int64(testnode.HeapInUse()) - int64(before)
	t.Logf("heap in use grew by %d MiB with %d publishes of %d MiB waiting", grown>>20, conns, payload>>20)
	if limit := int64(mqtt.PacketMemoryPerAddress) + 16<<20; grown > limit {
		t.Fatalf("the heap grew by %d MiB, over the %d MiB one address may hold (and 16 MiB of slack)", grown>>20, limit>>20)
	}
}

// connectPacket returns an MQTT 3.1.1 CONNECT of a client logging in as user (keep-alive 60 s).
func connectPacket(t *testing.T, id, user, pass string) []byte {
	t.Helper()
	var b bytes.Buffer
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60, ClientIdentifier: id,
			UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(pass)}}
	if err := pk.ConnectEncode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// connack reads a CONNACK from c and fails unless it accepts the login.
func connack(c net.Conn) error {
	ack := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		return fmt.Errorf("CONNACK % x: %v", ack, err)
	}
	c.SetReadDeadline(time.Time{})
	return nil
}

// publishHead returns the fixed header, topic and packet id of a QoS 1 PUBLISH of a payload of n bytes.
func publishHead(topic string, n int) []byte {
	rest := 2 + len(topic) + 2 + n
	head := []byte{0x32}
	for ; ; rest >>= 7 {
		if rest < 0x80 {
			head = append(head, byte(rest))
			break
		}
		head = append(head, byte(rest&0x7f)|0x80)
	}
	head = append(head, byte(len(topic)>>8), byte(len(topic)))
	head = append(head, topic...)
	return append(head, 0, 1)
}

// TestMQTTALargePacketMustArriveInTime: a connection that announces a large publish (its memory taken)
// must keep sending it at MinPacketRate once the connect timeout has passed, or it is closed: one that
// stops, and one that trickles a byte at a time (with a deadline for the whole packet only, a 16 MiB
// publish had 64 s at the least). Its keep-alive (60 s) alone would have let it hold the share for 90 s,
// and one of 0 for ever. A small publish that stops is left to the keep-alive.
func TestMQTTALargePacketMustArriveInTime(t *testing.T) {
	f := guardedFixture(t, 0, 300*time.Millisecond)
	user, pass := login(t, f, f.dev)
	// publishing logs a connection in as name and sends the header of a publish of n bytes, and more.
	publishing := func(name string, n int, more []byte) net.Conn {
		c := raw(t, f.s.Addr(), connectPacket(t, name, user, pass))
		if err := connack(c); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(append(publishHead(mqtt.EventsTopic(f.dev.Address), n), more...)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := publishing("slow", 100<<10, make([]byte, 10<<10)); !closedWithin(t, c, 5*time.Second) {
		t.Fatal("a large publish that stopped arriving kept its connection")
	}
	tr := publishing("trickle", 16<<20, nil)
	go func() {
		for {
			time.Sleep(50 * time.Millisecond)
			if _, err := tr.Write([]byte{' '}); err != nil {
				return
			}
		}
	}()
	if !closedWithin(t, tr, 5*time.Second) {
		t.Fatal("a large publish trickling a byte at a time kept its connection")
	}
	if s := publishing("slow-small", 10<<10, nil); closedWithin(t, s, time.Second) {
		t.Fatal("a small publish was cut off before its keep-alive")
	}
}
