package connect

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/ledger"
)

var fuzzApp = common.HexToAddress("0x00000000000000000000000000000000000000aa")

func fuzzLookup(a common.Address) (ledger.App, bool) {
	if a != fuzzApp {
		return ledger.App{}, false
	}
	return ledger.App{Address: a.Hex(), Name: "Acme", RedirectURIs: []string{"https://acme.example/cb", "http://127.0.0.1:9/cb?x=1"}}, true
}

// FuzzParseAuthorizeRequest: any query string never crashes the parser; what it accepts is for the
// registered app, one of its redirect URIs exactly, with an S256 challenge and a known scope; what it
// redirects goes only to a registered redirect URI.
func FuzzParseAuthorizeRequest(f *testing.F) {
	ok := url.Values{"response_type": {"code"}, "client_id": {fuzzApp.Hex()}, "redirect_uri": {"https://acme.example/cb"},
		"scope": {"openid vehicle:signals"}, "state": {"s"}, "nonce": {"n"}, "code_challenge_method": {"S256"},
		"code_challenge": {strings.Repeat("a", 43)}, "purpose": {"why"}, "duration": {"86400"}, "terms_uri": {"https://acme.example/t"}}
	f.Add(ok.Encode())
	f.Add("client_id=0x00000000000000000000000000000000000000AA&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb%3Fx%3D1&response_type=code")
	f.Add("client_id=x&client_id=y")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r, aerr := ParseAuthorizeRequest(q, fuzzLookup)
		if (r == nil) == (aerr == nil) {
			t.Fatalf("got %v and %v", r, aerr)
		}
		app, _ := fuzzLookup(fuzzApp)
		registered := func(u string) bool {
			for _, v := range app.RedirectURIs {
				if u == v {
					return true
				}
			}
			return false
		}
		if aerr != nil {
			if aerr.Redirect && !registered(aerr.RedirectURI) {
				t.Fatalf("an error redirected to %q", aerr.RedirectURI)
			}
			if aerr.Code == "" {
				t.Fatal("an error without a code")
			}
			return
		}
		if r.App != fuzzApp || !registered(r.RedirectURI) || !isChallenge(r.CodeChallenge) || len(r.Scope.Vehicle) == 0 ||
			r.Duration < MinDuration || r.Duration > MaxDuration || r.Purpose == "" {
			t.Fatalf("accepted %+v", r)
		}
		if back, err := ParseScope(r.Scope.String()); err != nil || back.String() != r.Scope.String() {
			t.Fatalf("scope %q does not round-trip: %v", r.Scope.String(), err)
		}
	})
}

// FuzzParseClientAssertion: any string never crashes the parser, and nothing but a signature by the
// app's key is accepted.
func FuzzParseClientAssertion(f *testing.F) {
	key, _ := crypto.HexToECDSA(strings.Repeat("11", 32))
	addr := crypto.PubkeyToAddress(key.PublicKey)
	now := time.Unix(1_800_000_000, 0)
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	in := enc(map[string]string{"alg": "ES256K"}) + "." + enc(map[string]any{"iss": addr.Hex(), "sub": addr.Hex(),
		"aud": "https://node.example/oauth/token", "jti": "1", "exp": now.Unix() + 60})
	h := sha256.Sum256([]byte(in))
	sig, _ := crypto.Sign(h[:], key)
	good := in + "." + base64.RawURLEncoding.EncodeToString(sig[:64])
	if _, err := ParseClientAssertion(good, []string{"https://node.example/oauth/token"}, now); err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("a.b.c")
	f.Add(in + ".")
	f.Fuzz(func(t *testing.T, s string) {
		ca, err := ParseClientAssertion(s, []string{"https://node.example/oauth/token"}, now)
		if err != nil {
			return
		}
		if ca.Client != addr {
			t.Fatalf("accepted an assertion by %s", ca.Client.Hex())
		}
	})
}

