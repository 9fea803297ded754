package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/sync/semaphore"

	"github.com/glovebox/glovebox/internal/connlimit"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// DefaultAddr is the broker's default listen address.
const DefaultAddr = "127.0.0.1:1883"

// DefaultMaxConns is the cap on all the broker's connections that `glovebox serve` starts with
// (--mqtt-max-conns): room for a fleet of 10,000 devices and their reconnections; about 740 MB of the
// node's memory when all of them publish (docs/api.md).
const DefaultMaxConns = 16384

// Limits of one message, the same as POST /v1/events.
const (
	MaxBatch   = 1000     // records in one message
	MaxPayload = 16 << 20 // bytes of one message's payload
)

// MessageBytesInFlight bounds the payload bytes of the messages the broker works on at once (their
// records parsed, verified, waiting to be durable), as api.BodyBytesInFlight bounds the bodies of POST
// /v1/events: a message over it waits, read, until earlier ones are acknowledged (one larger than the
// bound waits for all of it). Each connection has one message at a time; without this bound 128 devices
// publishing at once had 12,800 records in the works.
const MessageBytesInFlight = 4 << 20

// readBuffer is the size of each connection's read buffer (the broker's default: 2 KiB).
const readBuffer = 512

// maxPacket bounds a whole MQTT packet: the payload plus room for the topic and properties.
const maxPacket = MaxPayload + 64<<10

// Config configures a Server.
type Config struct {
	Addr     string                // listen address, e.g. "127.0.0.1:1883" (":0" picks a port); default DefaultAddr
	Ingester *telemetry.Ingester   // verifies and durably stores records
	State    telemetry.StateReader // the ledger state (ledger.Sequencer.Read), to check that a device is registered
	Origin   string                // the log's origin line, which login tokens name
	Logger   *slog.Logger          // default slog.Default()
	Now      func() time.Time      // the node's clock, for login tokens; default time.Now
	// MaxConnsPerAddress bounds the connections one client address (an IPv4 address, or an IPv6 /64)
	// holds open at once, logged in or not; a connection over it is closed at once. 0: no cap.
	MaxConnsPerAddress int
	// MaxConns bounds the connections of all clients together, logged in or not; a connection over it is
	// closed at once. 0: no cap. Each holds about 45 KB of the node's memory while its device publishes
	// (docs/api.md).
	MaxConns int
	// MemoryPerAddress bounds the bytes of large packets one client address holds of PacketMemory at once;
	// 0 means PacketMemoryPerAddress, < 0 no share per address (only the whole bound).
	MemoryPerAddress int64
	// ConnectTimeout bounds the time from a connection's accept to its CONNECT read whole; default
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
}

// Server is the MQTT broker for device telemetry.
type Server struct {
	cfg      Config
	broker   *mochi.Server
	listener *listeners.Net
	ln       *guardedListener // the listener under it
	ctx      context.Context  // cancelled by Close: ingests not yet queued give up
	cancel   context.CancelFunc
	sessions sync.Map            // *mochi.Client → *session, for logged-in clients
	work     *semaphore.Weighted // MessageBytesInFlight

	mu      sync.Mutex
	serving bool
	closed  bool
	done    chan struct{}
}

