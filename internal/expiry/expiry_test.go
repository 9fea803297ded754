package expiry

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func TestQueue(t *testing.T) {
	type op struct {
		do  string // set, delete, expire, pop
		key string
		sec int
	}
	for _, tc := range []struct {
		name string
		ops  []op
		want []string // keys forgotten by expire and pop, in order
		left int
	}{
		{"expire forgets keys whose expiry is not after now, soonest first",
			[]op{{"set", "c", 30}, {"set", "a", 10}, {"set", "b", 20}, {"expire", "", 20}},
			[]string{"a", "b"}, 1},
		{"a key expiring exactly now is forgotten, one a second later is kept",
			[]op{{"set", "a", 10}, {"set", "b", 11}, {"expire", "", 10}},
			[]string{"a"}, 1},
		{"set moves a held key later",
			[]op{{"set", "a", 10}, {"set", "b", 20}, {"set", "a", 30}, {"expire", "", 25}},
			[]string{"b"}, 1},
		{"set moves a held key earlier",
			[]op{{"set", "a", 10}, {"set", "b", 20}, {"set", "b", 5}, {"pop", "", 0}},
			[]string{"b"}, 1},
		{"a deleted key is never forgotten",
			[]op{{"set", "a", 10}, {"set", "b", 20}, {"delete", "a", 0}, {"expire", "", 100}},
			[]string{"b"}, 0},
		{"deleting an unknown key changes nothing",
			[]op{{"set", "a", 10}, {"delete", "z", 0}, {"expire", "", 9}},
			nil, 1},
		{"pop takes the soonest",
			[]op{{"set", "x", 3}, {"set", "y", 1}, {"set", "z", 2}, {"pop", "", 0}, {"pop", "", 0}},
			[]string{"y", "z"}, 1},
		{"pop of an empty queue forgets nothing", []op{{"pop", "", 0}}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q Queue[string]
			var got []string
			for _, o := range tc.ops {
				switch o.do {
				case "set":
					q.Set(o.key, at(o.sec))
				case "delete":
					q.Delete(o.key)
				case "expire":
					q.Expire(at(o.sec), func(k string) { got = append(got, k) })
				case "pop":
					if k, _, ok := q.Pop(); ok {
						got = append(got, k)
					}
				}
			}
			if !slices.Equal(got, tc.want) || q.Len() != tc.left {
				t.Fatalf("forgot %v with %d left; want %v with %d left", got, q.Len(), tc.want, tc.left)
			}
		})
	}
}

// TestQueueAgreesWithASortedList runs random operations against the queue and a plain list.
func TestQueueAgreesWithASortedList(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var q Queue[int]
	model := map[int]int{} // key → second
	for step := range 20000 {
		k := r.IntN(300)
		switch r.IntN(4) {
		case 0, 1:
			s := r.IntN(1000)
			q.Set(k, at(s))
			model[k] = s
		case 2:
			if q.Delete(k) != (func() bool { _, ok := model[k]; delete(model, k); return ok })() {
				t.Fatalf("step %d: Delete(%d) disagrees", step, k)
			}
		case 3:
			now := r.IntN(1000)
			var got []int
			q.Expire(at(now), func(k int) { got = append(got, k) })
			var want []int
			for k, s := range model {
				if s <= now {
					want = append(want, k)
					delete(model, k)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: Expire(%d) forgot %v, want %v", step, now, got, want)
			}
		}
		if q.Len() != len(model) {
			t.Fatalf("step %d: %d keys, want %d", step, q.Len(), len(model))
		}
		if k, when, ok := q.Peek(); ok {
			for _, s := range model {
				if at(s).Before(when) {
					t.Fatalf("step %d: Peek gives %d at %v, but a key expires at second %d", step, k, when, s)
				}
			}
		}
	}
}

// BenchmarkQueue sets a key and expires one per operation in a queue of n keys: the cost grows with
// log n, not n.
func BenchmarkQueue(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var q Queue[int]
			for i := range n {
				q.Set(i, at(i))
			}
			b.ResetTimer()
			for i := range b.N {
				q.Set(n+i, at(n+i))
				q.Expire(at(i), nil)
			}
		})
	}
}
