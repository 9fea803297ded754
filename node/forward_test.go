package node_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/postgres"
)

// An API process forwards its clients' transactions to the sequencer, which caps the connections one
// address holds (--max-conns-per-address): every forwarded request comes from the API process's
// address. Forwarding 96 clients' transactions at once must queue on the API process's few connections,
// not open one per client and be refused by the cap (it was: 429 too_many_connections).
func TestManyClientsForwardedAtOnceStayUnderTheSequencersConnectionCap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	ctx := context.Background()
	dsn, pool, ns := pgBackend(t, true)
	data := t.TempDir()
	seq := startClusterProcess(t, data, dsn, ns.URL(), "sequencer", "--max-conns-per-address", "24")
	waitFor(t, 30*time.Second, "the sequencer to take the lease", func() bool {
		_, url, _, err := postgres.Leader(ctx, pool)
		return err == nil && url == seq.url
	})
	api := startClusterProcess(t, data, dsn, ns.URL(), "api", "--max-conns-per-address", "0")
	c := client.New(api.url)
	d, err := c.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const clients = 96
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		owner, _ := crypto.GenerateKey()
		tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: crypto.PubkeyToAddress(owner.PublicKey), Make: "Forwarded", Model: "Test", Year: 2025}
		client.Prepare(tx, time.Hour)
		d.Sign(tx, owner)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := client.New(api.url).Submit(ctx, tx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		t.Fatalf("%d of %d transactions refused; the first: %v", len(all), clients, errors.Join(all[:1]...))
	}
}