// session is what the broker knows of a logged-in connection.
type session struct {
	device  common.Address
	expires int64 // unix seconds, the login token's expiry
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("mqtt: server closed")

// New returns a broker listening on cfg.Addr; Serve accepts connections.
func New(cfg Config) (*Server, error) {
	if cfg.Ingester == nil || cfg.State == nil {
		return nil, errors.New("mqtt: no ingester or ledger state")
	}
	if cfg.Origin == "" {
		return nil, errors.New("mqtt: no log origin")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	caps := mochi.NewDefaultServerCapabilities()
	caps.MinimumProtocolVersion = 4 // MQTT 3.1.1 and 5
	caps.MaximumPacketSize = maxPacket
	caps.MaximumClientWritesPending = 64 // only results and acks go out
	caps.MaximumSessionExpiryInterval = 3600
	caps.MaximumMessageExpiryInterval = 3600
	caps.TopicAliasMaximum = 0 // an alias would dodge the topic check
	caps.RetainAvailable = 0
	caps.WildcardSubAvailable = 0
	caps.SharedSubAvailable = 0
	s := &Server{cfg: cfg, done: make(chan struct{}), work: semaphore.NewWeighted(MessageBytesInFlight)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.broker = mochi.New(&mochi.Options{
		Capabilities:           caps,
		Logger:                 slog.New(&brokerLog{cfg.Logger.Handler()}),
		SysTopicResendInterval: 24 * 3600, // nobody may read $SYS; don't bother computing it
		// A connection's read buffer serves fixed headers and small packets; a packet's body larger than
		// the buffer is read straight into the packet. The default, 2 KiB, is per connection.
		ClientNetReadBufferSize: readBuffer,
	})
	if err := s.broker.AddHook(&hook{s: s}, nil); err != nil {
		s.cancel()
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	share := cfg.MemoryPerAddress
	if share == 0 {
		share = PacketMemoryPerAddress
	}
	ln, err := listen(cfg.Addr, connlimit.Caps{PerAddress: cfg.MaxConnsPerAddress, Total: cfg.MaxConns}, share, cfg.ConnectTimeout)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.ln = ln
	s.listener = listeners.NewNet("glovebox", ln)
	if err := s.broker.AddListener(s.listener); err != nil {
		s.cancel()
		ln.Close()
		return nil, fmt.Errorf("mqtt: couldn't listen on %s: %w", cfg.Addr, err)
	}
	return s, nil
}

// Addr returns the address the broker listens on.
func (s *Server) Addr() string { return s.listener.Address() }

// Serve accepts connections until Close; it returns nil after Close.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("mqtt: Serve called twice")
	}
	s.serving = true
	err := s.broker.Serve()
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	<-s.done
	return nil
}

// Close stops accepting connections, disconnects every client and returns when no message is being
// handled any more. Call it before the ingester stops.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	s.ln.stop(5 * time.Second)
	err := s.broker.Close()
	close(s.done)
	return err
}

func (s *Server) session(cl *mochi.Client) *session {
	v, ok := s.sessions.Load(cl)
	if !ok {
		return nil
	}
	return v.(*session)
}

// disconnect closes a client's connection, with a DISCONNECT reason on MQTT 5 (3.1.1 has no server
// DISCONNECT).
func (s *Server) disconnect(cl *mochi.Client, code packets.Code) {
	if cl.Properties.ProtocolVersion == 5 {
		_ = s.broker.DisconnectClient(cl, code)
		return
	}
	cl.Stop(code)
}

// hook is the broker's glovebox behaviour: login, topic rules and ingest.
type hook struct {
	mochi.HookBase
	s *Server
}

func (h *hook) ID() string { return "glovebox" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mochi.OnConnect, mochi.OnConnectAuthenticate, mochi.OnDisconnect, mochi.OnClientExpired, mochi.OnACLCheck,
		mochi.OnPublish, mochi.OnPacketEncode:
		return true
	}
	return false
}

// OnConnect refuses wills: the broker would publish them without the topic checks.
func (h *hook) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	if pk.Connect.WillFlag {
		code := packets.ErrNotAuthorized
		if cl.Properties.ProtocolVersion < 5 {
			code = packets.Err3NotAuthorized // mochi passes codes it doesn't map to 3.1.1 through as they are
		}
		_ = h.s.broker.SendConnack(cl, code, false, nil)
		return packets.ErrNotAuthorized
	}
	return nil
}

