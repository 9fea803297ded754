package ledger

import (
	"container/heap"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"
)

// Changes lists the entities that applied entries created or changed, as full records, so that a read
// model can upsert them. A full Snapshot has the same shape and lists everything.
type Changes struct {
	Size        int64 // entries applied
	LastTime    int64 // accept time of the last entry, unix ms
	NextVehicle uint64
	Vehicles    []Vehicle // with their current grants and pairings
	Devices     []Device  // with every pairing
	Apps        []App
	// Nonces are the newly used nonces (in a full snapshot: every nonce the state holds). A nonce whose
	// Deadline is before NonceHorizon() is no longer part of the state: a store deletes it (and Restore
	// ignores it).
	Nonces []Nonce
}

// NonceHorizon is the unix second before which no used nonce's deadline is kept: the accept second of
// the last entry.
func (c *Changes) NonceHorizon() int64 { return nonceHorizon(c.LastTime) }

type touched struct {
	vehicles map[uint64]struct{}
	devices  map[common.Address]struct{}
	apps     map[common.Address]struct{}
}

// TrackChanges makes the state record what each Apply touches, to be collected with TakeChanges.
func (s *State) TrackChanges() {
	s.track = true
	s.touched = touched{map[uint64]struct{}{}, map[common.Address]struct{}{}, map[common.Address]struct{}{}}
}

func (s *State) touchVehicle(v *vehicle) {
	if s.track {
		s.touched.vehicles[v.ID] = struct{}{}
	}
}

func (s *State) touchDevice(d *device) {
	if s.track {
		s.touched.devices[d.addr] = struct{}{}
	}
}

func (s *State) touchApp(a *app) {
	if s.track {
		s.touched.apps[a.addr()] = struct{}{}
	}
}

// TakeChanges returns what was touched since the previous call (or TrackChanges) and starts afresh.
func (s *State) TakeChanges() Changes {
	c := Changes{Size: s.size, LastTime: s.lastTime, NextVehicle: s.nextVehicle, Nonces: s.changes.Nonces}
	// Sized at once: a group commit of a thousand registrations would otherwise copy its views a dozen
	// times while the slices grow.
	c.Vehicles = make([]Vehicle, 0, len(s.touched.vehicles))
	c.Devices = make([]Device, 0, len(s.touched.devices))
	c.Apps = make([]App, 0, len(s.touched.apps))
	for id := range s.touched.vehicles {
		c.Vehicles = append(c.Vehicles, s.vehicles[id].view(s))
	}
	for a := range s.touched.devices {
		c.Devices = append(c.Devices, s.devices[a].view())
	}
	for a := range s.touched.apps {
		c.Apps = append(c.Apps, s.apps[a].view())
	}
	s.changes = Changes{}
	clear(s.touched.vehicles)
	clear(s.touched.devices)
	clear(s.touched.apps)
	return c
}

// Snapshot returns the whole state in the Changes shape.
func (s *State) Snapshot() Changes {
	var c Changes
	c.Size, c.LastTime, c.NextVehicle = s.counters()
	for id := range s.vehicles {
		if v := s.vehicleOf(id); v != nil {
			c.Vehicles = append(c.Vehicles, v.view(s))
		}
	}
	for a := range s.devices {
		if d := s.deviceOf(a); d != nil {
			c.Devices = append(c.Devices, d.view())
		}
	}
	for a := range s.apps {
		if p := s.appOf(a); p != nil {
			c.Apps = append(c.Apps, p.view())
		}
	}
	s.eachNonce(func(k nonceKey, deadline int64) {
		n := Nonce{Signer: k.signer, Deadline: deadline}
		n.Nonce.SetBytes32(k.nonce[:])
		c.Nonces = append(c.Nonces, n)
	})
	return c
}

// Restore rebuilds a state from a full snapshot (as Snapshot returns it, or as a read model stored it).
func Restore(snap Changes) (*State, error) {
	s := NewState()
	s.size, s.lastTime, s.nextVehicle = snap.Size, snap.LastTime, snap.NextVehicle
	for _, v := range snap.Vehicles {
		owner, err := ParseAddress(v.Owner)
		if err != nil {
			return nil, fmt.Errorf("vehicle %d: %w", v.ID, err)
		}
		vv := &vehicle{Vehicle: v, owner: owner}
		for _, g := range v.Grants {
			a, err := ParseAddress(g.App)
			if err != nil {
				return nil, fmt.Errorf("vehicle %d grant: %w", v.ID, err)
			}
			g.Permissions = slices.Clone(g.Permissions)
			if vv.grants == nil {
				vv.grants = map[common.Address]*Grant{}
			}
			vv.grants[a] = &g
			addTo(s.held.sets, a, v.ID)
		}
		vv.Devices, vv.Grants = nil, nil
		vv.FormerOwners, vv.Erasures = slices.Clone(v.FormerOwners), cloneErasures(v.Erasures)
		s.vehicles[v.ID] = vv
		if v.RetentionDays > 0 || len(v.Erasures) > 0 {
			s.retained[v.ID] = struct{}{}
		}
		addTo(s.owned.sets, owner, v.ID)
	}
	for _, d := range snap.Devices {
		a, err := ParseAddress(d.Address)
		if err != nil {
			return nil, fmt.Errorf("device: %w", err)
		}
		d.Pairings = slices.Clone(d.Pairings)
		s.devices[a] = &device{Device: d, addr: a}
		for _, p := range d.Pairings {
			if v := s.vehicles[p.VehicleID]; v != nil && !slices.Contains(v.paired, a) {
				v.paired = append(v.paired, a)
			}
		}
		if d.VehicleID != 0 {
			v := s.vehicles[d.VehicleID]
			if v == nil {
				return nil, fmt.Errorf("device %s is paired to missing vehicle %d", d.Address, d.VehicleID)
			}
			if v.devices == nil {
				v.devices = map[string]common.Address{}
			}
			v.devices[d.Kind] = a
		}
	}
	for _, p := range snap.Apps {
		a, err := ParseAddress(p.Address)
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		owner, err := ParseAddress(p.Owner)
		if err != nil {
			return nil, fmt.Errorf("app %s owner: %w", p.Address, err)
		}
		p.RedirectURIs = slices.Clone(p.RedirectURIs)
		s.apps[a] = &app{App: p, owner: owner}
		addTo(s.ownedApps.sets, owner, a)
	}
	horizon := nonceHorizon(snap.LastTime)
	for _, n := range snap.Nonces {
		k := nonceKey{n.Signer, n.Nonce.Bytes32()}
		// A read model may still list what the horizon passed, or a key twice (used again after its
		// first deadline): the later deadline is the one in force.
		if d, ok := s.nonces[k]; n.Deadline < horizon || (ok && d >= n.Deadline) {
			continue
		}
		s.nonces[k] = n.Deadline
	}
	s.due = make(nonceQueue, 0, len(s.nonces))
	for k, d := range s.nonces {
		s.due = append(s.due, nonceDue{d, k})
	}
	heap.Init(&s.due)
	return s, nil
}
