package ledger

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/holiman/uint256"
)

// fingerprint is everything a reader can learn of the state (readerView), and the nonces' prune queue.
func fingerprint(t *testing.T, s *State) string {
	t.Helper()
	return readerView(t, s, true)
}

// readerView is everything a reader can learn of the state through its read methods: its digest and
// snapshot, the indexes behind Account, Retained and the nonce count, which the digest does not cover,
// each entity and pairing; with queue, also the nonces' prune queue, which no reader sees.
func readerView(t *testing.T, s *State, queue bool) string {
	t.Helper()
	snap := s.Snapshot()
	slices.SortFunc(snap.Vehicles, func(a, b Vehicle) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(snap.Devices, func(a, b Device) int { return cmp.Compare(a.Address, b.Address) })
	slices.SortFunc(snap.Apps, func(a, b App) int { return cmp.Compare(a.Address, b.Address) })
	slices.SortFunc(snap.Nonces, func(a, b Nonce) int {
		return cmp.Or(a.Signer.Cmp(b.Signer), a.Nonce.Cmp(&b.Nonce), cmp.Compare(a.Deadline, b.Deadline))
	})
	out := map[string]any{"digest": s.Digest(), "snapshot": snap, "size": s.Size(), "time": s.LastTime(),
		"nonces": s.UsedNonces(), "retained": s.Retained()}
	if queue {
		out["queue"] = fmt.Sprint(s.due) // the prune queue exactly as it was, not merely its contents
	}
	for id := uint64(1); id <= 4; id++ {
		v, ok := s.Vehicle(id)
		out[fmt.Sprint("vehicle ", id)] = []any{v, ok, s.PairingsOf(id)}
	}
	for _, a := range []actor{alice, bob, mallory, dongle, connector, spare, maker, insurer, dev, fleet} {
		d, dok := s.Device(a.addr)
		p, pok := s.App(a.addr)
		g, gok := s.GrantOf(1, a.addr)
		at, atok := s.PairingAt(a.addr, 1, s.LastTime())
		out[a.name] = []any{s.Account(a.addr), d, dok, p, pok, g, gok, at, atok}
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// applyRaw applies tx at the world's clock without recording it as a log entry.
func applyRaw(t *testing.T, w *world, tx *Tx) {
	t.Helper()
	signers, err := testDomain.Signers(tx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.Apply(&Entry{AcceptTime: w.now, Tx: tx}, signers, w.s.Size()); err != nil {
		t.Fatalf("apply %s: %v", tx.Type, err)
	}
}

// eachType runs f, for every transaction type, with a fixture tracking changes and the fixture-valid
// transaction of that type: at the fixture's clock, and two hours on, where it prunes every earlier nonce.
func eachType(t *testing.T, f func(t *testing.T, w *world, tx *Tx)) {
	for typ := TypeRegisterVehicle; typ < typeEnd; typ++ {
		for _, late := range []bool{false, true} {
			name := typ.String()
			if late {
				name += " two hours on (it prunes every earlier nonce)"
			}
			t.Run(name, func(t *testing.T) {
				w := newFixture(t)
				w.s.TrackChanges()
				w.s.TakeChanges()
				if late {
					w.advance(2 * time.Hour)
				}
				f(t, w, w.valid(typ))
			})
		}
	}
}

func TestRollbackUndoesEveryTransactionType(t *testing.T) {
	eachType(t, func(t *testing.T, w *world, tx *Tx) {
		before := fingerprint(t, w.s)
		w.s.mark()
		applyRaw(t, w, tx)
		if fingerprint(t, w.s) == before {
			t.Fatal("the transaction changed nothing a reader sees; the test proves nothing")
		}
		w.s.rollback()
		if got := fingerprint(t, w.s); got != before {
			t.Fatalf("after rollback the state reads\n%s\nwant\n%s", got, before)
		}
		if c := w.s.TakeChanges(); len(c.Nonces) != 0 || len(c.Vehicles)+len(c.Devices)+len(c.Apps) > 2 {
			t.Fatalf("after rollback the changes to save are %+v", c)
		}
		// The same transaction is accepted again (its nonce was forgotten), and the log of what was kept
		// replays to the state (checked when the test ends).
		w.mustApply(tx)
	})
}

func TestRollbackUndoesAWholeBatch(t *testing.T) {
	w := busyWorld(t)
	w.advance(25 * time.Hour) // every nonce so far is pruned by the batch's first entry
	before := fingerprint(t, w.s)
	var batch []*Tx
	w.s.mark()
	for _, c := range []struct {
		typ TxType
		by  []actor
	}{
		{TypeRegisterVehicle, []actor{alice}},
		{TypeUpdateApp, []actor{dev}},
		{TypeSetRetention, []actor{bob}}, // vehicle 1 is bob's in busyWorld
		{TypeEraseData, []actor{bob}},
		{TypeRevoke, []actor{bob}},
		{TypeBurnVehicle, []actor{bob}},
	} {
		tx := w.sign(w.msg(c.typ), c.by...)
		applyRaw(t, w, tx)
		batch = append(batch, tx)
	}
	if fingerprint(t, w.s) == before {
		t.Fatal("the batch changed nothing a reader sees")
	}
	w.s.rollback()
	if got := fingerprint(t, w.s); got != before {
		t.Fatalf("after rollback the state reads\n%s\nwant\n%s", got, before)
	}
	for _, tx := range batch {
		w.mustApply(tx)
	}
}

// A sealed batch (applied, waiting for the disk) must read, through every read method, as the state before
// it; forgetting the journal shows it; rolling it back leaves the state as before.
func TestASealedBatchReadsAsTheStateBeforeIt(t *testing.T) {
	for _, durable := range []bool{true, false} {
		t.Run(map[bool]string{true: "made durable", false: "rolled back"}[durable], func(t *testing.T) {
			eachType(t, func(t *testing.T, w *world, tx *Tx) {
				before, beforeAll := readerView(t, w.s, false), fingerprint(t, w.s)
				w.s.mark()
				applyRaw(t, w, tx)
				after := readerView(t, w.s, false)
				if after == before {
					t.Fatal("the transaction changed nothing a reader sees; the test proves nothing")
				}
				w.s.seal()
				if got := readerView(t, w.s, false); got != before {
					t.Fatalf("while sealed the state reads\n%s\nwant the state before the batch\n%s", got, before)
				}
				if !durable {
					w.s.rollback()
					if got := fingerprint(t, w.s); got != beforeAll {
						t.Fatalf("after rollback the state reads\n%s\nwant\n%s", got, beforeAll)
					}
					w.mustApply(tx)
					return
				}
				w.s.forget()
				if got := readerView(t, w.s, false); got != after {
					t.Fatalf("once durable the state reads\n%s\nwant\n%s", got, after)
				}
				w.entries = append(w.entries, mustMarshal(t, &Entry{AcceptTime: w.now, Tx: tx}))
			})
		})
	}
}

func TestASealedBatchOfManyChangesReadsAsTheStateBeforeIt(t *testing.T) {
	on := func(typ TxType, vehicle uint64, edit func(*Tx)) *Tx {
		tx := message(typ, 0, 0)
		tx.Nonce, tx.Deadline = uint256.Int{}, uint256.Int{}
		if vehicle != 0 {
			tx.VehicleID.SetUint64(vehicle)
		}
		if edit != nil {
			edit(tx)
		}
		return tx
	}
	type step struct {
		tx *Tx
		by []actor
	}
	for _, c := range []struct {
		name  string
		world func(*testing.T) *world
		steps func(w *world) []step
	}{
		{"changes to what was there, every nonce pruned", func(t *testing.T) *world {
			w := busyWorld(t)
			w.advance(25 * time.Hour) // every nonce so far is pruned by the batch's first entry
			return w
		}, func(w *world) []step {
			return []step{
				{on(TypeRegisterVehicle, 0, nil), []actor{alice}},
				{on(TypeUpdateApp, 0, nil), []actor{dev}},
				{on(TypeSetRetention, 1, nil), []actor{bob}}, // vehicle 1 is bob's in busyWorld
				{on(TypeEraseData, 1, func(tx *Tx) { tx.Before = uint64(w.now / 1000) }), []actor{bob}},
				{on(TypeRevoke, 1, nil), []actor{bob}},
				{on(TypeBurnVehicle, 1, nil), []actor{bob}},
			}
		}},
		{"a vehicle, device and app the batch creates and changes", func(t *testing.T) *world { return newFixture(t) }, func(w *world) []step {
			grant := func(app actor) func(*Tx) {
				return func(tx *Tx) { tx.App = app.addr; tx.ExpiresAt.SetUint64(uint64(w.now/1000 + 3600)) }
			}
			return []step{
				{on(TypeRegisterVehicle, 0, nil), []actor{alice}}, // vehicle 2
				{on(TypeRegisterDevice, 0, nil), []actor{spare, maker}},
				{on(TypePairDevice, 2, func(tx *Tx) { tx.Device = spare.addr }), []actor{alice, spare}},
				{on(TypeSetRetention, 2, nil), []actor{alice}},
				{on(TypeGrant, 2, grant(insurer)), []actor{alice}},
				{on(TypeEraseData, 2, func(tx *Tx) { tx.Before = uint64(w.now / 1000) }), []actor{alice}},
				{on(TypeRegisterApp, 0, nil), []actor{dev, fleet}},
				{on(TypeGrant, 2, grant(fleet)), []actor{alice}},
				{on(TypeTransferVehicle, 2, nil), []actor{alice}},
				{on(TypeUnpairDevice, 1, nil), []actor{alice}},
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := c.world(t)
			before := readerView(t, w.s, false)
			w.s.mark()
			for _, st := range c.steps(w) {
				tx := w.sign(st.tx, st.by...)
				applyRaw(t, w, tx)
				w.entries = append(w.entries, mustMarshal(t, &Entry{AcceptTime: w.now, Tx: tx}))
			}
			after := readerView(t, w.s, false)
			w.s.seal()
			if got := readerView(t, w.s, false); got != before {
				t.Fatalf("while sealed the state reads\n%s\nwant the state before the batch\n%s", got, before)
			}
			w.s.forget()
			if got := readerView(t, w.s, false); got != after {
				t.Fatalf("once durable the state reads\n%s\nwant\n%s", got, after)
			}
		})
	}
}

// Random batches of every transaction type on random vehicles, devices and apps, signed by random parties
// (most are refused, some prune nonces): while sealed every read method answers as before the batch; once
// forgotten as after it; rolled back, as before it, prune queue included.
func TestRandomSealedBatchesReadAsTheStateBeforeThem(t *testing.T) {
	actors := []actor{alice, bob, mallory, dongle, connector, spare, maker, insurer, dev, fleet}
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for round := range 40 {
		w := busyWorld(t)
		if round%4 < 2 {
			w = newFixture(t) // spare and fleet not yet registered
		}
		w.s.TrackChanges()
		w.s.TakeChanges()
		durable := round%2 == 0
		for batch := range 4 {
			before, beforeAll := readerView(t, w.s, false), fingerprint(t, w.s)
			w.s.mark()
			var kept [][]byte
			for range 12 {
				if rng.IntN(4) == 0 {
					w.advance(time.Duration(rng.IntN(3*3600)) * time.Second)
				}
				tx := w.msg(TypeRegisterVehicle + TxType(rng.IntN(int(typeEnd-TypeRegisterVehicle))))
				switch rng.IntN(3) {
				case 0:
					tx.VehicleID.SetUint64(uint64(1 + rng.IntN(4)))
				case 1:
					tx.Device = actors[rng.IntN(len(actors))].addr
					tx.App = actors[rng.IntN(len(actors))].addr
				}
				var by []actor
				if rng.IntN(3) > 0 {
					by = rightSigners(tx.Type)
				} else {
					by = []actor{actors[rng.IntN(len(actors))]}
				}
				tx = w.sign(tx, by...)
				signers, err := testDomain.Signers(tx)
				if err != nil {
					t.Fatal(err)
				}
				e := &Entry{AcceptTime: w.now, Tx: tx}
				if _, err := w.s.Apply(e, signers, w.s.Size()); err == nil {
					kept = append(kept, mustMarshal(t, e))
					accepted++
				}
			}
			after := readerView(t, w.s, false)
			w.s.seal()
			if got := readerView(t, w.s, false); got != before {
				t.Fatalf("round %d batch %d: while sealed the state reads\n%s\nwant the state before the batch\n%s", round, batch, got, before)
			}
			if durable || batch%2 == 0 {
				w.s.forget()
				if got := readerView(t, w.s, false); got != after {
					t.Fatalf("round %d batch %d: once durable the state reads\n%s\nwant\n%s", round, batch, got, after)
				}
				w.entries = append(w.entries, kept...)
			} else {
				w.s.rollback()
				if got := fingerprint(t, w.s); got != beforeAll {
					t.Fatalf("round %d batch %d: after rollback the state reads\n%s\nwant\n%s", round, batch, got, beforeAll)
				}
			}
		}
	}
	if accepted < 200 {
		t.Fatalf("%d transactions of 1,920 accepted: the batches change too little to prove anything", accepted)
	}
}
