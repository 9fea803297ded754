package telemetry

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

func TestTheEmbeddedCatalogueIsTheSharedOne(t *testing.T) {
	shared, err := os.ReadFile("../../shared/signals.tsv")
	if err != nil {
		t.Skip("../shared is not beside the repository")
	}
	if string(shared) != signalsTSV {
		t.Fatal("telemetry/signals.tsv differs from ../shared/signals.tsv: copy it again")
	}
}

func TestTheCatalogueHasEverySignalWithASaneRange(t *testing.T) {
	c := DefaultCatalog
	if len(c.Signals) != 117 {
		t.Fatalf("%d signals", len(c.Signals))
	}
	for _, s := range c.Signals {
		if s.Kind == KindNumber && !(s.Min < s.Max) {
			t.Errorf("%s: range %v..%v", s.Name, s.Min, s.Max)
		}
	}
	cases := []struct {
		name     string
		min, max float64
		perm     string
	}{
		{"speed", 0, 600, "signals"},
		{"powertrainFuelSystemRelativeLevel", 0, 100, "signals"},
		{"powertrainTransmissionCurrentGear", -128, 127, "signals"},
		{"currentLocationHeading", 0, 360, "location"},
	}
	for _, c := range cases {
		s, ok := DefaultCatalog.Lookup(c.name)
		if !ok || s.Min != c.min || s.Max != c.max || s.Permission != c.perm {
			t.Errorf("%s: %+v", c.name, s)
		}
	}
	if s, _ := DefaultCatalog.Lookup(SignalLocation); s.Kind != KindLocation || s.Permission != "location" {
		t.Errorf("location: %+v", s)
	}
}

func TestASignedEventVerifiesAndAnyChangedByteDoesNot(t *testing.T) {
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)
	at := time.Date(2026, 11, 27, 6, 40, 0, 0, time.UTC)
	ev, err := NewEvent(addr, 7, "1", at, []EventSignal{{"speed", at, 42.5}})
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := Sign(ev, key)
	if got, err := sub.Signer(); err != nil || got != addr {
		t.Fatalf("signer %v %v", got, err)
	}
	for i := range ev {
		bad := Submission{Event: bytes.Clone(ev), Signature: sub.Signature}
		bad.Event[i] ^= 1
		if got, err := bad.Signer(); err == nil && got == addr {
			t.Fatalf("flipping byte %d kept the signature valid", i)
		}
	}
}

func seedSubmissions(f *testing.F) {
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)
	at := time.Date(2026, 11, 27, 6, 40, 0, 0, time.UTC)
	ev, _ := NewEvent(addr, 7, "1", at, []EventSignal{{"speed", at, 42.5}, {"isIgnitionOn", at, true},
		{SignalLocation, at, Location{1, 2, 3}}, {"obdDTCList", at, []string{"P0420"}}, {"powertrainType", at, "BEV"}})
	sub, _ := Sign(ev, key)
	one, _ := json.Marshal(sub)
	many, _ := json.Marshal([]Submission{sub, sub})
	f.Add(one)
	f.Add(many)
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"event":"{}","signature":"0x00"}`))
	f.Add([]byte(`[{"event":1}]`))
}

// FuzzParseSubmissions: the envelope and batch decoder never panics, and an envelope it takes re-encodes
// to one that decodes the same.
func FuzzParseSubmissions(f *testing.F) {
	seedSubmissions(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		subs, _, err := ParseSubmissions(body, 1000)
		if err != nil {
			return
		}
		for _, s := range subs {
			if s.err != "" {
				continue
			}
			enc, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			again, single, err := ParseSubmissions(enc, 1)
			if err != nil || !single || !bytes.Equal(again[0].Event, s.Event) || !bytes.Equal(again[0].Signature, s.Signature) {
				if !json.Valid(s.Event) && bytes.ContainsRune(s.Event, 0xfffd) {
					return // invalid UTF-8 in the event string is replaced on re-encoding
				}
				t.Fatalf("%q re-encodes to %q: %v", body, enc, err)
			}
		}
	})
}

// FuzzParseEvent: the event parser never panics, and what it accepts has a catalogue signal for every value.
func FuzzParseEvent(f *testing.F) {
	at := time.Date(2026, 11, 27, 6, 40, 0, 0, time.UTC)
	ev, _ := NewEvent([20]byte{1}, 7, "1", at, []EventSignal{{"speed", at, 42.5}, {SignalLocation, at, Location{1, 2, 3}}})
	f.Add(ev)
	f.Add([]byte(`{"specversion":"1.0"}`))
	f.Fuzz(func(t *testing.T, event []byte) {
		r, err := DefaultCatalog.Parse(&Submission{Event: event, Signature: make([]byte, 65)}, at.UnixMilli())
		if err != nil {
			return
		}
		for _, v := range r.Values {
			if v.Signal == nil {
				t.Fatal("a value without its signal")
			}
		}
	})
}

func TestStoredLocationsRoundTrip(t *testing.T) {
	lat, lon, hdop, err := DecodeLocation(EncodeLocation(38.7223, -9.1393, 0.9))
	if err != nil || lat != 38.7223 || lon != -9.1393 || hdop != 0.9 {
		t.Fatalf("%v %v %v %v", lat, lon, hdop, err)
	}
	if _, _, _, err := DecodeLocation(make([]byte, 23)); err == nil {
		t.Fatal("a short location decoded")
	}
}
