package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestInsightsBenchmarkReopensItsCache runs the insights benchmark on a day (records of 50 samples)
// twice with one cache directory: the second run reopens the node the first kept, and every query gives
// the same answer (the same bytes: the report carries a hash of each).
func TestInsightsBenchmarkReopensItsCache(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a day of telemetry")
	}
	cache := t.TempDir()
	opts := InsightsOptions{Days: 1, PerRecord: 50, Runs: 1, CacheDir: cache}
	first, err := Insights(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached {
		t.Fatal("the first run found a cached node in an empty directory")
	}
	if _, err := os.Stat(filepath.Join(cache, "insights-v1-1d-50per", "insights.json")); err != nil {
		t.Fatalf("the first run kept no node: %v", err)
	}
	second, err := Insights(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cached || second.Records != first.Records || second.Values != first.Values || second.Load != first.Load {
		t.Errorf("second run: cached %v, %d records, %d values, load %s; want cached, %d, %d, %s",
			second.Cached, second.Records, second.Values, second.Load, first.Records, first.Values, first.Load)
	}
	if len(second.Queries) != len(first.Queries) || len(first.Queries) != 9 {
		t.Fatalf("%d and %d queries, want 9", len(first.Queries), len(second.Queries))
	}
	for i, q := range first.Queries {
		if second.Queries[i].Answer != q.Answer {
			t.Errorf("%s: %s after reopening, %s before", q.Name, second.Queries[i].Answer, q.Answer)
		}
	}
	if first.Queries[0].Answer[:8] != "3 items," {
		t.Errorf("ignition segments of a day: %s, want 3 items", first.Queries[0].Answer)
	}
}
