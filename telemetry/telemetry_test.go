package telemetry

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

func TestTheEmbeddedCatalogueIsTheSharedOne(t *testing.T) {
	shared, err := os.ReadFile("../../shared/signals.tsv")
	if err != nil {
		t.Skip("../shared is not beside the repository")
	}
	if string(shared) != signalsTSV {
		t.Fatal("ledger/signals.tsv differs from ../shared/signals.tsv: copy it again")
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

// FuzzParseEvent: the event parser never panics, what it accepts has a catalogue signal for every value,
// and ParseStored reads it as Parse does.
func FuzzParseEvent(f *testing.F) {
	at := time.Date(2026, 11, 27, 6, 40, 0, 0, time.UTC)
	ev, _ := NewEvent([20]byte{1}, 7, "1", at, []EventSignal{{"speed", at, 42.5}, {SignalLocation, at, Location{1, 2, 3}}})
	f.Add(ev)
	checksummed, _ := NewEvent(common.HexToAddress("0x8ba1f109551bD432803012645Ac136ddd64DBA72"), 7, "2", at, []EventSignal{
		{"speed", at, 1}, {"speed", at.Add(time.Millisecond), 2}, {"powertrainType", at, "BEV"}, {"obdDTCList", at, []string{"P0420"}}})
	f.Add(checksummed)
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
		checkAsStandardJSON(t, event, r)
		if stored, err := DefaultCatalog.ParseStored(event); err != nil || !reflect.DeepEqual(stored, r) {
			t.Fatalf("%q: ParseStored read %+v (%v), Parse %+v", event, stored, err, r)
		}
	})
}

// checkAsStandardJSON fails unless encoding/json reads event as Parse read it into r: the same names,
// times and values, in order.
func checkAsStandardJSON(t *testing.T, event []byte, r *Record) {
	t.Helper()
	var std struct {
		ID      string `json:"id"`
		Subject string `json:"subject"`
		Data    struct {
			Signals []struct {
				Name      string          `json:"name"`
				Timestamp time.Time       `json:"timestamp"`
				Value     json.RawMessage `json:"value"`
			} `json:"signals"`
		} `json:"data"`
	}
	if err := json.Unmarshal(event, &std); err != nil {
		t.Fatalf("Parse took %q, which encoding/json refuses: %v", event, err)
	}
	if std.ID != r.ID || len(std.Data.Signals) != len(r.Values) {
		t.Fatalf("%q: id %q and %d signals to encoding/json, %q and %d to Parse", event, std.ID, len(std.Data.Signals), r.ID, len(r.Values))
	}
	for i, s := range std.Data.Signals {
		v := r.Values[i]
		if s.Name != v.Signal.Name || s.Timestamp.UnixMilli() != v.Time {
			t.Fatalf("%q: signal %d is %s at %v to encoding/json, %s at %d to Parse", event, i, s.Name, s.Timestamp, v.Signal.Name, v.Time)
		}
		var x any
		json.Unmarshal(s.Value, &x)
		switch want := x.(type) {
		case float64:
			if v.Number != want {
				t.Fatalf("%q: %s is %v to encoding/json, %v to Parse", event, s.Name, want, v.Number)
			}
		case string:
			if v.String != want {
				t.Fatalf("%q: %s is %q to encoding/json, %q to Parse", event, s.Name, want, v.String)
			}
		case map[string]any:
			if want["latitude"] != v.Lat || want["longitude"] != v.Lon {
				t.Fatalf("%q: %s is %v to encoding/json, %v %v to Parse", event, s.Name, want, v.Lat, v.Lon)
			}
		}
	}
}

