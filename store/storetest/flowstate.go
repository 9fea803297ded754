package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/connect/flowstate"
)

// TestConnect runs the cases of flowstate.Store, the OpenID Provider's flow state; open returns a new,
// empty store for each. Every time is the caller's: the cases move a clock of their own.
func TestConnect(t *testing.T, open func(t *testing.T) flowstate.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	owner := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	hash := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// family redeems a new code as family id at t0 and issues access token at and refresh token rt into it.
	family := func(t *testing.T, s flowstate.Store, id, at, rt string) {
		t.Helper()
		must(t, s.AddCode(ctx, "code "+id, flowstate.Code{Request: []byte("{}"), Owner: owner, Vehicles: []uint64{1}, AuthTime: t0,
			Deadline: t0.Add(time.Minute)}, t0))
		if ok, err := s.RedeemCode(ctx, "code "+id, id, t0); err != nil || !ok {
			t.Fatalf("redeem: %v %v", ok, err)
		}
		must(t, s.Issue(ctx, id, flowstate.Access{ID: at, Expiry: t0.Add(time.Hour)}, hash(rt),
			flowstate.Refresh{Request: []byte(`{"scope":"x"}`), Owner: owner, Vehicles: []uint64{1, 2}, Deadline: t0.Add(30 * 24 * time.Hour)}, t0))
	}
	issue := func(t *testing.T, s flowstate.Store, fam, at, rt string, now time.Time) error {
		return s.Issue(ctx, fam, flowstate.Access{ID: at, Expiry: now.Add(time.Hour)}, hash(rt),
			flowstate.Refresh{Request: []byte(`{"scope":"x"}`), Owner: owner, Vehicles: []uint64{1, 2}, Deadline: now.Add(30 * 24 * time.Hour)}, now)
	}
	used := func(t *testing.T, s flowstate.Store, rt string, now time.Time) string {
		t.Helper()
		r, ok, err := s.Refresh(ctx, hash(rt), now)
		must(t, err)
		switch {
		case !ok:
			return "unknown"
		case r.Used:
			return "used"
		}
		return "fresh"
	}

	t.Run("a consent screen is read until its deadline and taken once", func(t *testing.T) {
		s := open(t)
		deadline := t0.Add(15 * time.Minute)
		for _, id := range []string{"screen", "late"} {
			must(t, s.AddPending(ctx, id, flowstate.Pending{Request: []byte(`{"a":1}`), ExpiresAt: 1700000000, Deadline: deadline}, t0))
		}
		p, ok, err := s.Pending(ctx, "screen", deadline.Add(-time.Second))
		must(t, err)
		if !ok || string(p.Request) != `{"a":1}` || p.ExpiresAt != 1700000000 || !p.Deadline.Equal(deadline) {
			t.Fatalf("Pending = %+v, %v", p, ok)
		}
		if _, ok, _ := s.Pending(ctx, "other", t0); ok {
			t.Fatal("an unknown screen is open")
		}
		p, ok, err = s.TakePending(ctx, "screen", deadline.Add(-time.Second))
		must(t, err)
		if !ok || string(p.Request) != `{"a":1}` {
			t.Fatalf("TakePending = %+v, %v", p, ok)
		}
		if _, ok, _ := s.TakePending(ctx, "screen", deadline.Add(-time.Second)); ok {
			t.Fatal("a screen was taken twice")
		}
		if _, ok, _ := s.Pending(ctx, "screen", deadline.Add(-time.Second)); ok {
			t.Fatal("a taken screen is still open")
		}
		if _, ok, _ := s.Pending(ctx, "late", deadline); ok {
			t.Fatal("a screen is still open at its deadline")
		}
		if _, ok, _ := s.TakePending(ctx, "late", deadline); ok {
			t.Fatal("a screen past its deadline was taken")
		}
	})

	t.Run("a code is redeemed once and remembered ten minutes past its deadline", func(t *testing.T) {
		s := open(t)
		must(t, s.AddCode(ctx, "c1", flowstate.Code{Request: []byte(`{"r":1}`), Owner: owner, Vehicles: []uint64{7, 9}, AuthTime: t0,
			Deadline: t0.Add(time.Minute)}, t0))
		c, ok, err := s.Code(ctx, "c1", t0)
		must(t, err)
		if !ok || string(c.Request) != `{"r":1}` || c.Owner != owner || !slices.Equal(c.Vehicles, []uint64{7, 9}) ||
			!c.AuthTime.Equal(t0) || !c.Deadline.Equal(t0.Add(time.Minute)) || c.Used || c.Family != "" {
			t.Fatalf("Code = %+v, %v", c, ok)
		}
		if ok, err := s.RedeemCode(ctx, "c1", "f1", t0); err != nil || !ok {
			t.Fatalf("first redeem: %v %v", ok, err)
		}
		if ok, err := s.RedeemCode(ctx, "c1", "f2", t0); err != nil || ok {
			t.Fatalf("second redeem: %v %v", ok, err)
		}
		if ok, _ := s.RedeemCode(ctx, "unknown", "f3", t0); ok {
			t.Fatal("an unknown code was redeemed")
		}
		c, ok, _ = s.Code(ctx, "c1", t0.Add(time.Minute+flowstate.UsedCodeMemory-time.Second))
		if !ok || !c.Used || c.Family != "f1" {
			t.Fatalf("the used code: %+v, %v", c, ok)
		}
		if _, ok, _ := s.Code(ctx, "c1", t0.Add(time.Minute+flowstate.UsedCodeMemory)); ok {
			t.Fatal("a code is remembered beyond UsedCodeMemory past its deadline")
		}
	})

	t.Run("of concurrent redeems of one code exactly one wins", func(t *testing.T) {
		s := open(t)
		const codes, racers = 10, 4
		for i := range codes {
			must(t, s.AddCode(ctx, fmt.Sprint("code", i), flowstate.Code{Request: []byte("{}"), Owner: owner, Vehicles: []uint64{1},
				AuthTime: t0, Deadline: t0.Add(time.Minute)}, t0))
		}
		var mu sync.Mutex
		wins := map[int][]string{}
		var wg sync.WaitGroup
		for i := range codes {
			for j := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					fam := fmt.Sprintf("fam%d.%d", i, j)
					ok, err := s.RedeemCode(ctx, fmt.Sprint("code", i), fam, t0)
					if err != nil {
						t.Error(err)
					}
					if ok {
						mu.Lock()
						wins[i] = append(wins[i], fam)
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		for i := range codes {
			if len(wins[i]) != 1 {
				t.Fatalf("code %d was redeemed by %v", i, wins[i])
			}
			c, _, _ := s.Code(ctx, fmt.Sprint("code", i), t0)
			if c.Family != wins[i][0] {
				t.Fatalf("code %d started family %q, the winner was %q", i, c.Family, wins[i][0])
			}
		}
	})

	t.Run("a refresh token is used once, then remembered as used", func(t *testing.T) {
		s := open(t)
		family(t, s, "f", "at1", "rt1")
		r, ok, err := s.Refresh(ctx, hash("rt1"), t0)
		must(t, err)
		if !ok || r.Family != "f" || string(r.Request) != `{"scope":"x"}` || r.Owner != owner || !slices.Equal(r.Vehicles, []uint64{1, 2}) ||
			!r.Deadline.Equal(t0.Add(30*24*time.Hour)) || r.Used {
			t.Fatalf("Refresh = %+v, %v", r, ok)
		}
		if ok, err := s.UseRefresh(ctx, hash("rt1"), t0); err != nil || !ok {
			t.Fatalf("first use: %v %v", ok, err)
		}
		if ok, err := s.UseRefresh(ctx, hash("rt1"), t0); err != nil || ok {
			t.Fatalf("second use: %v %v", ok, err)
		}
		if ok, _ := s.UseRefresh(ctx, hash("unknown"), t0); ok {
			t.Fatal("an unknown token was used")
		}
		if got := used(t, s, "rt1", t0.Add(flowstate.UsedRefreshMemory-time.Second)); got != "used" {
			t.Fatalf("the used token a second before UsedRefreshMemory: %s", got)
		}
		if got := used(t, s, "rt1", t0.Add(flowstate.UsedRefreshMemory)); got != "unknown" {
			t.Fatalf("the used token after UsedRefreshMemory: %s", got)
		}
	})

	t.Run("an unused refresh token is forgotten at its deadline", func(t *testing.T) {
		s := open(t)
		family(t, s, "f", "at1", "rt1")
		if got := used(t, s, "rt1", t0.Add(30*24*time.Hour-time.Second)); got != "fresh" {
			t.Fatalf("a second before the deadline: %s", got)
		}
		if got := used(t, s, "rt1", t0.Add(30*24*time.Hour)); got != "unknown" {
			t.Fatalf("at the deadline: %s", got)
		}
		if ok, _ := s.UseRefresh(ctx, hash("rt1"), t0.Add(30*24*time.Hour)); ok {
			t.Fatal("an expired token was used")
		}
	})

	t.Run("a family remembers only its newest used tokens", func(t *testing.T) {
		s := open(t)
		family(t, s, "f", "at0", "rt0")
		for i := range flowstate.MaxUsedRefresh + 1 {
			if ok, err := s.UseRefresh(ctx, hash(fmt.Sprint("rt", i)), t0); err != nil || !ok {
				t.Fatalf("use %d: %v %v", i, ok, err)
			}
			must(t, issue(t, s, "f", fmt.Sprint("at", i+1), fmt.Sprint("rt", i+1), t0))
		}
		var got []string
		for i := range flowstate.MaxUsedRefresh + 2 {
			got = append(got, used(t, s, fmt.Sprint("rt", i), t0))
		}
		want := []string{"unknown", "used", "used", "used", "used", "used", "used", "used", "used", "fresh"}
		if !slices.Equal(got, want) {
			t.Fatalf("tokens rt0..rt9: %v, want %v", got, want)
		}
	})

	t.Run("revoking a family forgets its refresh tokens, returns its live access tokens once and refuses new ones", func(t *testing.T) {
		s := open(t)
		family(t, s, "f", "at1", "rt1")
		family(t, s, "g", "other", "rtg")
		if ok, _ := s.UseRefresh(ctx, hash("rt1"), t0); !ok {
			t.Fatal("use refused")
		}
		must(t, issue(t, s, "f", "at2", "rt2", t0.Add(30*time.Minute)))
		access, err := s.RevokeFamily(ctx, "f", t0.Add(time.Hour)) // at1 expired at t0+1h
		must(t, err)
		if len(access) != 1 || access[0].ID != "at2" || !access[0].Expiry.Equal(t0.Add(90*time.Minute)) {
			t.Fatalf("RevokeFamily = %+v", access)
		}
		for _, rt := range []string{"rt1", "rt2"} {
			if got := used(t, s, rt, t0.Add(time.Hour)); got != "unknown" {
				t.Fatalf("%s after the revocation: %s", rt, got)
			}
		}
		if ok, _ := s.UseRefresh(ctx, hash("rt2"), t0.Add(time.Hour)); ok {
			t.Fatal("a revoked family's token was used")
		}
		if err := issue(t, s, "f", "at3", "rt3", t0.Add(time.Hour)); !errors.Is(err, flowstate.ErrRevoked) {
			t.Fatalf("Issue into a revoked family: %v", err)
		}
		if used(t, s, "rt3", t0.Add(time.Hour)) != "unknown" {
			t.Fatal("a token issued into a revoked family is known")
		}
		again, err := s.RevokeFamily(ctx, "f", t0.Add(time.Hour))
		if err != nil || len(again) != 0 {
			t.Fatalf("a second revocation: %+v %v", again, err)
		}
		if got := used(t, s, "rtg", t0.Add(time.Hour)); got != "fresh" {
			t.Fatalf("another family's token: %s", got)
		}
		if err := issue(t, s, "nobody", "at", "rt", t0); !errors.Is(err, flowstate.ErrRevoked) {
			t.Fatalf("Issue into an unknown family: %v", err)
		}
		if a, err := s.RevokeFamily(ctx, "nobody", t0); err != nil || len(a) != 0 {
			t.Fatalf("revoking an unknown family: %v %v", a, err)
		}
	})

	t.Run("of concurrent uses of one refresh token exactly one wins", func(t *testing.T) {
		s := open(t)
		const families, racers = 10, 4
		for i := range families {
			family(t, s, fmt.Sprint("f", i), fmt.Sprint("at", i), fmt.Sprint("rt", i))
		}
		var wins [families]int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range families {
			for range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := s.UseRefresh(ctx, hash(fmt.Sprint("rt", i)), t0)
					if err != nil {
						t.Error(err)
					}
					if ok {
						mu.Lock()
						wins[i]++
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		for i, n := range wins {
			if n != 1 {
				t.Fatalf("token %d was used %d times", i, n)
			}
		}
	})

	t.Run("a client assertion id is accepted once until it expires", func(t *testing.T) {
		s := open(t)
		for _, c := range []struct {
			key  string
			now  time.Time
			want bool
		}{
			{"app jti1", t0, true},
			{"app jti1", t0.Add(time.Minute - time.Second), false},
			{"app jti2", t0, true},
			{"app jti1", t0.Add(time.Minute), true}, // expired: a new assertion may reuse the id
			{"app jti1", t0.Add(90 * time.Second), false},
		} {
			got, err := s.UseAssertion(ctx, c.key, c.now.Add(time.Minute), c.now)
			must(t, err)
			if got != c.want {
				t.Fatalf("UseAssertion(%q) at %s = %v, want %v", c.key, c.now.Sub(t0), got, c.want)
			}
		}
	})
}
