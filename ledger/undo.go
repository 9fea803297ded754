package ledger

import (
	"iter"
	"maps"
	"slices"

	"github.com/ethereum/go-ethereum/common"
)

// undo journal: the sequencer applies a batch to its live state once, before the batch is durable, and
// appends it to the log while readers go on seeing the state as it was before the batch. mark starts
// recording, for every change Apply makes, how to reverse it and what the changed thing was before the
// batch; seal lets the batch wait for the disk, readers seeing those pre-images (the read methods ask
// sealed); forget drops the journal once the batch is durable, and the state as applied is what readers
// see; rollback, when the append fails (a full disk, a database that stopped answering), reverses every
// change, newest first, so that nothing unacknowledged is ever served and the next batch can be tried.
// Replays (which never need to go back) record nothing.

// journal is what mark saved, the reversals recorded since, and the pre-images readers see while the
// batch is sealed.
type journal struct {
	size, lastTime int64
	nextVehicle    uint64
	usedNonces     int // len(nonces) at mark
	trackedNonces  int // len(changes.Nonces) at mark
	undo           []func()
	queue          []queueStep // what container/heap did to the prune queue, in order
	sealed         bool        // applied, waiting for the disk: readers see the pre-images

	// The pre-images: each entity and used nonce as it was before the batch's first change to it (a nil
	// entity is one the batch created), and the vehicles it put in the retained set. The indexes keep
	// their members' own (index.before).
	vehicles map[uint64]*vehicle
	devices  map[common.Address]*device
	apps     map[common.Address]*app
	retained map[uint64]struct{} // vehicles the batch put in the retained set
	nonces   map[nonceKey]usedNonce
}

