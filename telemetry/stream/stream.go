// Package stream carries verified telemetry records through a NATS JetStream stream, for deployments with
// many ingest processes (docs/scale.md): a Publisher is the telemetry.Store of an ingest process (it
// answers a device only after the stream acknowledged its records), and a Writer consumes the stream in
// batches into the database. The stream keeps records for a while after they are written, so that live
// subscriptions can read it too.
//
// Exactly-once effect: each record is published with the message id "<source>/<id>", so JetStream drops a
// copy published again within its duplicate window, and the database store is idempotent on (source, id)
// for anything delivered twice (a writer that died before acknowledging, a device that resent later).
//
// It imports only telemetry (and NATS): no store imports it; the PostgreSQL store and it share
// telemetry.RecordKey.
package stream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/glovebox/glovebox/telemetry"
)

// Defaults of the stream and its consumer.
const (
	DefaultStream     = "GLOVEBOX_RECORDS"
	DefaultSubject    = "glovebox.records" // messages go to DefaultSubject.<vehicle id>
	DefaultConsumer   = "writers"
	DefaultDuplicates = 10 * time.Minute // JetStream's duplicate window
	DefaultMaxAge     = 24 * time.Hour   // how long the stream keeps records, for live subscriptions
)

// Config names the stream. The zero value of each field picks its Default.
type Config struct {
	Stream   string
	Subject  string
	Replicas int // 1 for a single server; 3 in a cluster
	MaxAge   time.Duration
}

func (c *Config) defaults() {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
}

// Setup creates the stream (or updates its configuration) and returns it.
func Setup(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	cfg.defaults()
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Stream, Subjects: []string{cfg.Subject + ".>"}, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		Retention: jetstream.LimitsPolicy, MaxAge: cfg.MaxAge, Duplicates: DefaultDuplicates,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't set up the stream %s: %w", cfg.Stream, err)
	}
	return s, nil
}

// message is a record on the stream: what the database needs besides the event itself, which is parsed
// again by the writer (its signature was checked at ingest).
type message struct {
	Event     string `json:"event"`
	Signature string `json:"signature"`
	Received  int64  `json:"received"`
	Pairing   int64  `json:"pairing"`
}

// MsgID is the JetStream message id of a record: its source (lower-case hex) and id.
func MsgID(source common.Address, id string) string {
	return strings.ToLower(source.Hex()) + "/" + id
}

// Lookup returns the SHA-256 digests of the event bytes of those keys that are already stored.
// (*postgres.Telemetry).Stored has it.
type Lookup func(ctx context.Context, keys []telemetry.RecordKey) (map[telemetry.RecordKey][32]byte, error)

// Publisher implements telemetry.Store by publishing to the stream: Write returns once JetStream has
// acknowledged every new record (stored as the stream's storage and replication make durable).
type Publisher struct {
	js      jetstream.JetStream
	subject string
	stored  Lookup
}

var _ telemetry.Store = (*Publisher)(nil)

// NewPublisher returns a publisher to the stream of cfg (which Setup created). stored, if not nil, is
// asked which records are already in the database, so that a device resending a record long after the
// duplicate window gets duplicate (or conflict), not a second acceptance.
func NewPublisher(js jetstream.JetStream, cfg Config, stored Lookup) *Publisher {
	cfg.defaults()
	return &Publisher{js: js, subject: cfg.Subject, stored: stored}
}

// Write implements telemetry.Store. A record whose key is in the database or was published within the
// duplicate window is a duplicate (or, for different bytes, a conflict when the database has it); the
// one caveat is that a record with the key of one published moments ago but not yet written, and other
// bytes, is answered duplicate rather than conflict (it is not stored either way).
func (p *Publisher) Write(ctx context.Context, recs []*telemetry.Record) ([]telemetry.Status, error) {
	out := make([]telemetry.Status, len(recs))
	first := make(map[telemetry.RecordKey]int, len(recs))
	var keys []telemetry.RecordKey
	for i, r := range recs {
		k := telemetry.RecordKey{Source: r.Source, ID: r.ID}
		if _, ok := first[k]; !ok {
			first[k] = i
			keys = append(keys, k)
		}
	}
	var stored map[telemetry.RecordKey][32]byte
	if p.stored != nil && len(keys) > 0 {
		var err error
		if stored, err = p.stored(ctx, keys); err != nil {
			return nil, fmt.Errorf("couldn't look up stored records: %w", err)
		}
	}
	futures := make(map[int]jetstream.PubAckFuture, len(keys))
	for _, k := range keys {
		i := first[k]
		r := recs[i]
		if d, ok := stored[k]; ok {
			if d == sha256.Sum256(r.Event) {
				out[i] = telemetry.StatusDuplicate
			} else {
				out[i] = telemetry.StatusConflict
			}
			continue
		}
		body, err := json.Marshal(message{Event: string(r.Event), Signature: "0x" + common.Bytes2Hex(r.Signature[:]),
			Received: r.Received, Pairing: r.Pairing.FromIndex})
		if err != nil {
			return nil, err
		}
		msg := &nats.Msg{Subject: p.subject + "." + strconv.FormatUint(r.VehicleID, 10), Data: body}
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(MsgID(r.Source, r.ID)))
		if err != nil {
			return nil, fmt.Errorf("couldn't publish a record: %w", err)
		}
		futures[i] = f
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				out[i] = telemetry.StatusDuplicate
			} else {
				out[i] = telemetry.StatusAccepted
			}
		case err := <-f.Err():
			return nil, fmt.Errorf("the stream did not acknowledge a record: %w", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for i, r := range recs {
		k := telemetry.RecordKey{Source: r.Source, ID: r.ID}
		if j := first[k]; j != i {
			if bytes.Equal(recs[j].Event, r.Event) && out[j] != telemetry.StatusConflict {
				out[i] = telemetry.StatusDuplicate
			} else {
				out[i] = telemetry.StatusConflict
			}
		}
	}
	return out, nil
}

