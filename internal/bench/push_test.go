package bench_test

import (
	"context"
	"testing"

	"github.com/glovebox/glovebox/internal/bench"
)

// BenchmarkWebhooks is the issue's webhook benchmark in this process (no RSS figure; `glovebox bench
// webhooks` runs the node as a child): 1,000 vehicles at 1 Hz, 1,000 signal triggers over 10 apps, a local
// receiver; b.N seconds of load. It reports acceptance → delivery p50/p99 and the ingest rate drop.
func BenchmarkWebhooks(b *testing.B) {
	rep, err := bench.Webhooks(context.Background(), bench.WebhookOptions{Seconds: b.N})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rep.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(rep.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(rep.DropPercent, "ingest-drop-%")
	b.ReportMetric(float64(rep.Deliveries), "deliveries")
}

// BenchmarkSubscriptions is the issue's subscription benchmark in this process (no RSS figure; `glovebox
// bench subscriptions` runs the node as a child): 1,000 WebSocket subscribers on 100 vehicles, b.N rounds
// of one record per vehicle. It reports the push latency p50/p99.
func BenchmarkSubscriptions(b *testing.B) {
	rep, err := bench.Subscriptions(context.Background(), bench.SubscriptionOptions{Rounds: b.N})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rep.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(rep.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(rep.Pushes), "pushes")
}
