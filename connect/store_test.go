package connect

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkMemory is the store's share of one refresh-token exchange (prune, look up, mark used, record
// the rotated token) and one authorization code, with n families and n codes held: the cost must not
// grow with n (every request used to scan every code and token).
func BenchmarkMemory(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint("held=", n), func(b *testing.B) {
			m := newMemory()
			t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
			current := make([][32]byte, n)
			for i := range n {
				fam := &family{}
				current[i] = hashOf(fmt.Sprint("token-", i, "-0"))
				m.addRefresh(current[i], &refresh{fam: fam, req: &AuthorizeRequest{}, deadline: t0.Add(RefreshTTL)})
				m.addCode(fmt.Sprint("code-", i), &codeGrant{req: &AuthorizeRequest{}, deadline: t0.Add(time.Hour)})
			}
			b.ResetTimer()
			for i := range b.N {
				now := t0.Add(time.Duration(i) * time.Microsecond)
				m.prune(now)
				k := i % n
				rt := m.refresh[current[k]]
				m.useRefresh(current[k], rt, now)
				current[k] = hashOf(fmt.Sprint("token-", k, "-", i+1))
				m.addRefresh(current[k], &refresh{fam: rt.fam, req: rt.req, deadline: now.Add(RefreshTTL)})
				m.addCode(fmt.Sprint("new-", i), &codeGrant{req: &AuthorizeRequest{}, deadline: now.Add(CodeTTL)})
			}
			b.StopTimer()
			if len(m.refresh) > n*(MaxUsedRefresh+1) {
				b.Fatalf("%d refresh tokens held for %d families", len(m.refresh), n)
			}
		})
	}
}