// OnConnectAuthenticate checks the login token and that the device is registered.
func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	login, err := CheckLogin(string(pk.Connect.Username), pk.Connect.Password, h.s.cfg.Origin, h.s.cfg.Now())
	if err == nil {
		var registered bool
		h.s.cfg.State(func(st *ledger.State) { _, registered = st.Device(login.Device) })
		if !registered {
			err = errors.New("no such device in the ledger")
		}
	}
	if err != nil {
		h.s.cfg.Logger.Debug("mqtt login refused", "username", string(pk.Connect.Username), "remote", cl.Net.Remote, "err", err)
		return false
	}
	// Client ids are per device, so that one device can't take over another's session.
	cl.ID = strings.ToLower(login.Device.Hex()) + "/" + cl.ID
	h.s.sessions.Store(cl, &session{device: login.Device, expires: login.Expires})
	return true
}

func (h *hook) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	h.s.sessions.Delete(cl)
}

// OnClientExpired forgets clients whose connection ended without OnDisconnect (a failed CONNACK write).
func (h *hook) OnClientExpired(cl *mochi.Client) {
	h.s.sessions.Delete(cl)
}

// OnACLCheck lets a device publish to its events topic and subscribe to (and receive) its results topic.
func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	sess := h.s.session(cl)
	if sess == nil {
		return false
	}
	dev, kind, err := ParseTopic(topic)
	if err != nil || dev != sess.device {
		return false
	}
	if write {
		return kind == KindEvents
	}
	return kind == KindResults
}

// OnPacketEncode tells MQTT 5 clients in the CONNACK what the broker does not take.
func (h *hook) OnPacketEncode(cl *mochi.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == 0 && cl.Properties.ProtocolVersion == 5 {
		pk.Properties.RetainAvailable, pk.Properties.RetainAvailableFlag = 0, true
		pk.Properties.WildcardSubAvailable, pk.Properties.WildcardSubAvailableFlag = 0, true
		pk.Properties.SharedSubAvailable, pk.Properties.SharedSubAvailableFlag = 0, true
		pk.Properties.MaximumPacketSize = maxPacket
	}
	return pk
}

// OnPublish ingests a device's message. It runs on the client's read loop before the broker writes the
// PUBACK (QoS 1) or PUBREC (QoS 2), and returns only once the accepted records are durable. Its error
// tells the broker what to do: CodeSuccessIgnore acknowledges normally without routing the message to
// subscribers, a packets.Code acknowledges with that reason (MQTT 5, QoS 1), ErrRejectPacket sends
// nothing.
func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	s := h.s
	sess := s.session(cl)
	if sess == nil {
		s.disconnect(cl, packets.ErrNotAuthorized)
		return pk, packets.ErrRejectPacket
	}
	if s.cfg.Now().Unix() >= sess.expires {
		s.disconnect(cl, packets.Code{Code: packets.ErrMaxConnectTime.Code, Reason: "the login token expired; log in again"})
		return pk, packets.ErrRejectPacket
	}
	if pk.FixedHeader.Retain {
		s.disconnect(cl, packets.ErrRetainNotSupported)
		return pk, packets.ErrRejectPacket
	}
	if dev, kind, err := ParseTopic(pk.TopicName); err != nil || kind != KindEvents || dev != sess.device {
		// The ACL check refused this already; never ingest under another device's topic.
		s.disconnect(cl, packets.ErrNotAuthorized)
		return pk, packets.ErrRejectPacket
	}
	out := s.ingest(pk.Payload)
	if out.unavailable && pk.FixedHeader.Qos > 0 {
		s.cfg.Logger.Warn("mqtt: couldn't store records; closing the connection without acknowledgement",
			"device", sess.device.Hex(), "client", cl.ID)
		code := packets.Code{Code: packets.ErrUnspecifiedError.Code, Reason: "the node couldn't store the records; publish them again"}
		if s.ctx.Err() != nil {
			code = packets.ErrServerShuttingDown
		}
		s.disconnect(cl, code)
		return pk, packets.ErrRejectPacket
	}
	s.sendResults(cl, sess, pk, out.body)
	if out.refusal != nil && pk.FixedHeader.Qos == 1 && cl.Properties.ProtocolVersion == 5 {
		return pk, *out.refusal
	}
	return pk, packets.CodeSuccessIgnore
}