// TestWhatIsNotJSONIsMalformed builds records around text the fast parser would read but RFC 8259 (and
// every standard parser) refuses: each is malformed, not stored as something else.
func TestWhatIsNotJSONIsMalformed(t *testing.T) {
	at := time.Now().UTC().Truncate(time.Second)
	ts := at.Format(time.RFC3339Nano)
	head := `{"specversion":"1.0","id":"1","source":"0x0100000000000000000000000000000000000000","subject":"7","type":"glovebox.signals","time":"` + ts + `","datacontenttype":"application/json","data":{"signals":[`
	good := head + `{"name":"speed","timestamp":"` + ts + `","value":5}]}}`
	if _, err := DefaultCatalog.Parse(&Submission{Event: []byte(good), Signature: make([]byte, 65)}, at.UnixMilli()); err != nil {
		t.Fatalf("the well-formed record: %v", err)
	}
	for _, tc := range []struct{ name, event string }{
		{"a leading plus", head + `{"name":"speed","timestamp":"` + ts + `","value":+5}]}}`},
		{"two minus signs", head + `{"name":"speed","timestamp":"` + ts + `","value":--1}]}}`},
		{"an exponent without digits", head + `{"name":"speed","timestamp":"` + ts + `","value":1e}]}}`},
		{"a fraction without a leading digit", head + `{"name":"speed","timestamp":"` + ts + `","value":.5}]}}`},
		{"leading zeros", head + `{"name":"speed","timestamp":"` + ts + `","value":007}]}}`},
		{"a raw control character in a string", head + `{"name":"powertrainType","timestamp":"` + ts + `","value":"BE` + "" + `V"}]}}`},
		{"a \\x escape", head + `{"name":"powertrainType","timestamp":"` + ts + `","value":"\x41"}]}}`},
		{"a name spelt with \\x", head + `{"name":"spee\x64","timestamp":"` + ts + `","value":5}]}}`},
		{"invalid UTF-8", head + `{"name":"powertrainType","timestamp":"` + ts + `","value":"` + "\xff" + `"}]}}`},
		{"a member twice", head + `{"name":"speed","timestamp":"` + ts + `","value":5}]},"data":{"signals":[]}}`},
		{"a location member twice", head + `{"name":"currentLocationCoordinates","timestamp":"` + ts + `","value":{"latitude":1,"latitude":2,"longitude":3}}]}}`},
		{"trailing text", good + `x`},
		{"a trailing comma", head + `{"name":"speed","timestamp":"` + ts + `","value":5},]}}`},
		{"single quotes", strings.ReplaceAll(good, `"value":5`, `'value':5`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DefaultCatalog.Parse(&Submission{Event: []byte(tc.event), Signature: make([]byte, 65)}, at.UnixMilli())
			if err == nil || StatusOf(err) != StatusMalformed {
				t.Errorf("%q: %v, want malformed", tc.event, err)
			}
		})
	}
	// The envelope is read as strictly: a body that is not JSON fails as a whole.
	for _, body := range []string{`{"event":"\x41","signature":"0x"}`, `[{"event":"{}","signature":"0x00",}]`, `{"event":"a","event":"b","signature":"0x00"}`} {
		if _, _, err := ParseSubmissions([]byte(body), 10); err == nil {
			t.Errorf("envelope %q accepted", body)
		}
	}
}

// TestEscapedNamesMeanWhatTheySay: a name written with JSON escapes is the signal it unescapes to, as
// to any standard parser.
func TestEscapedNamesMeanWhatTheySay(t *testing.T) {
	at := time.Now().UTC().Truncate(time.Second)
	ts := at.Format(time.RFC3339Nano)
	ev := `{"specversion":"1.0","id":"1","source":"0x0100000000000000000000000000000000000000","subject":"7","type":"glovebox.signals","time":"` + ts +
		`","datacontenttype":"application/json","data":{"signals":[{"name":"currentLocation\u0043oordinates","timestamp":"` + ts + `","value":{"latitude":1,"longitude":2,"hdop":1}}]}}`
	r, err := DefaultCatalog.Parse(&Submission{Event: []byte(ev), Signature: make([]byte, 65)}, at.UnixMilli())
	if err != nil || len(r.Values) != 1 || r.Values[0].Signal.Name != SignalLocation {
		t.Fatalf("%v %+v", err, r)
	}
	checkAsStandardJSON(t, []byte(ev), r)
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

// TestNegativeZeroIsStoredAsZero: SQLite drops the sign of a zero and PostgreSQL keeps it, so the parser
// stores every zero as +0 and both stores answer alike.
func TestNegativeZeroIsStoredAsZero(t *testing.T) {
	at := time.Now().UTC().Truncate(time.Second)
	ts := at.Format(time.RFC3339Nano)
	for _, lit := range []string{"-0", "-0.0", "-0e3", "0"} {
		ev := `{"specversion":"1.0","id":"1","source":"0x0100000000000000000000000000000000000000","subject":"7","type":"glovebox.signals","time":"` + ts +
			`","datacontenttype":"application/json","data":{"signals":[{"name":"exteriorAirTemperature","timestamp":"` + ts + `","value":` + lit + `}]}}`
		r, err := DefaultCatalog.Parse(&Submission{Event: []byte(ev), Signature: make([]byte, 65)}, at.UnixMilli())
		if err != nil || len(r.Values) != 1 {
			t.Fatalf("%s: %v %+v", lit, err, r)
		}
		if got := r.Values[0].Number; got != 0 || math.Signbit(got) {
			t.Errorf("%s: stored %v (sign bit %v), want +0", lit, got, math.Signbit(got))
		}
	}
}

// ParseStored reads what Parse accepted exactly as Parse does.
func TestParseStoredIsParse(t *testing.T) {
	ev := []byte(`{"specversion":"1.0","id":"r1","source":"0x00000000000000000000000000000000000000aa","subject":"7","type":"glovebox.signals","time":"2026-12-01T10:00:00Z","datacontenttype":"application/json","data":{"signals":[{"name":"speed","timestamp":"2026-12-01T10:00:00Z","value":42.5},{"name":"currentLocationCoordinates","timestamp":"2026-12-01T10:00:00.250Z","value":{"latitude":52.5,"longitude":13.4,"hdop":1}}]}}`)
	want, err := DefaultCatalog.Parse(&Submission{Event: ev, Signature: make([]byte, 65)}, math.MaxInt64/2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DefaultCatalog.ParseStored(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseStored = %+v, want %+v", got, want)
	}
}
