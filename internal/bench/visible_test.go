package bench

import (
	"context"
	"testing"
)

// TestVisibilityBenchmarkRuns keeps the benchmark code working: a tiny run must see every watched
// vehicle's values in signalsLatest.
func TestVisibilityBenchmarkRuns(t *testing.T) {
	rep, err := Visibility(context.Background(), VisibilityOptions{Vehicles: 12, Watched: 3, Rounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Samples != 6 || rep.P99 <= 0 || rep.Max < rep.P99 {
		t.Fatalf("incomplete report: %+v", rep)
	}
}
