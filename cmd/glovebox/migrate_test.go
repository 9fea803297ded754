package main

import (
	"context"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/pgtest"
	"github.com/glovebox/glovebox/ledger"
)

// TestMain runs the tests, or, when the README test runs this binary as ./glovebox (cliUnderTest set), the
// command line itself.
func TestMain(m *testing.M) {
	if os.Getenv(cliUnderTest) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:])
		stop()
		os.Exit(code)
	}
	pgtest.Main(m)
}

func TestMigrateCreatesTheSchemaOnceAndThenHasNothingToDo(t *testing.T) {
	dsn := pgtest.Database(t)
	code, out, errOut := runCLI(t, "migrate", "--store", dsn)
	if code != 0 || !strings.Contains(out, "applied migration 0001") {
		t.Fatalf("first migrate: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "migrate", "--store", dsn)
	if code != 0 || strings.Contains(out, "applied") || !strings.Contains(out, "schema at version") {
		t.Fatalf("second migrate: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, "migrate", "--store", "./not-postgres"); code != 2 {
		t.Fatalf("a non-PostgreSQL store: exit %d, want 2 (usage)", code)
	}
}

// TestServeRunsAClusterProcessWithEmbeddedNATS runs `serve --store … --nats embedded` with every role in
// this process: it takes the lease, sequences a transaction and serves the log from PostgreSQL.
func TestServeRunsAClusterProcessWithEmbeddedNATS(t *testing.T) {
	dsn := pgtest.Database(t)
	if code, out, errOut := runCLI(t, "migrate", "--store", dsn); code != 0 {
		t.Fatalf("migrate: %s%s", out, errOut)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--store", dsn, "--nats", "embedded", "--nats-listen", "127.0.0.1:0", "--data", t.TempDir(),
			"--http", addr, "--mqtt", "off", "--log-level", "warn"})
	}()
	c := client.New("http://" + addr)
	deadline := time.Now().Add(30 * time.Second)
	var d *ledger.Domain
	for {
		if d, err = c.Domain(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster process did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	owner, _ := crypto.GenerateKey()
	var rc *api.Receipt
	for {
		tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: crypto.PubkeyToAddress(owner.PublicKey), Make: "Cluster", Model: "One", Year: 2025}
		client.Prepare(tx, time.Hour)
		d.Sign(tx, owner)
		// Until the process holds the lease, submissions are refused as unavailable.
		if rc, err = c.Submit(ctx, tx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no receipt: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rc.Index != 0 || rc.TreeSize != 1 {
		t.Fatalf("receipt at %d in a tree of %d, want 0 in 1", rc.Index, rc.TreeSize)
	}
	if cp, err := c.Checkpoint(ctx); err != nil || !strings.Contains(string(cp), "\n1\n") {
		t.Fatalf("checkpoint %q (%v)", cp, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d after its context ended", code)
	}
}
