package attestation_test

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/attestation"
	"github.com/glovebox/glovebox/ledger"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// sign returns personal_sign over data by key, 0x-hex.
func sign(t testing.TB, data string, key *ecdsa.PrivateKey) string {
	t.Helper()
	h := ledger.PersonalHash([]byte(data))
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	return "0x" + hex.EncodeToString(sig)
}

// fixedKey is a key derived from a byte, so that tests are repeatable.
func fixedKey(t testing.TB, b byte) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.ToECDSA(append(make([]byte, 31), b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// DIMO's own example, with Glovebox's subject: the data is signed as it appears, spaces included.
const data = `{"subject": "7", "insured": true, "provider": "State Farm", "expirationDate": 1807822654}`

func event(source common.Address, sig string, extra string) string {
	return `{"id":"policy-1","source":"` + source.Hex() + `","producer":"did:ethr:80002:` + source.Hex() + `","specversion":"1.0",` +
		`"subject":"7","time":"2026-06-01T11:58:00.5Z","type":"dimo.attestation","dataversion":"insurance/v1",` +
		`"tags":["insurance","policy"],"signature":"` + sig + `"` + extra + `,"data":` + data + `}`
}

func TestAParsedAttestationIsTheEventAsSignedByItsSource(t *testing.T) {
	key := fixedKey(t, 1)
	app := crypto.PubkeyToAddress(key.PublicKey)
	a, err := attestation.Parse([]byte(event(app, sign(t, data, key), "")), app, now)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s %d %s %s %s %s %s %q %s", a.ID, a.Vehicle, a.Source.Hex(), a.Producer, a.Time.Format(time.RFC3339Nano),
		a.Type, a.DataVersion, a.Tags, a.Data)
	want := "policy-1 7 " + app.Hex() + " did:ethr:80002:" + app.Hex() + " 2026-06-01T11:58:00.5Z dimo.attestation insurance/v1 " +
		`["insurance" "policy"] ` + data
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !a.Received.Equal(now) || a.SignatureHex() != sign(t, data, key) || a.Verify() != nil {
		t.Fatalf("received %v, signature %s", a.Received, a.SignatureHex())
	}
}

func TestTheMinimalAttestationGetsDIMOsDefaults(t *testing.T) {
	key := fixedKey(t, 1)
	app := crypto.PubkeyToAddress(key.PublicKey)
	body := `{"subject":"7","signature":"` + sign(t, `"service done"`, key) + `","data":"service done"}`
	a, err := attestation.Parse([]byte(body), app, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.ID) != 32 || a.Source != app || !a.Time.Equal(now) || a.Type != "dimo.attestation" || a.Tags != nil || a.Producer != "" {
		t.Fatalf("%+v", a)
	}
}

func TestBadAttestationsAreRefusedWithTheirError(t *testing.T) {
	key, other := fixedKey(t, 1), fixedKey(t, 2)
	app := crypto.PubkeyToAddress(key.PublicKey)
	good := sign(t, data, key)
	flipped := []byte(good)
	flipped[10] ^= 1
	for _, c := range []struct {
		name string
		body string
		want error
		msg  string
	}{
		{"not JSON", `subject=7`, attestation.ErrMalformed, "not JSON"},
		{"an array", `[` + event(app, good, "") + `]`, attestation.ErrMalformed, "a JSON object"},
		{"two objects", event(app, good, "") + `{}`, attestation.ErrMalformed, "not JSON"},
		{"a member twice", event(app, good, `,"subject":"7"`), attestation.ErrMalformed, `"subject" appears twice`},
		{"an unknown member", event(app, good, `,"vin":"x"`), attestation.ErrMalformed, `unknown member "vin"`},
		{"data_base64", event(app, good, `,"data_base64":"AA=="`), attestation.ErrMalformed, "data_base64"},
		{"no subject", strings.Replace(event(app, good, ""), `"subject":"7",`, "", 1), attestation.ErrMalformed, "subject"},
		{"a DID subject", strings.Replace(event(app, good, ""), `"subject":"7"`, `"subject":"did:erc721:1:0x45:7"`, 1), attestation.ErrMalformed, "not a vehicle id"},
		{"a subject that is a number", strings.Replace(event(app, good, ""), `"subject":"7"`, `"subject":7`, 1), attestation.ErrMalformed, "subject must be a string"},
		{"another type", strings.Replace(event(app, good, ""), `dimo.attestation`, `dimo.status`, 1), attestation.ErrMalformed, "type must be"},
		{"another specversion", strings.Replace(event(app, good, ""), `"1.0"`, `"0.3"`, 1), attestation.ErrMalformed, "specversion"},
		{"a datacontenttype", event(app, good, `,"datacontenttype":"text/plain"`), attestation.ErrMalformed, "datacontenttype"},
		{"an id with a slash", strings.Replace(event(app, good, ""), `policy-1`, `policy/1`, 1), attestation.ErrMalformed, "an id is made of"},
		{"a time that is not RFC 3339", strings.Replace(event(app, good, ""), `2026-06-01T11:58:00.5Z`, `yesterday`, 1), attestation.ErrMalformed, "not RFC 3339"},
		{"tags that are not strings", strings.Replace(event(app, good, ""), `["insurance","policy"]`, `[1]`, 1), attestation.ErrMalformed, "tags"},
		{"an empty tag", strings.Replace(event(app, good, ""), `["insurance","policy"]`, `[""]`, 1), attestation.ErrMalformed, "a tag is"},
		{"no data", strings.Replace(event(app, good, ""), `,"data":`+data, "", 1), attestation.ErrMalformed, "data"},
		{"a source that is not an address", strings.Replace(event(app, good, ""), `"source":"`+app.Hex(), `"source":"dimo`, 1), attestation.ErrMalformed, "source"},
		{"a time six minutes ahead", strings.Replace(event(app, good, ""), `2026-06-01T11:58:00.5Z`, `2026-06-01T12:06:00Z`, 1), attestation.ErrTime, "more than 5m0s"},
		{"a time six minutes behind", strings.Replace(event(app, good, ""), `2026-06-01T11:58:00.5Z`, `2026-06-01T11:54:00Z`, 1), attestation.ErrTime, "more than 5m0s"},
		{"no signature", strings.Replace(event(app, good, ""), `"signature":"`+good+`",`, "", 1), attestation.ErrBadSignature, "required"},
		{"a short signature", event(app, good[:130], ""), attestation.ErrBadSignature, "130 hex digits"},
		{"a signature that is not hex", event(app, "0x"+strings.Repeat("zz", 65), ""), attestation.ErrBadSignature, "not hex"},
		{"a signature with v 0", event(app, good[:130]+"00", ""), attestation.ErrBadSignature, "v must be 27 or 28"},
		{"a signature by another key", event(app, sign(t, data, other), ""), attestation.ErrWrongSigner, "recovers to " + crypto.PubkeyToAddress(other.PublicKey).Hex()},
		{"a flipped bit in the signature", event(app, string(flipped), ""), attestation.ErrWrongSigner, "recovers to"},
		{"data changed after signing", strings.Replace(event(app, good, ""), `"insured": true`, `"insured": false`, 1), attestation.ErrWrongSigner, "recovers to"},
		{"data re-encoded after signing", strings.Replace(event(app, good, ""), `"insured": true`, `"insured":true`, 1), attestation.ErrWrongSigner, "recovers to"},
		{"a source that is not the signed-in app", event(crypto.PubkeyToAddress(other.PublicKey), sign(t, data, other), ""), attestation.ErrWrongSigner, "is not the signed-in app"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := attestation.Parse([]byte(c.body), app, now)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v containing %q", err, c.want, c.msg)
			}
		})
	}
}