// Writer moves records from the stream into a store in batches, acknowledging each message only after
// the batch holding it is committed. Several writers (in several processes) share one durable consumer,
// each message going to one of them; a message not acknowledged in time is delivered again, and the
// store's idempotence on (source, id) makes that harmless.
type Writer struct {
	cons   jetstream.Consumer
	store  telemetry.Store
	cat    *telemetry.Catalog
	logger *slog.Logger
	batch  int
}

// AckWait is how long a message fetched by a writer waits for its acknowledgement before JetStream
// delivers it again (to any writer): the time a dead writer's batch takes to be written by another.
const AckWait = 10 * time.Second

// WriterBatch is the most messages a writer commits in one transaction.
const WriterBatch = 2000

// NewWriter returns a writer of the stream of cfg into store, creating the shared durable consumer.
func NewWriter(ctx context.Context, js jetstream.JetStream, cfg Config, store telemetry.Store, cat *telemetry.Catalog, logger *slog.Logger) (*Writer, error) {
	cfg.defaults()
	if logger == nil {
		logger = slog.Default()
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable: DefaultConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: AckWait,
		MaxAckPending: 4 * WriterBatch * 4, MaxRequestBatch: WriterBatch,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't set up the writers' consumer: %w", err)
	}
	return &Writer{cons: cons, store: store, cat: cat, logger: logger, batch: WriterBatch}, nil
}

// Run writes batches until ctx is done. A failed batch is not acknowledged: it is delivered again.
func (w *Writer) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := w.Once(ctx, 250*time.Millisecond)
		if err != nil && ctx.Err() == nil {
			w.logger.Error("couldn't write a batch of records from the stream", "records", n, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// Once fetches up to one batch (waiting at most wait for the first message), writes it and acknowledges
// it; it returns how many messages it handled.
func (w *Writer) Once(ctx context.Context, wait time.Duration) (int, error) {
	batch, err := w.cons.Fetch(w.batch, jetstream.FetchMaxWait(wait))
	if err != nil {
		return 0, fmt.Errorf("couldn't fetch from the stream: %w", err)
	}
	var msgs []jetstream.Msg
	var recs []*telemetry.Record
	for m := range batch.Messages() {
		r, err := w.decode(m.Data())
		if err != nil {
			// Only this node's ingest publishes here: a message that does not decode is a bug, kept out of
			// the way rather than retried forever.
			w.logger.Error("dropping an undecodable record from the stream", "err", err)
			m.Term()
			continue
		}
		msgs, recs = append(msgs, m), append(recs, r)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
		w.nakAll(msgs)
		return len(msgs), fmt.Errorf("fetching from the stream: %w", err)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	if _, err := w.store.Write(ctx, recs); err != nil {
		w.nakAll(msgs)
		return len(msgs), err
	}
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			// Delivered again later and found stored: harmless.
			w.logger.Warn("couldn't acknowledge a written record", "err", err)
		}
	}
	return len(msgs), nil
}

func (w *Writer) nakAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		m.NakWithDelay(time.Second)
	}
}

func (w *Writer) decode(data []byte) (*telemetry.Record, error) {
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	sig := common.FromHex(m.Signature)
	if len(sig) != 65 {
		return nil, fmt.Errorf("signature of %d bytes", len(sig))
	}
	// Verified at ingest: parsed here for the derived values only; the clock is not checked again.
	r, err := w.cat.ParseStored([]byte(m.Event))
	if err != nil {
		return nil, err
	}
	copy(r.Signature[:], sig)
	r.Received, r.Pairing.FromIndex = m.Received, m.Pairing
	return r, nil
}
