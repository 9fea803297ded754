package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/telemetry"
)

// PublisherOptions configures a Publisher.
type PublisherOptions struct {
	Addr     string            // the node's MQTT address, host:port
	Key      *ecdsa.PrivateKey // the device key: it logs in and owns the topics
	Origin   string            // the node's log origin (GET /v1/node), which login tokens name
	Version  int               // 5 (MQTT 5, the default) or 4 (MQTT 3.1.1)
	ClientID string            // default a random one
	TokenTTL time.Duration     // lifetime of each login token; default 1h, 5m to 24h
}

// RefusedError is an MQTT 5 PUBACK with an error reason: the node received the message but accepted
// none of its records (PublishAndWait's results say why, record by record).
type RefusedError struct {
	Code   byte
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the node refused every record (reason 0x%02x): %s", e.Code, e.Reason)
}

// ResultsError is a message refused as a whole (not an envelope or an array of at most MaxBatch).
type ResultsError struct {
	Code    string
	Message string
}

func (e *ResultsError) Error() string { return e.Code + ": " + e.Message }

// Publisher publishes a device's signed records over MQTT with QoS 1, one message at a time, and reads
// their results from the device's results topic. It connects lazily, with a fresh login token whenever
// it (re)connects, and reconnects on the next call after the connection was lost or its token expired.
// Its methods may be called from several goroutines; messages go out one after the other.
type Publisher struct {
	opts   PublisherOptions
	device common.Address

	mu sync.Mutex // one message at a time; guards l and closed
	l  *link
	// closed is set by Close.
	closed bool
}

// NewPublisher returns a publisher for the device of opts.Key; it connects on first use (or Connect).
func NewPublisher(opts PublisherOptions) (*Publisher, error) {
	opts.Addr = trimScheme(opts.Addr)
	if opts.Key == nil || opts.Addr == "" || opts.Origin == "" {
		return nil, errors.New("mqtt: a publisher needs Addr, Key and Origin")
	}
	switch opts.Version {
	case 0:
		opts.Version = 5
	case 4, 5:
	default:
		return nil, fmt.Errorf("mqtt: protocol version %d: want 4 (MQTT 3.1.1) or 5", opts.Version)
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.TokenTTL < 5*time.Minute || opts.TokenTTL > MaxTokenTTL {
		return nil, fmt.Errorf("mqtt: TokenTTL %s: want 5m to %s", opts.TokenTTL, MaxTokenTTL)
	}
	if opts.ClientID == "" {
		var b [8]byte
		rand.Read(b[:])
		opts.ClientID = "glovebox-" + hex.EncodeToString(b[:])
	}
	return &Publisher{opts: opts, device: crypto.PubkeyToAddress(opts.Key.PublicKey)}, nil
}

// Device returns the publishing device's address.
func (p *Publisher) Device() common.Address { return p.device }

// Connect connects now rather than on the first publish (a no-op when connected).
func (p *Publisher) Connect(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.link(ctx)
	return err
}

// Publish publishes the records as one message (an array) and returns once the node acknowledged it,
// that is once every record that verified is durable. On MQTT 5 it returns a *RefusedError when the node
// accepted none of the records; MQTT 3.1.1 has no way to say so (use PublishAndWait).
func (p *Publisher) Publish(ctx context.Context, subs []telemetry.Submission) error {
	_, err := p.publish(ctx, subs, false)
	return err
}

// PublishAndWait publishes the records as one message and returns their results, in order, as POST
// /v1/events would. A message refused as a whole gives a *ResultsError.
func (p *Publisher) PublishAndWait(ctx context.Context, subs []telemetry.Submission) ([]telemetry.Result, error) {
	return p.publish(ctx, subs, true)
}

// Close disconnects.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.l != nil {
		p.l.c.close()
		p.l = nil
	}
	return nil
}

func (p *Publisher) publish(ctx context.Context, subs []telemetry.Submission, wait bool) ([]telemetry.Result, error) {
	if subs == nil {
		subs = []telemetry.Submission{}
	}
	payload, err := json.Marshal(subs)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	l, err := p.link(ctx)
	if err != nil {
		return nil, err
	}
	n, ch := l.next(wait)
	refusal, err := l.c.publish(ctx, EventsTopic(p.device), payload)
	if err != nil {
		// Whether the message went out is unknown, and with it which results message is whose: start
		// afresh on the next call.
		p.drop()
		return nil, err
	}
	if !wait {
		if refusal != nil {
			return nil, refusal
		}
		return nil, nil
	}
	// The node writes the results before the acknowledgement, so they are (nearly always) here already.
	select {
	case b := <-ch:
		return parseResults(b, subs)
	case <-l.c.lost():
		select {
		case b := <-ch:
			return parseResults(b, subs)
		default:
		}
		p.drop()
		return nil, errors.New("mqtt: connection lost before the results arrived")
	case <-ctx.Done():
		l.forget(n)
		return nil, ctx.Err()
	}
}

