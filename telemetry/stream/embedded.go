package stream

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream run inside this process (`--nats embedded`, and tests).
//
// With syncAlways its store fsyncs every message before acknowledging it, so that an acknowledgement
// means the record is on disk even with a single server, at the price of one fsync per record (JetStream
// does not group them). Without it JetStream's default applies: messages are written at once and fsynced
// every 2 minutes, so an acknowledged record survives the crash of any process but not a power loss of a
// single server; a cluster relies on replication (--replicas 3) instead.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a JetStream server keeping its data in dir, listening on host:port (port -1 picks
// a free one); syncAlways as described at Embedded.
func StartEmbedded(dir, host string, port int, syncAlways bool) (*Embedded, error) {
	opts := &server.Options{Host: host, Port: port, JetStream: true, StoreDir: dir, SyncAlways: syncAlways,
		NoLog: true, NoSigs: true, MaxPayload: 8 << 20}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("couldn't start NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("NATS did not become ready in 30 s")
	}
	return &Embedded{srv: srv}, nil
}

// URL returns the client URL of the server.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Close shuts the server down and waits for it.
func (e *Embedded) Close() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