// usedNonce is a nonce's pre-image: whether the state held it, and its deadline if so.
type usedNonce struct {
	deadline int64
	held     bool
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

// mark starts recording how to undo what Apply changes, and what it changed, until rollback or forget.
func (s *State) mark() {
	s.jr = &journal{size: s.size, lastTime: s.lastTime, nextVehicle: s.nextVehicle, usedNonces: len(s.nonces),
		trackedNonces: len(s.changes.Nonces), vehicles: map[uint64]*vehicle{}, devices: map[common.Address]*device{},
		apps: map[common.Address]*app{}, retained: map[uint64]struct{}{}, nonces: map[nonceKey]usedNonce{}}
	s.owned.before, s.held.before = map[common.Address]map[uint64]bool{}, map[common.Address]map[uint64]bool{}
	s.ownedApps.before = map[common.Address]map[common.Address]bool{}
}

// seal marks the batch applied since mark as waiting for the disk: until forget or rollback, the read
// methods answer as the state was at mark. Nothing may be applied while sealed.
func (s *State) seal() { s.jr.sealed = true }

// sealed returns the journal whose pre-images readers see, or nil when no batch is sealed.
func (s *State) sealed() *journal {
	if s.jr != nil && s.jr.sealed {
		return s.jr
	}
	return nil
}

// forget drops the journal: what was applied since mark stays, and readers see it.
func (s *State) forget() {
	s.jr = nil
	s.owned.before, s.held.before, s.ownedApps.before = nil, nil, nil
}

// rollback undoes everything applied since mark, leaving the state as mark found it, and stops recording.
func (s *State) rollback() {
	jr := s.jr
	if jr == nil {
		return
	}
	s.forget()
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
// appended to, so their headers suffice. The first save of a batch is also the vehicle's pre-image.
func (s *State) saveVehicle(v *vehicle) {
	if s.jr == nil {
		return
	}
	old := &vehicle{}
	*old = *v
	old.devices, old.grants = maps.Clone(v.devices), maps.Clone(v.grants)
	if !hasKey(s.jr.vehicles, v.ID) {
		s.jr.vehicles[v.ID] = old
	}
	s.onUndo(func() { *v = *old })
}

// createdVehicle, createdDevice and createdApp record that the batch created the entity (created).
func (s *State) createdVehicle(id uint64) {
	if s.jr != nil {
		created(s, s.jr.vehicles, s.vehicles, id)
	}
}

func (s *State) createdDevice(a common.Address) {
	if s.jr != nil {
		created(s, s.jr.devices, s.devices, a)
	}
}

func (s *State) createdApp(a common.Address) {
	if s.jr != nil {
		created(s, s.jr.apps, s.apps, a)
	}
}

// created records, in a journal's pre-images pre, that the batch created live[k]: readers of the sealed
// batch do not see it, and rollback deletes it.
func created[K comparable, V any](s *State, pre, live map[K]*V, k K) {
	if !hasKey(pre, k) {
		pre[k] = nil
	}
	s.onUndo(func() { delete(live, k) })
}

// saveDevice records d as it is now, before a change. Its last pairing is changed in place by an
// unpairing, so its pairings are copied.
func (s *State) saveDevice(d *device) {
	if s.jr == nil {
		return
	}
	old := &device{}
	*old = *d
	old.Pairings = slices.Clone(d.Pairings)
	if !hasKey(s.jr.devices, d.addr) {
		s.jr.devices[d.addr] = old
	}
	s.onUndo(func() { *d = *old })
}

// saveApp records a as it is now, before a change.
func (s *State) saveApp(a *app) {
	if s.jr == nil {
		return
	}
	old := &app{}
	*old = *a
	if k := a.addr(); !hasKey(s.jr.apps, k) {
		s.jr.apps[k] = old
	}
	s.onUndo(func() { *a = *old })
}

// hasKey reports whether m holds k, whatever its value (a nil pre-image is one).
func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

// index is a one-to-many index of the state: owner → vehicles, app → vehicles it holds a grant on, owner
// → apps.
type index[K, V comparable] struct {
	sets map[K]map[V]struct{}
	// before holds, while a journal is open, whether each member the batch added or removed was in its
	// set before the batch; nil otherwise. Members, not whole sets: an owner of a fleet has thousands.
	before map[K]map[V]bool
}

func newIndex[K, V comparable]() index[K, V] { return index[K, V]{sets: map[K]map[V]struct{}{}} }

// of returns the members of the set at k as readers see them (as before a sealed batch, if one is), in no
// order.
func (x *index[K, V]) of(s *State, k K) iter.Seq[V] {
	return func(yield func(V) bool) {
		var changed map[V]bool
		if s.sealed() != nil {
			changed = x.before[k]
		}
		for v := range x.sets[k] {
			if was, ok := changed[v]; ok && !was {
				continue // added by the sealed batch
			}
			if !yield(v) {
				return
			}
		}
		for v, was := range changed {
			if _, is := x.sets[k][v]; was && !is && !yield(v) { // removed by the sealed batch
				return
			}
		}
	}
}

// save records whether v was in the set at k before a change, when a journal is open.
func (x *index[K, V]) save(s *State, k K, v V, was bool) {
	if s.jr == nil {
		return
	}
	m := x.before[k]
	if m == nil {
		m = map[V]bool{}
		x.before[k] = m
	}
	if !hasKey(m, v) {
		m[v] = was
	}
}

// add puts v into the set x[k], recording the reversal.
func add[K, V comparable](s *State, x *index[K, V], k K, v V) {
	if _, had := x.sets[k][v]; !had {
		x.save(s, k, v, false)
		s.onUndo(func() { removeFrom(x.sets, k, v) })
	}
	addTo(x.sets, k, v)
}

// remove takes v out of the set x[k], recording the reversal.
func remove[K, V comparable](s *State, x *index[K, V], k K, v V) {
	if _, had := x.sets[k][v]; had {
		x.save(s, k, v, true)
		s.onUndo(func() { addTo(x.sets, k, v) })
	}
	removeFrom(x.sets, k, v)
}
