package ledger

import (
	"reflect"
	"testing"
	"time"
)

func TestSetRetentionRules(t *testing.T) {
	for _, c := range []struct {
		name string
		days uint16
		want Code
	}{
		{"keeping data until erased (0 days)", 0, ""},
		{"one day", 1, ""},
		{"the longest window, 3650 days", 3650, ""},
		{"3651 days", 3651, CodeRetentionTooLong},
		{"the largest uint16", 65535, CodeRetentionTooLong},
	} {
		outcome := "accepted"
		if c.want != "" {
			outcome = "refused as " + string(c.want)
		}
		t.Run("a retention of "+c.name+" is "+outcome, func(t *testing.T) {
			w := newFixture(t)
			tx := w.msg(TypeSetRetention)
			tx.Days = c.days
			w.expect(w.sign(tx, alice), c.want)
			v, _ := w.s.Vehicle(1)
			if c.want == "" && (v.RetentionDays != c.days || v.RetentionSetAt != w.now) {
				t.Fatalf("retention %d set at %d; want %d at %d", v.RetentionDays, v.RetentionSetAt, c.days, w.now)
			}
			if c.want != "" && (v.RetentionDays != 0 || v.RetentionSetAt != 0) {
				t.Fatalf("a refused SetRetention left retention %d set at %d", v.RetentionDays, v.RetentionSetAt)
			}
		})
	}
	t.Run("a burned vehicle's retention cannot be set", func(t *testing.T) {
		w := newFixture(t)
		w.mustApply(w.valid(TypeBurnVehicle))
		w.expect(w.valid(TypeSetRetention), CodeVehicleBurned)
	})
	t.Run("an unknown vehicle's retention is unknown_vehicle", func(t *testing.T) {
		w := newFixture(t)
		tx := w.msg(TypeSetRetention)
		tx.VehicleID.SetUint64(9)
		w.expect(w.sign(tx, alice), CodeUnknownVehicle)
	})
}

// ownedThrice is the fixture with vehicle 1 owned by alice for an hour, bob for an hour, then alice again
// for an hour. It returns the three transfer times (unix ms): registration, alice→bob, bob→alice.
func ownedThrice(t *testing.T) (*world, [3]int64) {
	w := newFixture(t)
	reg := w.s.vehicles[1].OwnedSince
	w.advance(time.Hour)
	toBob := w.now
	w.mustApply(w.valid(TypeTransferVehicle))
	w.advance(time.Hour)
	toAlice := w.now
	back := w.msg(TypeTransferVehicle)
	back.To = alice.addr
	w.mustApply(w.sign(back, bob))
	w.advance(time.Hour)
	return w, [3]int64{reg, toBob, toAlice}
}

func TestEraseDataRules(t *testing.T) {
	w, at := ownedThrice(t)
	reg, toBob, toAlice := at[0], at[1], at[2]
	v, _ := w.s.Vehicle(1)
	if want := []Ownership{{alice.addr.Hex(), reg, toBob}, {bob.addr.Hex(), toBob, toAlice}}; !reflect.DeepEqual(v.FormerOwners, want) {
		t.Fatalf("former owners %+v, want %+v", v.FormerOwners, want)
	}
	now := w.now / 1000
	for _, c := range []struct {
		name   string
		by     actor
		before int64
		want   Code
		ranges []TimeRange
	}{
		{"the current owner erasing up to now erases both of its periods", alice, now, "",
			[]TimeRange{{reg, toBob}, {toAlice, now * 1000}}},
		{"the current owner erasing up to bob's time erases only its first period", alice, toAlice/1000 - 60, "",
			[]TimeRange{{reg, toBob}}},
		{"a former owner erases only its own period", bob, now, "", []TimeRange{{toBob, toAlice}}},
		{"a former owner cut in the middle of its period", bob, toBob/1000 + 600, "", []TimeRange{{toBob, toBob/1000*1000 + 600_000}}},
		{"a former owner erasing before its period erases nothing", bob, toBob/1000 - 1, "", nil},
		{"an account that never owned the car is refused", mallory, now, CodeNeverOwned, nil},
		{"the app is refused", insurer, now, CodeNeverOwned, nil},
		{"before one second in the future is refused", alice, now + 1, CodeBeforeInFuture, nil},
		{"before far in the future is refused", bob, 1 << 62, CodeBeforeInFuture, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, _ := ownedThrice(t)
			tx := w.msg(TypeEraseData)
			tx.Before = uint64(c.before)
			w.expect(w.sign(tx, c.by), c.want)
			v, _ := w.s.Vehicle(1)
			if c.want != "" {
				if len(v.Erasures) != 0 {
					t.Fatalf("a refused EraseData recorded %+v", v.Erasures)
				}
				return
			}
			want := []Erasure{{Index: w.s.Size() - 1, Account: c.by.addr.Hex(), Before: c.before, RequestedAt: w.now, Ranges: c.ranges}}
			if !reflect.DeepEqual(v.Erasures, want) {
				t.Fatalf("erasures %+v\nwant %+v", v.Erasures, want)
			}
		})
	}
	t.Run("a former owner may still erase after the vehicle was burned", func(t *testing.T) {
		w, at := ownedThrice(t)
		w.mustApply(w.valid(TypeBurnVehicle))
		tx := w.msg(TypeEraseData)
		tx.Before = uint64(w.now / 1000)
		w.mustApply(w.sign(tx, bob))
		v, _ := w.s.Vehicle(1)
		if len(v.Erasures) != 1 || !reflect.DeepEqual(v.Erasures[0].Ranges, []TimeRange{{at[1], at[2]}}) {
			t.Fatalf("erasures %+v", v.Erasures)
		}
	})
	t.Run("an unknown vehicle is unknown_vehicle", func(t *testing.T) {
		w := newFixture(t)
		tx := w.msg(TypeEraseData)
		tx.VehicleID.SetUint64(9)
		w.expect(w.sign(tx, alice), CodeUnknownVehicle)
	})
}
