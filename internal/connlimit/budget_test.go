package connlimit

import (
	"context"
	"testing"
	"time"
)

// TestBudgetSharesPerAddress: one address holds at most its share, its requests over it wait for
// its own earlier ones while another address goes on; the whole budget bounds every address together;
// a request that gives up while waiting leaves nothing behind.
func TestBudgetSharesPerAddress(t *testing.T) {
	m := NewBudget(100, 40)
	ctx := context.Background()
	take := func(addr string, n int64) <-chan func() {
		got := make(chan func(), 1)
		go func() {
			release, ok := m.Take(ctx, addr, n)
			if ok {
				got <- release
			}
		}()
		return got
	}
	waits := func(name string, c <-chan func()) {
		t.Helper()
		select {
		case <-c:
			t.Fatalf("%s was let in", name)
		case <-time.After(50 * time.Millisecond):
		}
	}
	a1 := <-take("a", 30)
	a2 := take("a", 30) // 60 > a's 40
	waits("a's second body", a2)
	b1 := <-take("b", 40) // another address goes on
	c1 := <-take("c", 25) // 30 + 40 + 25 = 95 of 100
	d1 := take("d", 10)   // 105 > 100
	waits("a body over the whole budget", d1)
	c1()
	d := <-d1
	a1()
	a := <-a2
	big := take("e", 1000) // larger than both bounds: waits for all of its share and of the budget
	waits("a body larger than the budget", big)
	for _, release := range []func(){b1, d, a} {
		release()
	}
	(<-big)()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := m.Take(gone, "f", 1); ok {
		t.Fatal("a request whose client went away was let in")
	}
	if left := m.addresses(); left != 0 {
		t.Fatalf("%d addresses still listed with nothing held", left)
	}
	soon, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	if release, ok := m.Take(soon, "g", 100); !ok {
		t.Fatal("the budget was not all given back")
	} else {
		release()
	}
}

// TestBudgetWithoutShareIsTheWholeBound: perAddress ≤ 0 lets one address take all of the total.
func TestBudgetWithoutShareIsTheWholeBound(t *testing.T) {
	for _, perAddress := range []int64{0, -1} {
		b := NewBudget(100, perAddress)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		release, ok := b.Take(ctx, "a", 100)
		cancel()
		if !ok {
			t.Fatalf("perAddress %d: one address could not take the whole budget", perAddress)
		}
		release()
	}
}
