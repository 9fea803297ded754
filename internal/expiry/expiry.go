// Package expiry keeps keys with an expiry time in a min-heap indexed by key, so that a store that
// forgets what expired pays O(log n) per key it forgets, and per key it adds, moves or removes, instead of
// scanning every key on every request.
//
// It owns that heap only and imports nothing of the project, so that any store below the API can use it.
package expiry

import "time"

// Queue holds keys, each with the time it expires, soonest first. The zero value is empty and ready to
// use. A Queue is not safe for concurrent use: its owner's lock guards it with the map it indexes.
type Queue[K comparable] struct {
	items []item[K]
	index map[K]int // key → position in items
}

type item[K comparable] struct {
	key  K
	when time.Time
}

// Len returns the number of keys.
func (q *Queue[K]) Len() int { return len(q.items) }

// Set gives k the expiry when, adding k if it is new.
func (q *Queue[K]) Set(k K, when time.Time) {
	if q.index == nil {
		q.index = map[K]int{}
	}
	if i, ok := q.index[k]; ok {
		q.items[i].when = when
		if !q.up(i) {
			q.down(i)
		}
		return
	}
	q.items = append(q.items, item[K]{k, when})
	q.index[k] = len(q.items) - 1
	q.up(len(q.items) - 1)
}

// When returns k's expiry and whether k is held.
func (q *Queue[K]) When(k K) (time.Time, bool) {
	i, ok := q.index[k]
	if !ok {
		return time.Time{}, false
	}
	return q.items[i].when, true
}

// Delete removes k; it reports whether k was held.
func (q *Queue[K]) Delete(k K) bool {
	i, ok := q.index[k]
	if !ok {
		return false
	}
	q.removeAt(i)
	return true
}

// Peek returns the key that expires first and its expiry; ok is false when the queue is empty.
func (q *Queue[K]) Peek() (k K, when time.Time, ok bool) {
	if len(q.items) == 0 {
		return k, when, false
	}
	return q.items[0].key, q.items[0].when, true
}

// Pop removes and returns the key that expires first; ok is false when the queue is empty.
func (q *Queue[K]) Pop() (k K, when time.Time, ok bool) {
	if len(q.items) == 0 {
		return k, when, false
	}
	it := q.items[0]
	q.removeAt(0)
	return it.key, it.when, true
}

// Expire removes every key whose expiry is not after now, soonest first, calling forget (if not nil)
// with each, and returns how many it removed.
func (q *Queue[K]) Expire(now time.Time, forget func(K)) int {
	n := 0
	for len(q.items) > 0 && !now.Before(q.items[0].when) {
		k, _, _ := q.Pop()
		if forget != nil {
			forget(k)
		}
		n++
	}
	return n
}

func (q *Queue[K]) removeAt(i int) {
	last := len(q.items) - 1
	delete(q.index, q.items[i].key)
	if i != last {
		q.items[i] = q.items[last]
		q.index[q.items[i].key] = i
	}
	q.items[last] = item[K]{}
	q.items = q.items[:last]
	if i != last && !q.up(i) {
		q.down(i)
	}
}

// up moves item i towards the root while it expires before its parent; it reports whether it moved.
func (q *Queue[K]) up(i int) bool {
	start := i
	for i > 0 {
		parent := (i - 1) / 2
		if !q.items[i].when.Before(q.items[parent].when) {
			break
		}
		q.swap(i, parent)
		i = parent
	}
	return i != start
}

// down moves item i towards the leaves while a child expires before it.
func (q *Queue[K]) down(i int) {
	n := len(q.items)
	for {
		least := i
		if l := 2*i + 1; l < n && q.items[l].when.Before(q.items[least].when) {
			least = l
		}
		if r := 2*i + 2; r < n && q.items[r].when.Before(q.items[least].when) {
			least = r
		}
		if least == i {
			return
		}
		q.swap(i, least)
		i = least
	}
}

func (q *Queue[K]) swap(i, j int) {
	q.items[i], q.items[j] = q.items[j], q.items[i]
	q.index[q.items[i].key] = i
	q.index[q.items[j].key] = j
}
