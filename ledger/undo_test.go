package ledger

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// fingerprint is everything a reader can learn of the state: its digest, and the indexes behind Account,
// Retained and the nonce count, which the digest does not cover; and the nonces' prune queue.
func fingerprint(t *testing.T, s *State) string {
	t.Helper()
	out := map[string]any{"digest": s.Digest(), "nonces": s.UsedNonces(), "retained": s.Retained(), "pairings": s.PairingsOf(1),
		"queue": fmt.Sprint(s.due)} // the prune queue exactly as it was, not merely its contents
	for _, a := range []actor{alice, bob, mallory, dongle, connector, spare, maker, insurer, dev, fleet} {
		out[a.name] = s.Account(a.addr)
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

func TestRollbackUndoesEveryTransactionType(t *testing.T) {
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
				tx := w.valid(typ)
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
				// The same transaction is accepted again (its nonce was forgotten), and the log of what
				// was kept replays to the state (checked when the test ends).
				w.mustApply(tx)
			})
		}
	}
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
