package sim

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api/mqtt"
	"github.com/glovebox/glovebox/internal/testnode"
)

// TestTheFleetDrivesOverMQTT runs the simulator against a real node's embedded broker: every device logs
// in with its own token and every record is accepted.
func TestTheFleetDrivesOverMQTT(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	broker, err := mqtt.New(mqtt.Config{Addr: "127.0.0.1:0", Ingester: n.Ingester, State: n.Sequencer.Read, Origin: n.Log.Origin(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	go broker.Serve()
	defer broker.Close()
	tr := NewMQTTTransport(broker.Addr())
	defer tr.Close()
	st, err := Run(context.Background(), Options{Node: n.URL, Vehicles: 5, Rate: 200 * time.Millisecond, Duration: 2 * time.Second,
		Seed: 7, KeysDir: t.TempDir(), Transport: tr, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if st.Accepted == 0 || st.Accepted != st.Sent {
		t.Fatalf("over MQTT: %+v", st)
	}
	var stored int
	n.Telemetry.DB().QueryRow(`SELECT count(*) FROM records`).Scan(&stored)
	if stored != int(st.Accepted) {
		t.Fatalf("%d records stored, %d accepted", stored, st.Accepted)
	}
}
