package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/auth/challenge"
)

// TestChallenges runs the cases of challenge.Store, the outstanding sign-in challenges; open returns a
// new, empty store for each. Every time is the caller's: the cases move a clock of their own.
func TestChallenges(t *testing.T, open func(t *testing.T) challenge.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	alice := common.HexToAddress("0x00000000000000000000000000000000000000a1")
	bob := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	add := func(t *testing.T, s challenge.Store, nonce string, to common.Address, ttl time.Duration, now time.Time) {
		t.Helper()
		if err := s.Add(ctx, challenge.Challenge{Nonce: nonce, Address: to, Deadline: t0.Add(ttl)}, now); err != nil {
			t.Fatal(err)
		}
	}
	get := func(t *testing.T, s challenge.Store, nonce string, now time.Time) (challenge.Challenge, bool) {
		t.Helper()
		c, ok, err := s.Get(ctx, nonce, now)
		if err != nil {
			t.Fatal(err)
		}
		return c, ok
	}
	consume := func(t *testing.T, s challenge.Store, nonce string, now time.Time) bool {
		t.Helper()
		ok, err := s.Consume(ctx, nonce, now)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	t.Run("an added challenge is got with its address and deadline", func(t *testing.T) {
		s := open(t)
		add(t, s, "0123456789abcdef", alice, 5*time.Minute, t0)
		add(t, s, "fedcba9876543210", bob, 5*time.Minute, t0)
		c, ok := get(t, s, "0123456789abcdef", t0.Add(time.Minute))
		if !ok || c.Nonce != "0123456789abcdef" || c.Address != alice || !c.Deadline.Equal(t0.Add(5*time.Minute)) {
			t.Fatalf("Get = %+v, %v", c, ok)
		}
		if _, ok := get(t, s, "0123456789abcdee", t0); ok {
			t.Fatal("a nonce never added was found")
		}
	})
	t.Run("a challenge is void from its deadline", func(t *testing.T) {
		s := open(t)
		add(t, s, "0123456789abcdef", alice, 5*time.Minute, t0)
		if _, ok := get(t, s, "0123456789abcdef", t0.Add(5*time.Minute-time.Millisecond)); !ok {
			t.Fatal("not found just before its deadline")
		}
		if _, ok := get(t, s, "0123456789abcdef", t0.Add(5*time.Minute)); ok {
			t.Fatal("found at its deadline")
		}
		if consume(t, s, "0123456789abcdef", t0.Add(5*time.Minute)) {
			t.Fatal("consumed at its deadline")
		}
	})
	t.Run("a challenge is consumed once", func(t *testing.T) {
		s := open(t)
		add(t, s, "0123456789abcdef", alice, 5*time.Minute, t0)
		add(t, s, "fedcba9876543210", bob, 5*time.Minute, t0)
		if !consume(t, s, "0123456789abcdef", t0) {
			t.Fatal("the first Consume failed")
		}
		if consume(t, s, "0123456789abcdef", t0) {
			t.Fatal("consumed twice")
		}
		if _, ok := get(t, s, "0123456789abcdef", t0); ok {
			t.Fatal("found after it was consumed")
		}
		if _, ok := get(t, s, "fedcba9876543210", t0); !ok {
			t.Fatal("consuming one challenge took another")
		}
	})
	t.Run("of concurrent Consumes of one challenge exactly one wins", func(t *testing.T) {
		s := open(t)
		for round := range 5 {
			nonce := fmt.Sprintf("race%012d", round)
			add(t, s, nonce, alice, 5*time.Minute, t0)
			var wg sync.WaitGroup
			wins := make(chan bool, 8)
			for range cap(wins) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := s.Consume(ctx, nonce, t0)
					if err != nil {
						t.Error(err)
					}
					wins <- ok
				}()
			}
			wg.Wait()
			close(wins)
			n := 0
			for ok := range wins {
				if ok {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("round %d: %d Consumes won, want 1", round, n)
			}
		}
	})
	t.Run("expired challenges are forgotten while others are added", func(t *testing.T) {
		s := open(t)
		for i := range 50 {
			add(t, s, fmt.Sprintf("old%013d", i), alice, time.Minute, t0)
		}
		later := t0.Add(time.Hour)
		add(t, s, "fresh00000000000", bob, 2*time.Hour, later)
		for i := range 50 {
			if _, ok := get(t, s, fmt.Sprintf("old%013d", i), later); ok {
				t.Fatalf("expired challenge %d found", i)
			}
		}
		if c, ok := get(t, s, "fresh00000000000", later); !ok || c.Address != bob {
			t.Fatalf("the fresh challenge: %+v %v", c, ok)
		}
	})
}