// parseResults decodes a results message and checks that it answers subs: one result per record, with
// the record's id where the node could read it.
func parseResults(b []byte, subs []telemetry.Submission) ([]telemetry.Result, error) {
	var e errorBody
	if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
		return nil, &ResultsError{e.Error.Code, e.Error.Message}
	}
	var rs []telemetry.Result
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("mqtt: bad results message: %w", err)
	}
	if len(rs) != len(subs) {
		return nil, fmt.Errorf("mqtt: %d results for %d records", len(rs), len(subs))
	}
	for i, r := range rs {
		var ev struct {
			ID string `json:"id"`
		}
		if r.ID != "" && json.Unmarshal(subs[i].Event, &ev) == nil && ev.ID != r.ID {
			return nil, fmt.Errorf("mqtt: result %d is for record %q, not %q", i, r.ID, ev.ID)
		}
	}
	return rs, nil
}

// link returns the live connection, connecting (again) when there is none, it was lost, or its token
// is about to expire. p.mu is held.
func (p *Publisher) link(ctx context.Context) (*link, error) {
	if p.closed {
		return nil, errors.New("mqtt: publisher closed")
	}
	if p.l != nil {
		select {
		case <-p.l.c.lost():
			p.drop()
		default:
			if time.Until(p.l.expires) < time.Minute {
				p.drop()
			}
		}
	}
	if p.l != nil {
		return p.l, nil
	}
	expires := time.Now().Add(p.opts.TokenTTL)
	user, pass, err := LoginToken(p.opts.Key, p.opts.Origin, expires)
	if err != nil {
		return nil, err
	}
	l := &link{expires: expires, waiters: map[int64]chan []byte{}}
	if p.opts.Version == 4 {
		l.c, err = dial3(ctx, p.opts, user, pass, ResultsTopic(p.device), l.onResults)
	} else {
		l.c, err = dial5(ctx, p.opts, user, pass, ResultsTopic(p.device), l.onResults)
	}
	if err != nil {
		return nil, err
	}
	p.l = l
	return l, nil
}

func (p *Publisher) drop() {
	if p.l != nil {
		p.l.c.close()
		p.l = nil
	}
}

// link is one connection. The node sends exactly one results message per publish, in order, to the
// connection that published; so the k-th results message answers the k-th publish.
type link struct {
	c       conn
	expires time.Time

	mu         sync.Mutex
	sent, recv int64
	waiters    map[int64]chan []byte
}

func (l *link) next(wait bool) (int64, chan []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	if !wait {
		return l.sent, nil
	}
	ch := make(chan []byte, 1)
	l.waiters[l.sent] = ch
	return l.sent, ch
}

func (l *link) forget(n int64) {
	l.mu.Lock()
	delete(l.waiters, n)
	l.mu.Unlock()
}

func (l *link) onResults(b []byte) {
	l.mu.Lock()
	l.recv++
	ch := l.waiters[l.recv]
	delete(l.waiters, l.recv)
	l.mu.Unlock()
	if ch != nil {
		ch <- b
	}
}

// conn is an MQTT client connection of either protocol version.
type conn interface {
	// publish publishes with QoS 1 and waits for the PUBACK; refusal is an MQTT 5 error reason.
	publish(ctx context.Context, topic string, payload []byte) (refusal *RefusedError, err error)
	lost() <-chan struct{} // closed when the connection is gone
	close()
}

// ---- MQTT 3.1.1 (paho.mqtt.golang) ----

type conn3 struct {
	c    paho3.Client
	gone chan struct{}
	once sync.Once
}

func (c *conn3) setLost() { c.once.Do(func() { close(c.gone) }) }

