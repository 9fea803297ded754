package flowstate_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/glovebox/glovebox/connect/flowstate"
	"github.com/glovebox/glovebox/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.TestConnect(t, func(t *testing.T) flowstate.Store { return flowstate.NewMemory() })
}

// BenchmarkMemory is the store's share of one refresh-token exchange (look up, mark used, record the
// rotated token) and one authorization code, with n families and n codes held: the cost must not grow
// with n (every request used to scan every code and token).
func BenchmarkMemory(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint("held=", n), func(b *testing.B) {
			m := flowstate.NewMemory()
			t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
			current := make([][32]byte, n)
			fams := make([]string, n)
			for i := range n {
				code := fmt.Sprint("code-", i)
				m.AddCode(ctx, code, flowstate.Code{Deadline: t0.Add(time.Hour)}, t0)
				fams[i] = fmt.Sprint("family-", i)
				m.RedeemCode(ctx, code, fams[i], t0)
				current[i] = sha256.Sum256([]byte(fmt.Sprint("token-", i, "-0")))
				m.Issue(ctx, fams[i], flowstate.Access{ID: fmt.Sprint("at-", i), Expiry: t0.Add(time.Hour)}, current[i],
					flowstate.Refresh{Deadline: t0.Add(30 * 24 * time.Hour)}, t0)
			}
			b.ResetTimer()
			for i := range b.N {
				now := t0.Add(time.Duration(i) * time.Microsecond)
				k := i % n
				if _, ok, _ := m.Refresh(ctx, current[k], now); !ok {
					b.Fatal("a current token is unknown")
				}
				if ok, _ := m.UseRefresh(ctx, current[k], now); !ok {
					b.Fatal("a current token was refused")
				}
				current[k] = sha256.Sum256([]byte(fmt.Sprint("token-", k, "-", i+1)))
				m.Issue(ctx, fams[k], flowstate.Access{ID: fmt.Sprint("at-", i), Expiry: now.Add(time.Hour)}, current[k],
					flowstate.Refresh{Deadline: now.Add(30 * 24 * time.Hour)}, now)
				m.AddCode(ctx, fmt.Sprint("new-", i), flowstate.Code{Deadline: now.Add(time.Minute)}, now)
			}
			b.StopTimer()
			if _, _, held := m.Len(); held > n*(flowstate.MaxUsedRefresh+1) {
				b.Fatalf("%d refresh tokens held for %d families", held, n)
			}
		})
	}
}
