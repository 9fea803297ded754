package bench

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkQuery runs the query benchmark once per iteration (-benchtime=1x): signalsLatest over HTTP at
// 1, 50 and 200 clients of 10 requests/s, the highest rate with p99 < 50 ms, and the bare store query;
// then signals over 30 days of 5 vehicles in 5-minute buckets, over HTTP and on the bare store.
func BenchmarkQuery(b *testing.B) {
	for i := 0; i < b.N; i++ {
		opts := QueryOptions{}
		if testing.Verbose() {
			opts.Progress = os.Stderr
		}
		rep, err := Query(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if testing.Verbose() {
			rep.Print(os.Stderr)
		}
		for _, l := range rep.Levels {
			b.ReportMetric(float64(l.P99)/1e6, "p99-ms-"+strconv.Itoa(l.Clients)+"-clients")
		}
		b.ReportMetric(rep.MaxRate, "max-req/s-p99<50ms")
		b.ReportMetric(float64(rep.StoreP50)/1e6, "store-p50-ms")
		b.ReportMetric(float64(rep.StoreP99)/1e6, "store-p99-ms")
		b.ReportMetric(float64(rep.SignalsP50)/1e6, "signals-p50-ms")
		b.ReportMetric(float64(rep.SignalsP99)/1e6, "signals-p99-ms")
		b.ReportMetric(float64(rep.SignalsStoreP50)/1e6, "signals-store-p50-ms")
		b.ReportMetric(float64(rep.SignalsStoreP99)/1e6, "signals-store-p99-ms")
	}
}

// TestQueryBenchmarkRuns keeps the query benchmark working on a tiny fleet.
func TestQueryBenchmarkRuns(t *testing.T) {
	rep, err := Query(context.Background(), QueryOptions{Vehicles: 3, History: time.Minute, PerRequest: 50,
		Clients: []int{1, 4}, StepDuration: 300 * time.Millisecond, RampClients: 4, RampStart: 40, MaxRate: 100, RampRefine: 1,
		TargetP99: time.Second, StoreDuration: 100 * time.Millisecond,
		HistoryVehicles: 1, HistoryDays: 1, HistoryInterval: 10 * time.Minute, HistoryPerRecord: 1, SignalsRuns: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 180 || rep.LatestRows != 30 || len(rep.Levels) != 2 || len(rep.Ramp) == 0 || rep.StoreQueries == 0 {
		t.Fatalf("incomplete report: %+v", rep)
	}
	for _, l := range rep.Levels {
		if l.Errors != 0 || l.Sent == 0 || l.P99 <= 0 || l.Achieved <= 0 {
			t.Fatalf("level %+v", l)
		}
	}
	// One day at one record per 10 minutes: 144 records, one in every other 5-minute bucket.
	if rep.HistoryRecords != 144 || rep.SignalsBuckets != 288 || rep.SignalsAnswered != 144 || len(rep.Signals) != 3 ||
		len(rep.SignalsStore) != 3 || len(rep.SignalsValues) != 3 || rep.RollupRows == 0 || rep.SignalsP99 <= 0 || rep.SignalsStoreP99 <= 0 || rep.SignalRows != (180+144)*10 {
		t.Fatalf("incomplete signals report: %+v", rep)
	}
	var sb strings.Builder
	rep.Print(&sb)
	if !strings.Contains(sb.String(), "signalsLatest") || !strings.Contains(sb.String(), "bare store") {
		t.Fatal(sb.String())
	}
}
