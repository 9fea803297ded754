package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// BenchmarkLedger runs the whole ledger benchmark once per iteration on a real node over loopback HTTP and
// reports the ratios of the README's performance table. Run it with -benchtime=1x.
func BenchmarkLedger(b *testing.B) {
	for i := 0; i < b.N; i++ {
		opts := LedgerOptions{SingleTxs: 20000, BatchTxs: 40000, ReplayEntries: 40000}
		if testing.Verbose() {
			opts.Progress = os.Stderr
		}
		rep, err := Ledger(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.RecoverPerSec, "recoveries/s")
		b.ReportMetric(rep.SingleTxPerSec, "single-tx/s")
		b.ReportMetric(rep.SingleRatio, "single-ratio")
		b.ReportMetric(rep.BatchTxPerSec, "batch-tx/s")
		b.ReportMetric(rep.BatchRatio, "batch-ratio")
		b.ReportMetric(rep.SingleFloorPerSec/rep.RecoverPerSec, "single-floor-ratio")
		b.ReportMetric(rep.BatchFloorPerSec/rep.RecoverPerSecBatch, "batch-floor-ratio")
		b.ReportMetric(float64(rep.ReplayEntries)/rep.ReplayDuration.Seconds(), "replay-entries/s")
		b.ReportMetric(rep.TilesPerSec, "tiles/s")
	}
}

// TestLedgerBenchmarkRuns keeps the benchmark code working: a tiny run must finish with every
// transaction accepted and a replay that verifies.
func TestLedgerBenchmarkRuns(t *testing.T) {
	rep, err := Ledger(context.Background(), LedgerOptions{Clients: 8, SingleTxs: 300, BatchTxs: 600, BatchSize: 200, ReplayEntries: 900, TileDuration: 200e6, RecoverDuration: 200e6})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ReplayEntries != 900 || rep.SingleTxPerSec <= 0 || rep.BatchTxPerSec <= 0 || rep.TilesPerSec <= 0 ||
		rep.SingleFloorPerSec <= 0 || rep.BatchFloorPerSec <= 0 {
		t.Fatalf("incomplete report: %+v", rep)
	}
}

// BenchmarkIngest runs the ingest benchmark in this process once per iteration (-benchtime=1x).
func BenchmarkIngest(b *testing.B) {
	for i := 0; i < b.N; i++ {
		opts := IngestOptions{Records: 50000}
		if testing.Verbose() {
			opts.Progress = os.Stderr
		}
		rep, err := Ingest(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.RecoverPerSec, "recoveries/s")
		b.ReportMetric(rep.RecordsPerSec, "records/s")
		b.ReportMetric(rep.Ratio, "ratio")
		b.ReportMetric(rep.BytesPerRecord, "bytes/record")
	}
}

// TestIngestBenchmarkRuns keeps the ingest benchmark working on a tiny fleet.
func TestIngestBenchmarkRuns(t *testing.T) {
	rep, err := Ingest(context.Background(), IngestOptions{Vehicles: 20, Records: 400, PerRequest: 50, Clients: 4, RecoverDuration: 200e6})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RecordsPerSec <= 0 || rep.BytesPerRecord <= 0 {
		t.Fatalf("incomplete report: %+v", rep)
	}
}

// TestIngestBenchmarkRunsOverMQTT keeps the MQTT variant working on a tiny fleet.
func TestIngestBenchmarkRunsOverMQTT(t *testing.T) {
	rep, err := Ingest(context.Background(), IngestOptions{Vehicles: 10, Records: 200, PerRequest: 5, Clients: 4, RecoverDuration: 200e6, MQTT: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RecordsPerSec <= 0 || rep.Transport != "MQTT" {
		t.Fatalf("incomplete report: %+v", rep)
	}
}

// BenchmarkCluster runs the cluster benchmark once per iteration (-benchtime=1x) with the glovebox binary
// named by GLOVEBOX_BIN (go build -o /tmp/glovebox ./cmd/glovebox), on the PostgreSQL pgtest finds.
func BenchmarkCluster(b *testing.B) {
	bin := os.Getenv("GLOVEBOX_BIN")
	if bin == "" {
		b.Skip("set GLOVEBOX_BIN to a built glovebox binary")
	}
	for i := 0; i < b.N; i++ {
		opts := ClusterOptions{Binary: bin}
		if testing.Verbose() {
			opts.Progress = os.Stderr
		}
		rep, err := Cluster(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rep.Runs {
			b.ReportMetric(r.AckedPerSec, fmt.Sprintf("records/s-%d-ingesters", r.Ingesters))
		}
	}
}

// BenchmarkRecoverWorkers reports the bare recovery rate with 1, 2, 4 and 8 goroutines: RecoverRate uses
// one a core, which the node's floor servers (many handlers in C at once) exceed by 7–12 % on two
// cores. Run it with -benchtime=1x.
func BenchmarkRecoverWorkers(b *testing.B) {
	for i := 0; i < b.N; i++ {
		for _, w := range []int{1, 2, 4, 8} {
			b.ReportMetric(recoverRate(2*time.Second, w), fmt.Sprintf("recoveries/s-%d-goroutines", w))
		}
	}
}