// ingested is the outcome of one message.
type ingested struct {
	body        []byte        // the results message
	refusal     *packets.Code // set when nothing in the message was accepted
	unavailable bool          // some records could not be stored
}

// errorBody is the results message for a payload refused as a whole, shaped like the REST API's errors.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func wholeRefusal(code, msg string) ingested {
	var e errorBody
	e.Error.Code, e.Error.Message = code, msg
	b, _ := json.Marshal(e)
	return ingested{body: b, refusal: &packets.Code{Code: packets.ErrPayloadFormatInvalid.Code, Reason: code + ": " + msg}}
}

func (s *Server) ingest(payload []byte) ingested {
	if len(payload) > MaxPayload {
		return wholeRefusal("too_large", fmt.Sprintf("the payload is larger than %d bytes", MaxPayload))
	}
	w := min(max(int64(len(payload)), 1), MessageBytesInFlight)
	if err := s.work.Acquire(s.ctx, w); err != nil { // the broker is closing
		out := wholeRefusal("unavailable", "the node is shutting down; publish the records again")
		out.refusal, out.unavailable = nil, true
		return out
	}
	defer s.work.Release(w)
	subs, single, err := telemetry.ParseSubmissions(payload, MaxBatch)
	if err != nil {
		code := "malformed"
		if errors.Is(err, telemetry.ErrTooMany) {
			code = "too_large"
		}
		return wholeRefusal(code, err.Error())
	}
	results := s.cfg.Ingester.Ingest(s.ctx, subs)
	var out ingested
	var refused, format, auth int
	counts := map[telemetry.Status]int{}
	for _, r := range results {
		counts[r.Status]++
		switch r.Status {
		case telemetry.StatusAccepted, telemetry.StatusDuplicate:
			continue
		case telemetry.StatusUnavailable:
			out.unavailable = true
		case telemetry.StatusMalformed, telemetry.StatusUnknownSignal, telemetry.StatusUnknownEvent, telemetry.StatusBadValue:
			format++
		case telemetry.StatusBadSignature, telemetry.StatusNotPaired:
			auth++
		}
		refused++
	}
	if single {
		out.body, err = json.Marshal(results[0])
	} else {
		out.body, err = json.Marshal(results)
	}
	if err != nil { // can't happen: results are plain strings
		out.body = []byte("[]")
	}
	if len(results) > 0 && refused == len(results) && !out.unavailable {
		code := packets.ErrImplementationSpecificError.Code
		switch {
		case format > 0:
			code = packets.ErrPayloadFormatInvalid.Code
		case auth > 0:
			code = packets.ErrNotAuthorized.Code
		}
		var parts []string
		for _, d := range telemetry.StatusDescriptions {
			if n := counts[d.Status]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, d.Status))
			}
		}
		out.refusal = &packets.Code{Code: code, Reason: "no record accepted: " + strings.Join(parts, ", ")}
	}
	return out
}

// sendResults writes the results message to the publishing connection, if it subscribed to its results
// topic. It is written directly (not routed), before the acknowledgement, so that a device has its
// results when it has its PUBACK and no other connection sees them.
func (s *Server) sendResults(cl *mochi.Client, sess *session, pk packets.Packet, body []byte) {
	var topic string
	for filter := range cl.State.Subscriptions.GetAll() {
		if dev, kind, err := ParseTopic(filter); err == nil && kind == KindResults && dev == sess.device {
			topic = filter
			break
		}
	}
	if topic == "" {
		return
	}
	res := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish},
		TopicName:   topic,
		Payload:     body,
		Properties:  packets.Properties{ContentType: "application/json", CorrelationData: pk.Properties.CorrelationData},
		Created:     time.Now().Unix(),
	}
	if err := cl.WritePacket(res); err != nil {
		s.cfg.Logger.Debug("mqtt: couldn't send results", "client", cl.ID, "err", err)
	}
}