func wait3(ctx context.Context, t paho3.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func dial3(ctx context.Context, opts PublisherOptions, user, pass, results string, onResults func([]byte)) (conn, error) {
	c := &conn3{gone: make(chan struct{})}
	o := paho3.NewClientOptions().AddBroker("tcp://" + opts.Addr).SetClientID(opts.ClientID).
		SetUsername(user).SetPassword(pass).SetProtocolVersion(4).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(true).SetKeepAlive(30 * time.Second).
		SetConnectTimeout(30 * time.Second).
		SetConnectionLostHandler(func(paho3.Client, error) { c.setLost() })
	c.c = paho3.NewClient(o)
	if err := wait3(ctx, c.c.Connect()); err != nil {
		c.close()
		return nil, fmt.Errorf("mqtt: couldn't connect to %s: %w", opts.Addr, err)
	}
	t := c.c.Subscribe(results, 0, func(_ paho3.Client, m paho3.Message) { onResults(m.Payload()) })
	if err := wait3(ctx, t); err != nil {
		c.close()
		return nil, fmt.Errorf("mqtt: couldn't subscribe to %s: %w", results, err)
	}
	if code := t.(*paho3.SubscribeToken).Result()[results]; code >= 0x80 {
		c.close()
		return nil, fmt.Errorf("mqtt: the node refused the subscription to %s", results)
	}
	return c, nil
}

func (c *conn3) publish(ctx context.Context, topic string, payload []byte) (*RefusedError, error) {
	t := c.c.Publish(topic, 1, false, payload)
	select {
	case <-t.Done():
		return nil, t.Error()
	case <-c.gone:
		select {
		case <-t.Done():
			return nil, t.Error()
		default:
		}
		return nil, errors.New("mqtt: connection lost before the PUBACK")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *conn3) lost() <-chan struct{} { return c.gone }

func (c *conn3) close() {
	c.c.Disconnect(100)
	c.setLost()
}

// ---- MQTT 5 (paho.golang) ----

type conn5 struct {
	c    *paho.Client
	gone chan struct{}
	once sync.Once
}

func (c *conn5) setLost() { c.once.Do(func() { close(c.gone) }) }

func dial5(ctx context.Context, opts PublisherOptions, user, pass, results string, onResults func([]byte)) (conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("mqtt: couldn't connect to %s: %w", opts.Addr, err)
	}
	c := &conn5{gone: make(chan struct{})}
	c.c = paho.NewClient(paho.ClientConfig{
		ClientID: opts.ClientID,
		Conn:     nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			if pr.Packet.Topic == results {
				onResults(pr.Packet.Payload)
			}
			return true, nil
		}},
		OnClientError:      func(error) { c.setLost() },
		OnServerDisconnect: func(*paho.Disconnect) { c.setLost() },
		PacketTimeout:      24 * time.Hour, // ctx decides
	})
	ca, err := c.c.Connect(ctx, &paho.Connect{ClientID: opts.ClientID, KeepAlive: 30, CleanStart: true,
		Username: user, UsernameFlag: true, Password: []byte(pass), PasswordFlag: true})
	if err != nil {
		nc.Close()
		if ca != nil {
			return nil, fmt.Errorf("mqtt: the node refused the login (reason 0x%02x): %w", ca.ReasonCode, err)
		}
		return nil, fmt.Errorf("mqtt: couldn't connect to %s: %w", opts.Addr, err)
	}
	go func() {
		<-c.c.Done()
		c.setLost()
	}()
	if _, err := c.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: results, QoS: 0}}}); err != nil {
		c.close()
		return nil, fmt.Errorf("mqtt: couldn't subscribe to %s: %w", results, err)
	}
	return c, nil
}

func (c *conn5) publish(ctx context.Context, topic string, payload []byte) (*RefusedError, error) {
	// paho keeps waiting for the PUBACK of a message in its session after the connection is gone.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.gone:
			cancel()
		case <-pctx.Done():
		}
	}()
	pr, err := c.c.Publish(pctx, &paho.Publish{QoS: 1, Topic: topic, Payload: payload,
		Properties: &paho.PublishProperties{ContentType: "application/json"}})
	if err != nil && ctx.Err() == nil && pctx.Err() != nil {
		return nil, errors.New("mqtt: connection lost before the PUBACK")
	}
	if pr != nil && pr.ReasonCode >= 0x80 {
		e := &RefusedError{Code: pr.ReasonCode}
		if pr.Properties != nil {
			e.Reason = pr.Properties.ReasonString
		}
		return e, nil
	}
	return nil, err
}

func (c *conn5) lost() <-chan struct{} { return c.gone }

func (c *conn5) close() {
	_ = c.c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	c.setLost()
}

// trimScheme drops a tcp:// or mqtt:// prefix from an address.
func trimScheme(addr string) string {
	for _, p := range []string{"tcp://", "mqtt://"} {
		addr = strings.TrimPrefix(addr, p)
	}
	return addr
}