// Every one-character change of a valid assertion's signature segment is refused.
func TestClientAssertionSignatureChanges(t *testing.T) {
	key, _ := crypto.HexToECDSA(strings.Repeat("22", 32))
	addr := crypto.PubkeyToAddress(key.PublicKey)
	now := time.Unix(1_800_000_000, 0)
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	in := enc(map[string]string{"alg": "ES256K"}) + "." + enc(map[string]any{"iss": addr.Hex(), "sub": addr.Hex(),
		"aud": []string{"x", "https://node.example"}, "jti": "1", "exp": now.Unix() + 60})
	h := sha256.Sum256([]byte(in))
	sig, _ := crypto.Sign(h[:], key)
	raw := sig[:64]
	if _, err := ParseClientAssertion(in+"."+base64.RawURLEncoding.EncodeToString(raw), []string{"https://node.example"}, now); err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for bit := 0; bit < 8; bit++ {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			if ca, err := ParseClientAssertion(in+"."+base64.RawURLEncoding.EncodeToString(b), []string{"https://node.example"}, now); err == nil && ca.Client == addr {
				t.Fatalf("flipping bit %d of byte %d still verifies", bit, i)
			}
		}
	}
}

func TestParseScope(t *testing.T) {
	for _, c := range []struct {
		in, want string // want "" means refused
	}{
		{"openid vehicle:signals", "openid vehicle:signals"},
		{"vehicle:location openid vehicle:signals vehicle:signals", "openid vehicle:signals vehicle:location"},
		{"vehicle:commands", "vehicle:commands"},
		{"openid", ""},
		{"", ""},
		{"openid  vehicle:signals", ""},
		{" vehicle:signals", ""},
		{"vehicle:Signals", ""},
		{"signals", ""},
		{"openid vehicle:signals profile", ""},
		{"vehicle:signals:speed openid vehicle:signals:powertrainTransmissionTravelledDistance vehicle:location:approximate",
			"openid vehicle:location:approximate vehicle:signals:powertrainTransmissionTravelledDistance vehicle:signals:speed"},
		{"vehicle:signals:speed vehicle:signals:speed", "vehicle:signals:speed"},
		{"vehicle:signals:speedometer", ""},
		{"vehicle:signals:", ""},
		{"vehicle:signals:Speed", ""},
		{"vehicle:signals:currentLocationCoordinates", ""},
		{"vehicle:signals:vehicleIdentificationVIN", ""},
	} {
		got, err := ParseScope(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("ParseScope(%q) accepted %q", c.in, got.String())
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("ParseScope(%q) = %q, %v; want %q", c.in, got.String(), err, c.want)
		}
	}
}

func TestPerSignalScopesAreWordedForTheDriver(t *testing.T) {
	got, err := ParseScope("vehicle:signals:powertrainTransmissionTravelledDistance vehicle:signals:cabinDoorRow1DriverSideIsOpen")
	if err != nil {
		t.Fatal(err)
	}
	want := []Scope{
		{Name: "vehicle:signals:cabinDoorRow1DriverSideIsOpen", Permission: "signals:cabinDoorRow1DriverSideIsOpen",
			Title:  "Cabin door row1 driver side is open",
			Detail: "This one reading from your car (Vehicle.Cabin.Door.Row1.DriverSide.IsOpen), now and in the past. No other reading, and not where the car is."},
		{Name: "vehicle:signals:powertrainTransmissionTravelledDistance", Permission: "signals:powertrainTransmissionTravelledDistance",
			Title:  "Mileage (odometer)",
			Detail: "This one reading from your car (Vehicle.Powertrain.Transmission.TravelledDistance, in km), now and in the past. No other reading, and not where the car is."},
	}
	if fmt.Sprint(got.Vehicle) != fmt.Sprint(want) {
		t.Errorf("got  %+v\nwant %+v", got.Vehicle, want)
	}
	if !got.covers([]string{"signals"}) || !got.covers([]string{"signals:powertrainTransmissionTravelledDistance", "signals:cabinDoorRow1DriverSideIsOpen"}) ||
		got.covers([]string{"signals:powertrainTransmissionTravelledDistance"}) {
		t.Error("covers does not treat signals as every per-signal permission")
	}
}

func TestScopesNameEveryPermission(t *testing.T) {
	if len(Scopes) != len(ledger.Permissions) {
		t.Fatalf("%d scopes for %d permissions", len(Scopes), len(ledger.Permissions))
	}
	for i, p := range ledger.Permissions {
		if Scopes[i].Permission != p || Scopes[i].Name != "vehicle:"+p || Scopes[i].Title == "" || Scopes[i].Detail == "" {
			t.Errorf("scope %d: %+v", i, Scopes[i])
		}
	}
}
