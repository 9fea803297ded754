package challenge_test

import (
	"context"
	"testing"
	"time"

	"github.com/glovebox/glovebox/auth/challenge"
	"github.com/glovebox/glovebox/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.TestChallenges(t, func(t *testing.T) challenge.Store { return challenge.NewMemory(0) })
}

func TestMemoryForgetsExpiredAndOldestChallenges(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := challenge.NewMemory(3)
	for i, v := range []string{"n0", "n1", "n2", "n3"} {
		if err := m.Add(ctx, challenge.Challenge{Nonce: v, Deadline: t0.Add(time.Duration(i+1) * time.Minute)}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := m.Get(ctx, "n0", t0); ok || m.Len() != 3 {
		t.Fatalf("the oldest challenge was not evicted at the cap (%d held)", m.Len())
	}
	m.Add(ctx, challenge.Challenge{Nonce: "n4", Deadline: t0.Add(time.Hour)}, t0.Add(3*time.Minute))
	if m.Len() != 2 { // n1, n2 expired; n3, n4 remain
		t.Fatalf("%d challenges held, want 2", m.Len())
	}
}
