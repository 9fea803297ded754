package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/attestation"
	"github.com/glovebox/glovebox/credential"
)

// Credentials is a credentials store under test: VIN credentials and attestations.
type Credentials interface {
	attestation.Store
	credential.VINStore
}

// TestAttestations runs the conformance suite of attestation.Store and credential.VINStore.
func TestAttestations(t *testing.T, open func(t *testing.T) Credentials) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	app1, app2 := common.Address{0xa1}, common.Address{0xa2}
	mk := func(src common.Address, id string, vehicle uint64, at time.Duration, tags []string) *attestation.Attestation {
		a := &attestation.Attestation{ID: id, Vehicle: vehicle, Source: src, Time: t0.Add(at), Received: t0.Add(at + time.Second),
			Type: attestation.Type, Producer: "garage", DataVersion: "v1", Tags: tags, Data: []byte(`{"insured":true}`)}
		a.Signature[0], a.Signature[64] = byte(at/time.Minute), 27
		return a
	}

	t.Run("attestations are listed newest first, per vehicle, from since", func(t *testing.T) {
		s := open(t)
		for _, a := range []*attestation.Attestation{mk(app1, "a", 1, 0, nil), mk(app2, "b", 1, 2*time.Minute, []string{"insurance", "policy"}),
			mk(app1, "c", 1, time.Minute, nil), mk(app1, "d", 2, 0, nil)} {
			if err := s.Put(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.List(ctx, 1, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range got {
			ids = append(ids, a.ID)
		}
		if !slices.Equal(ids, []string{"b", "c", "a"}) {
			t.Fatalf("ids %v, want [b c a]", ids)
		}
		want := mk(app2, "b", 1, 2*time.Minute, []string{"insurance", "policy"})
		b := got[0]
		if b.Source != want.Source || !b.Time.Equal(want.Time) || !b.Received.Equal(want.Received) || b.Type != want.Type ||
			b.Producer != want.Producer || b.DataVersion != want.DataVersion || !slices.Equal(b.Tags, want.Tags) ||
			string(b.Data) != string(want.Data) || b.Signature != want.Signature || b.Vehicle != 1 {
			t.Fatalf("stored %+v, read back %+v", want, b)
		}
		if got[1].Tags != nil {
			t.Fatalf("no tags read back as %#v, want nil", got[1].Tags)
		}
		late, err := s.List(ctx, 1, t0.Add(time.Minute+time.Second))
		if err != nil || len(late) != 2 || late[0].ID != "b" || late[1].ID != "c" {
			t.Fatalf("since one minute: %v %v, want b, c", late, err)
		}
	})

	t.Run("a second attestation with the same source and id is refused and changes nothing", func(t *testing.T) {
		s := open(t)
		if err := s.Put(ctx, mk(app1, "a", 1, 0, nil)); err != nil {
			t.Fatal(err)
		}
		dup := mk(app1, "a", 1, time.Minute, nil)
		dup.Data = []byte(`{"insured":false}`)
		if err := s.Put(ctx, dup); !errors.Is(err, attestation.ErrExists) {
			t.Fatalf("Put twice: %v, want ErrExists", err)
		}
		if err := s.Put(ctx, mk(app2, "a", 1, 0, nil)); err != nil {
			t.Fatalf("the same id from another source: %v", err)
		}
		got, _ := s.List(ctx, 1, time.Time{})
		if len(got) != 2 || string(got[0].Data) != `{"insured":true}` || string(got[1].Data) != `{"insured":true}` {
			t.Fatalf("after the refused Put: %d attestations", len(got))
		}
	})

	t.Run("delete removes one attestation of its vehicle in the period, and says whether it did", func(t *testing.T) {
		s := open(t)
		for _, a := range []*attestation.Attestation{mk(app1, "a", 1, 0, nil), mk(app1, "b", 1, time.Minute, nil)} {
			if err := s.Put(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			name    string
			vehicle uint64
			since   time.Time
			src     common.Address
			id      string
			want    bool
		}{
			{"another vehicle", 2, time.Time{}, app1, "a", false},
			{"another source", 1, time.Time{}, app2, "a", false},
			{"before since", 1, t0.Add(time.Hour), app1, "a", false},
			{"the attestation", 1, time.Time{}, app1, "a", true},
			{"again", 1, time.Time{}, app1, "a", false},
		} {
			ok, err := s.Delete(ctx, c.vehicle, c.since, c.src, c.id)
			if err != nil || ok != c.want {
				t.Fatalf("%s: Delete = %v, %v; want %v", c.name, ok, err, c.want)
			}
		}
		got, _ := s.List(ctx, 1, time.Time{})
		if len(got) != 1 || got[0].ID != "b" {
			t.Fatalf("after delete: %v", got)
		}
	})

	t.Run("the latest VIN credential replaces the one before, and is not shown before since", func(t *testing.T) {
		s := open(t)
		if _, ok, err := s.LatestVIN(ctx, 1, time.Time{}); ok || err != nil {
			t.Fatalf("empty store: %v %v", ok, err)
		}
		v := credential.IssuedVIN{Vehicle: 1, Caller: app1, IssuedAt: t0, Expires: t0.Add(time.Hour), VIN: "1HGCM82633A004352",
			MeasuredAt: t0.Add(-time.Minute), RecordedBy: common.Address{0xd1}, SDJWT: "jwt~d1~"}
		if err := s.PutVIN(ctx, v); err != nil {
			t.Fatal(err)
		}
		v2 := v
		v2.IssuedAt, v2.SDJWT, v2.Caller = t0.Add(time.Minute), "jwt2~", app2
		if err := s.PutVIN(ctx, v2); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.LatestVIN(ctx, 1, time.Time{})
		if err != nil || !ok || got != v2 {
			t.Fatalf("LatestVIN = %+v %v %v, want %+v", got, ok, err, v2)
		}
		if _, ok, _ := s.LatestVIN(ctx, 1, t0.Add(2*time.Minute)); ok {
			t.Fatal("a VIN credential issued before since is shown")
		}
		if _, ok, _ := s.LatestVIN(ctx, 2, time.Time{}); ok {
			t.Fatal("another vehicle's VIN credential is shown")
		}
	})
}
