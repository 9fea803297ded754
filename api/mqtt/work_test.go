package mqtt

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// TestMessagesWaitForTheWorkBound: a message is parsed and ingested only once its payload fits in
// MessageBytesInFlight beside the messages being worked on; it is acknowledged (its records stored) once
// it does.
func TestMessagesWaitForTheWorkBound(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, vid, ledger.KindHardware)
	s, err := New(Config{Addr: "127.0.0.1:0", Ingester: n.Ingester, State: n.Sequencer.Read, Origin: n.Log.Origin(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	p, err := NewPublisher(PublisherOptions{Addr: s.Addr(), Key: dev.Key, Origin: n.Log.Origin(), Version: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	if err := p.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.work.Acquire(ctx, MessageBytesInFlight); err != nil { // as if other messages were in the works
		t.Fatal(err)
	}
	rec := testnode.Record(t, dev, vid, "bound", time.Now())
	done := make(chan []telemetry.Result, 1)
	go func() {
		rs, err := p.PublishAndWait(ctx, []telemetry.Submission{rec})
		if err != nil {
			t.Error(err)
		}
		done <- rs
	}()
	select {
	case rs := <-done:
		t.Fatalf("a message over the bound was worked on: %v", rs)
	case <-time.After(200 * time.Millisecond):
	}
	s.work.Release(MessageBytesInFlight)
	select {
	case rs := <-done:
		if len(rs) != 1 || rs[0].Status != telemetry.StatusAccepted {
			t.Fatalf("once the bound had room: %v", rs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the message was not worked on once the bound had room")
	}
}
