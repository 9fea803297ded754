package stream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/glovebox/glovebox/internal/pgtest"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/store/storetest"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/stream"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type rig struct {
	js  jetstream.JetStream
	db  *postgres.Telemetry
	pub *stream.Publisher
}

func setup(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Connect(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	srv, err := stream.StartEmbedded(t.TempDir(), "127.0.0.1", -1, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Setup(ctx, js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	db := postgres.NewTelemetry(pool)
	return &rig{js: js, db: db, pub: stream.NewPublisher(js, stream.Config{}, db.Stored)}
}

func (r *rig) writer(t *testing.T, store telemetry.Store) *stream.Writer {
	t.Helper()
	w, err := stream.NewWriter(context.Background(), r.js, stream.Config{}, store, telemetry.DefaultCatalog, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func statuses(t *testing.T, got []telemetry.Status, err error, want ...telemetry.Status) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
}

func drain(t *testing.T, w *stream.Writer) int {
	t.Helper()
	total := 0
	for {
		n, err := w.Once(context.Background(), 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

func TestRecordsAreAcceptedOnTheStreamsAckAndWrittenOnce(t *testing.T) {
	ctx := context.Background()
	r := setup(t)
	src := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	now := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC).UnixMilli()
	a, b := storetest.Record(t, src, "a", now, 10), storetest.Record(t, src, "b", now+1, 20)
	out, err := r.pub.Write(ctx, []*telemetry.Record{a, b, a, storetest.Record(t, src, "a", now, 99)})
	statuses(t, out, err, telemetry.StatusAccepted, telemetry.StatusAccepted, telemetry.StatusDuplicate, telemetry.StatusConflict)
	// Sent again while still only on the stream: JetStream's duplicate window answers.
	out, err = r.pub.Write(ctx, []*telemetry.Record{b})
	statuses(t, out, err, telemetry.StatusDuplicate)
	if n := drain(t, r.writer(t, r.db)); n != 2 {
		t.Fatalf("the writer moved %d messages, want 2", n)
	}
	if n, _ := r.db.CountRecords(ctx); n != 2 {
		t.Fatalf("%d records in the database, want 2", n)
	}
	// Once written, the database answers: duplicate for the same bytes, conflict for others.
	out, err = r.pub.Write(ctx, []*telemetry.Record{a, storetest.Record(t, src, "b", now+1, 21)})
	statuses(t, out, err, telemetry.StatusDuplicate, telemetry.StatusConflict)
}

// failAfterCommit writes through to the database and then reports failure, as a writer does that dies
// between committing a batch and acknowledging its messages.
type failAfterCommit struct {
	telemetry.Store
	fails int
}

func (f *failAfterCommit) Write(ctx context.Context, recs []*telemetry.Record) ([]telemetry.Status, error) {
	out, err := f.Store.Write(ctx, recs)
	if err == nil && f.fails > 0 {
		f.fails--
		return nil, errors.New("injected: lost before the acknowledgement")
	}
	return out, err
}

func TestARecordDeliveredAgainAfterAWriterFailedIsStoredOnce(t *testing.T) {
	ctx := context.Background()
	r := setup(t)
	src := common.HexToAddress("0x00000000000000000000000000000000000000bb")
	now := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC).UnixMilli()
	var recs []*telemetry.Record
	for i := range 50 {
		recs = append(recs, storetest.Record(t, src, fmt.Sprint(i), now+int64(i), float64(i)))
	}
	if _, err := r.pub.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	w := r.writer(t, &failAfterCommit{Store: r.db, fails: 1})
	if _, err := w.Once(ctx, time.Second); err == nil {
		t.Fatal("the injected failure did not surface")
	}
	// The messages come back after the nak delay; everything is delivered again and stored once.
	deadline := time.Now().Add(30 * time.Second)
	moved := 0
	for moved < len(recs) && time.Now().Before(deadline) {
		moved += drain(t, w)
	}
	if moved != len(recs) {
		t.Fatalf("redelivered %d of %d", moved, len(recs))
	}
	if n, _ := r.db.CountRecords(ctx); n != int64(len(recs)) {
		t.Fatalf("%d records stored, want %d", n, len(recs))
	}
}
