package node_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/node"
)

// TestAClusterProcessLeavesNoGoroutineBehind runs a process with every role until it sequences, storing
// snapshots all the time and asked for receipts beyond its log (each starts a catch-up), stops it, and
// then finds no goroutine of package node running: Run joins what it started, sequencing joins its lease
// check and snapshot loop, and Close the catch-ups that requests started (one of them outliving its
// request, whose client gave up).
func TestAClusterProcessLeavesNoGoroutineBehind(t *testing.T) {
	ctx := context.Background()
	dsn, _, ns := pgBackend(t, false)
	c, err := node.OpenCluster(ctx, node.ClusterConfig{Store: dsn, NATS: ns.URL(), DataDir: t.TempDir(),
		SnapshotInterval: time.Millisecond, SnapshotEntries: 1, FollowInterval: 5 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.API)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	for deadline := time.Now().Add(30 * time.Second); !c.Ledger.IsLeader(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the process never took the lease")
		}
	}
	// The receipt requests run while Run stops, so that a catch-up may still be under way at Close.
	asked := make(chan struct{})
	go func() {
		defer close(asked)
		for range 20 {
			if resp, err := http.Get(srv.URL + "/v1/transactions/1000000"); err == nil {
				resp.Body.Close()
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-asked
	// One more receipt starts a round of catch-up; the next, asked at once, waits for a round due
	// ReceiptCatchUpInterval later, and its client gives up before that: the round outlives its request.
	if resp, err := http.Get(srv.URL + "/v1/transactions/1000000"); err == nil {
		resp.Body.Close()
	}
	short, cancelShort := context.WithTimeout(ctx, node.ReceiptCatchUpInterval/10)
	defer cancelShort()
	req, _ := http.NewRequestWithContext(short, http.MethodGet, srv.URL+"/v1/transactions/1000000", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a receipt beyond the log was answered before its catch-up round")
	}
	srv.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// A goroutine Close waited for may still be on its way out (in runtime.goexit) when Close returns:
	// look again for a moment before calling one left behind.
	var left []string
	for range 100 {
		left = left[:0]
		buf := make([]byte, 1<<22)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "glovebox/glovebox/node.") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, g := range left {
		t.Errorf("a goroutine of package node outlived Close:\n%s", g)
	}
}
