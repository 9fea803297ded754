package stream

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream run inside this process (`--nats embedded`, and tests). Its
// store fsyncs every write (sync_always), so that the stream's acknowledgement means the record is on
// disk even with a single server; a cluster relies on replication instead.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a JetStream server keeping its data in dir, listening on host:port (port -1 picks
// a free one).
func StartEmbedded(dir, host string, port int) (*Embedded, error) {
	opts := &server.Options{Host: host, Port: port, JetStream: true, StoreDir: dir, SyncAlways: true,
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