func TestABodyOverTheLimitIsRefused(t *testing.T) {
	key := fixedKey(t, 1)
	app := crypto.PubkeyToAddress(key.PublicKey)
	big := `"` + strings.Repeat("x", attestation.MaxBody) + `"`
	body := `{"subject":"7","signature":"` + sign(t, big, key) + `","data":` + big + `}`
	if _, err := attestation.Parse([]byte(body), app, now); !errors.Is(err, attestation.ErrMalformed) || !strings.Contains(err.Error(), "more than 65536") {
		t.Fatal(err)
	}
}

// FuzzParse: the parser never crashes, refuses only with its four errors, and what it accepts verifies,
// names a vehicle and carries an id a path can hold.
func FuzzParse(f *testing.F) {
	key := fixedKey(f, 1)
	app := crypto.PubkeyToAddress(key.PublicKey)
	f.Add([]byte(event(app, sign(f, data, key), "")))
	f.Add([]byte(`{"subject":"7","signature":"` + sign(f, `"x"`, key) + `","data":"x"}`))
	f.Add([]byte(`{"subject":"7","signature":"` + sign(f, `{ }`, key) + `","data":{ },"tags":[]}`))
	f.Add([]byte(`{"subject":"7","subject":"8"}`))
	f.Add([]byte(`{"data":1}{}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := attestation.Parse(body, app, now)
		if err != nil {
			for _, k := range []error{attestation.ErrMalformed, attestation.ErrBadSignature, attestation.ErrWrongSigner, attestation.ErrTime} {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("an error without a code: %v", err)
		}
		if a.Verify() != nil || a.Source != app || a.Vehicle == 0 || attestation.CheckID(a.ID) != nil || a.Type != attestation.Type {
			t.Fatalf("accepted %+v", a)
		}
	})
}
