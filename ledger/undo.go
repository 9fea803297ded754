package ledger

import (
	"maps"
	"slices"
)

// undo journal: the sequencer applies a batch to its live state before appending it to the log. When the
// append fails (a full disk, a database that stopped answering), the batch must vanish from the state as
// if it had never been applied, so that nothing unacknowledged is ever served and the next batch can be
// tried. mark starts recording, for every change Apply makes, how to reverse it; rollback reverses them
// all, newest first; forget drops the record once the batch is durable. Replays (which never need to go
// back) record nothing.

// journal is what mark saved and the reversals recorded since.
type journal struct {
	size, lastTime int64
	nextVehicle    uint64
	trackedNonces  int // len(changes.Nonces) at mark
	undo           []func()
	queue          []queueStep // what container/heap did to the prune queue, in order
}

// queueStep is one change container/heap made to the prune queue: a swap of i and j, a push (of the
// element now last) or a pop (of popped).
type queueStep struct {
	op     byte // 's'wap, 'p'ush, 'o' pop
	i, j   int
	popped nonceDue
}

// journaledQueue is the prune queue as container/heap sees it while a journal is open: each Swap, Push and
// Pop is recorded, so that rollback restores the queue exactly, in time proportional to the batch (a
// rebuild would take time proportional to every nonce held).
type journaledQueue struct {
	q  *nonceQueue
	jr *journal
}

func (j journaledQueue) Len() int           { return j.q.Len() }
func (j journaledQueue) Less(a, b int) bool { return j.q.Less(a, b) }
func (j journaledQueue) Swap(a, b int) {
	j.q.Swap(a, b)
	j.jr.queue = append(j.jr.queue, queueStep{op: 's', i: a, j: b})
}
func (j journaledQueue) Push(x any) {
	j.q.Push(x)
	j.jr.queue = append(j.jr.queue, queueStep{op: 'p'})
}
func (j journaledQueue) Pop() any {
	x := j.q.Pop()
	j.jr.queue = append(j.jr.queue, queueStep{op: 'o', popped: x.(nonceDue)})
	return x
}

// undoQueue takes back the recorded steps of the prune queue, newest first.
func (s *State) undoQueue(steps []queueStep) {
	for i := len(steps) - 1; i >= 0; i-- {
		switch st := steps[i]; st.op {
		case 's':
			s.due.Swap(st.i, st.j)
		case 'p':
			s.due = s.due[:len(s.due)-1]
		case 'o':
			s.due = append(s.due, st.popped)
		}
	}
}

// mark starts recording how to undo what Apply changes, until rollback or forget.
func (s *State) mark() {
	s.jr = &journal{size: s.size, lastTime: s.lastTime, nextVehicle: s.nextVehicle, trackedNonces: len(s.changes.Nonces)}
}

// forget drops the journal: what was applied since mark stays.
func (s *State) forget() { s.jr = nil }

// rollback undoes everything applied since mark, leaving the state as mark found it, and stops recording.
func (s *State) rollback() {
	jr := s.jr
	if jr == nil {
		return
	}
	s.jr = nil
	for i := len(jr.undo) - 1; i >= 0; i-- {
		jr.undo[i]()
	}
	s.undoQueue(jr.queue)
	s.size, s.lastTime, s.nextVehicle = jr.size, jr.lastTime, jr.nextVehicle
	if s.track {
		s.changes.Nonces = s.changes.Nonces[:jr.trackedNonces]
		// An entity touched by the batch and still there is saved as it is now, which is harmless; one
		// the batch created is gone.
		for id := range s.touched.vehicles {
			if s.vehicles[id] == nil {
				delete(s.touched.vehicles, id)
			}
		}
		for a := range s.touched.devices {
			if s.devices[a] == nil {
				delete(s.touched.devices, a)
			}
		}
		for a := range s.touched.apps {
			if s.apps[a] == nil {
				delete(s.touched.apps, a)
			}
		}
	}
}

// onUndo records f as the reversal of a change about to be made, when a journal is open.
func (s *State) onUndo(f func()) {
	if s.jr != nil {
		s.jr.undo = append(s.jr.undo, f)
	}
}

// saveVehicle records v as it is now, before a change. Its maps are copied; its slices are only ever
// appended to, so their headers suffice.
func (s *State) saveVehicle(v *vehicle) {
	if s.jr == nil {
		return
	}
	old, devices, grants := *v, maps.Clone(v.devices), maps.Clone(v.grants)
	s.onUndo(func() { *v = old; v.devices, v.grants = devices, grants })
}

// saveDevice records d as it is now, before a change. Its last pairing is changed in place by an
// unpairing, so its pairings are copied.
func (s *State) saveDevice(d *device) {
	if s.jr == nil {
		return
	}
	old := *d
	old.Pairings = slices.Clone(d.Pairings)
	s.onUndo(func() { *d = old })
}

// saveApp records a as it is now, before a change.
func (s *State) saveApp(a *app) {
	if s.jr == nil {
		return
	}
	old := *a
	s.onUndo(func() { *a = old })
}

// add puts v into the set m[k], recording the reversal.
func add[K, V comparable](s *State, m map[K]map[V]struct{}, k K, v V) {
	if _, had := m[k][v]; !had {
		s.onUndo(func() { removeFrom(m, k, v) })
	}
	addTo(m, k, v)
}

// remove takes v out of the set m[k], recording the reversal.
func remove[K, V comparable](s *State, m map[K]map[V]struct{}, k K, v V) {
	if _, had := m[k][v]; had {
		s.onUndo(func() { addTo(m, k, v) })
	}
	removeFrom(m, k, v)
}
