package connect_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/glovebox/glovebox/connect"
)

// TestUsedRefreshTokensAreRememberedOnlyAsLongAsReuseDetectionNeeds: a rotated refresh token presented
// again revokes its family within connect.UsedRefreshMemory and among the family's newest
// connect.MaxUsedRefresh used tokens; beyond either it is unknown and the family lives on.
func TestUsedRefreshTokensAreRememberedOnlyAsLongAsReuseDetectionNeeds(t *testing.T) {
	setup := func(t *testing.T) (*world, *clock, func(rt string) (int, map[string]any), string) {
		w, clk := newClockWorld(t)
		f := w.newFlow()
		_, out := w.token(t, w.exchangeForm(f, w.code(t, f, w.v1)))
		refresh := func(rt string) (int, map[string]any) {
			return w.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {w.app.key.Address.Hex()}})
		}
		return w, clk, refresh, out["refresh_token"].(string)
	}
	rotate := func(t *testing.T, refresh func(string) (int, map[string]any), rt string) string {
		t.Helper()
		status, out := refresh(rt)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, out)
		}
		return out["refresh_token"].(string)
	}
	t.Run("a used token presented within a day revokes the family", func(t *testing.T) {
		_, clk, refresh, rt1 := setup(t)
		rt2 := rotate(t, refresh, rt1)
		clk.add(connect.UsedRefreshMemory - time.Second)
		if status, out := refresh(rt1); status != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("the used token again: %d %v", status, out)
		}
		if status, _ := refresh(rt2); status != 400 {
			t.Fatal("the family's newest token still works after a reuse")
		}
	})
	t.Run("a used token presented after a day is unknown and the family lives on", func(t *testing.T) {
		_, clk, refresh, rt1 := setup(t)
		rt2 := rotate(t, refresh, rt1)
		clk.add(connect.UsedRefreshMemory)
		if status, out := refresh(rt1); status != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("the forgotten token: %d %v", status, out)
		}
		rotate(t, refresh, rt2)
	})
	t.Run("a family remembers only its newest used tokens", func(t *testing.T) {
		_, _, refresh, rt := setup(t)
		used := []string{}
		for range connect.MaxUsedRefresh + 1 {
			used = append(used, rt)
			rt = rotate(t, refresh, rt)
		}
		// The oldest was forgotten: unknown, and the family lives on.
		if status, _ := refresh(used[0]); status != 400 {
			t.Fatal("the oldest used token was accepted")
		}
		rt = rotate(t, refresh, rt)
		// The next oldest is remembered: presenting it revokes the family.
		if status, _ := refresh(used[2]); status != 400 {
			t.Fatal("a remembered used token was accepted")
		}
		if status, _ := refresh(rt); status != 400 {
			t.Fatal("the family's newest token still works after a reuse")
		}
	})
}
