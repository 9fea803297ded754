package credential_test

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/tlog"
)

// FuzzVerify: the verifier, which reads files from anyone, never crashes and refuses only with a
// *Failure naming a check.
func FuzzVerify(f *testing.F) {
	skey, vkey, err := tlog.GenerateKey("glovebox.test/fuzz")
	if err != nil {
		f.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		f.Fatal(err)
	}
	is, err := credential.NewIssuer("https://node.example", signer, vkey, telemetry.DefaultCatalog)
	if err != nil {
		f.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []*credential.Claims{
		{Facts: credential.Facts{Type: "mileage", From: at, To: at.Add(90 * 24 * time.Hour), Distance: 8412}},
		{Facts: credential.Facts{Type: "movement", From: at, To: at.Add(time.Hour), Cells: []string{"881f1d4887fffff", "881f1d4881fffff"}}},
		{Facts: credential.Facts{Type: "vin", VIN: "1HGCM82633A004352", MeasuredAt: at}, Expires: at.Add(time.Hour)},
	} {
		c.Issuer, c.VCT, c.IssuedAt, c.VehicleID = "https://node.example", credential.VCT(c.Type), at, 7
		s, err := credential.Reissue(is, c, &credential.Evidence{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s)
	}
	f.Add("e30.e30.e30~WyJhIiwiYiIsMV0~")
	f.Add("~~~")
	f.Fuzz(func(t *testing.T, s string) {
		_, err := credential.Verify(s, vkey, at)
		var fl *credential.Failure
		if err != nil && !errors.As(err, &fl) {
			t.Fatalf("a refusal that names no check: %v", err)
		}
	})
}
