package credential_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
)

// credentialEntries returns the access log's credential issuances.
func credentialEntries(t *testing.T, w *world, token string) []string {
	t.Helper()
	var out []string
	for _, e := range accessEntries(t, w.n, token, w.car) {
		if strings.HasPrefix(e, "credential:") {
			out = append(out, e)
		}
	}
	return out
}

// testBadInput asks for credentials the request or the records cannot support: each is refused with its
// stable code and a message saying what is missing, and nothing is issued or logged as issued.
func testBadInput(t *testing.T, w *world, owner string) {
	n := w.n
	before := credentialEntries(t, w, owner)
	bare := n.Vehicle(t, w.owner) // a car with no device paired, ever
	silent := n.Vehicle(t, w.owner)
	n.PairedDevice(t, w.owner, silent, "hardware") // a car whose device never sent a record
	later, muchLater := rfc(w.end.Add(time.Hour)), rfc(w.end.Add(2*time.Hour))
	for _, c := range []struct {
		name    string
		vehicle uint64
		body    string
		status  int
		code    string
		msg     string
	}{
		{"a body that is not JSON", w.car, `type=odometer`, 400, "malformed", "must be a JSON object"},
		{"an unknown member", w.car, `{"type":"odometer","when":"2026-01-01T00:00:00Z"}`, 400, "malformed", `unknown field "when"`},
		{"two JSON values", w.car, `{"type":"vin"}{"type":"vin"}`, 400, "malformed", "more than one JSON value"},
		{"no type", w.car, `{}`, 400, "unknown_credential_type", `the body needs "type"`},
		{"an unknown type", w.car, `{"type":"speeding"}`, 400, "unknown_credential_type", `unknown credential type "speeding"`},
		{"a mileage without from", w.car, `{"type":"mileage","to":"` + rfc(w.end) + `"}`, 400, "missing_time", "mileage needs from and to"},
		{"a movement without to", w.car, `{"type":"movement","from":"` + rfc(w.start) + `"}`, 400, "missing_time", "movement needs from and to"},
		{"a time that is not RFC 3339", w.car, `{"type":"odometer","at":"yesterday"}`, 400, "missing_time", `at "yesterday" is not RFC 3339`},
		{"inverted dates", w.car, `{"type":"mileage","from":"` + rfc(w.end) + `","to":"` + rfc(w.start) + `"}`, 400, "inverted_period", "from is not before to"},
		{"an empty period", w.car, `{"type":"movement","from":"` + rfc(w.start) + `","to":"` + rfc(w.start) + `"}`, 400, "inverted_period", "from is not before to"},
		{"a holder key that is not a JWK", w.car, `{"type":"vin","holder_key":{"kty":"none"}}`, 400, "bad_holder_key", "holder key"},
		{"an odometer of a car that sent no reading", silent, `{"type":"odometer"}`, 422, "no_readings", "no powertrainTransmissionTravelledDistance measured"},
		{"a VIN of a car that sent no reading", silent, `{"type":"vin"}`, 422, "no_readings", "no vehicleIdentificationVIN measured"},
		{"a mileage over a period with no readings", w.car, `{"type":"mileage","from":"` + later + `","to":"` + muchLater + `"}`,
			422, "no_readings", "no odometer reading between from"},
		{"a movement over a period with no positions", w.car, `{"type":"movement","from":"` + later + `","to":"` + muchLater + `"}`,
			422, "no_readings", "no position between from"},
		{"a car without a paired device", bare, `{"type":"odometer"}`, 422, "no_paired_device", "no device was paired to the vehicle between"},
		{"a car without a paired device in the period", bare, `{"type":"mileage","from":"` + rfc(time.Now()) + `","to":"` + rfc(time.Now().Add(time.Hour)) + `"}`,
			422, "no_paired_device", "no device was paired to the vehicle between"},
		{"a period before the caller owned the car", bare, `{"type":"mileage","from":"` + rfc(w.start) + `","to":"` + rfc(w.end) + `"}`,
			403, "before_ownership", "when the vehicle changed hands"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, code, msg := ask(t, n, owner, c.vehicle, c.body)
			if status != c.status || code != c.code || !strings.Contains(msg, c.msg) {
				t.Fatalf("got %d %s %q; want %d %s containing %q", status, code, msg, c.status, c.code, c.msg)
			}
		})
	}
	if after := credentialEntries(t, w, owner); !slices.Equal(after, before) {
		t.Fatalf("refused requests were logged as issued:\nbefore %q\nafter  %q", before, after)
	}
}

// testPermissions asks for each credential type as the owner, apps with and without `credentials`, after
// a revoke, after a transfer, as a stranger and as nobody. It transfers the car: run it last.
func testPermissions(t *testing.T, w *world, owner string) {
	n := w.n
	mileage := `{"type":"mileage","from":"` + rfc(w.start.Add(10*time.Minute)) + `","to":"` + rfc(w.end) + `"}`
	bodies := map[string]string{
		"odometer": `{"type":"odometer","at":"` + rfc(w.start.Add(time.Hour)) + `"}`,
		"mileage":  mileage,
		"movement": `{"type":"movement","from":"` + rfc(w.start) + `","to":"` + rfc(w.end) + `"}`,
		"vin":      `{"type":"vin"}`,
	}
	appOwner := testnode.NewKey(t)
	expires := time.Now().Add(24 * time.Hour).Unix()
	newApp := func(perms ...string) (testnode.Key, string) {
		app := n.App(t, appOwner)
		if perms != nil {
			n.Grant(t, w.owner, w.car, app.Address, expires, perms...)
		}
		return app, n.SignIn(t, app)
	}
	_, credsOnly := newApp(ledger.PermCredentials)
	_, credsAndData := newApp(ledger.PermCredentials, ledger.PermSignals, ledger.PermLocation)
	_, credsAndOdometer := newApp(ledger.PermCredentials, ledger.SignalPermission(credential.SignalOdometer))
	_, dataOnly := newApp(ledger.PermSignals, ledger.PermLocation, ledger.PermRaw)
	revoked, revokedToken := newApp(ledger.PermCredentials, ledger.PermSignals, ledger.PermLocation)
	_, strangerToken := newApp()
	rv := &ledger.Tx{Type: ledger.TypeRevoke, App: revoked.Address}
	rv.VehicleID.SetUint64(w.car)
	n.Submit(t, rv, w.owner)

	// withheld is what a caller gets of each type: "" the whole credential, "evidence" or "cells" the
	// credential without that disclosure, or the refusal's code.
	type want struct{ odometer, mileage, movement, vin string }
	everything := want{"", "", "", ""}
	check := func(t *testing.T, token string, w2 want) {
		t.Helper()
		for _, typ := range credential.Types {
			expect := map[string]string{"odometer": w2.odometer, "mileage": w2.mileage, "movement": w2.movement, "vin": w2.vin}[typ]
			status, code, body, h := askHeader(t, n, token, w.car, bodies[typ])
			switch expect {
			case "", "evidence", "cells":
				if status != 200 {
					t.Fatalf("%s: %d %s %s", typ, status, code, body)
				}
				if got := h.Get("Glovebox-Withheld"); got != expect {
					t.Fatalf("%s: withheld %q, want %q (signals %q)", typ, got, expect, h.Get("Glovebox-Withheld-Signals"))
				}
				c, err := credential.Verify(body, n.LogKey, time.Now())
				if err != nil {
					t.Fatalf("%s: %v", typ, err)
				}
				hasEvidence := slices.Contains(c.Disclosed, "evidence")
				hasCells := slices.Contains(c.Disclosed, "cells")
				if hasEvidence != (expect == "" && typ != "movement") || hasCells != (expect == "" && typ == "movement") {
					t.Fatalf("%s: disclosed %v with %q withheld", typ, c.Disclosed, expect)
				}
			default:
				if code != expect {
					t.Fatalf("%s: %d %s %s; want %s", typ, status, code, body, expect)
				}
			}
		}
	}
	before := credentialEntries(t, w, owner)
	t.Run("the owner gets every credential with all its disclosures", func(t *testing.T) { check(t, owner, everything) })
	t.Run("an app granted credentials and the signals the records carry gets them all", func(t *testing.T) {
		check(t, credsAndData, everything)
	})
	t.Run("an app granted credentials alone gets the claims without evidence or cells", func(t *testing.T) {
		check(t, credsOnly, want{"evidence", "evidence", "cells", "evidence"})
		_, _, _, h := askHeader(t, n, credsOnly, w.car, mileage)
		if got := h.Get("Glovebox-Withheld-Signals"); !strings.Contains(got, credential.SignalOdometer) || !strings.Contains(got, "speed") {
			t.Fatalf("withheld signals %q", got)
		}
	})
	t.Run("an app granted credentials and the odometer signal alone gets no evidence, whose records carry more", func(t *testing.T) {
		check(t, credsAndOdometer, want{"evidence", "evidence", "cells", "evidence"})
		_, _, _, h := askHeader(t, n, credsAndOdometer, w.car, mileage)
		if got := h.Get("Glovebox-Withheld-Signals"); strings.Contains(got, credential.SignalOdometer) || got == "" {
			t.Fatalf("withheld signals %q", got)
		}
	})
	refused := want{"forbidden", "forbidden", "forbidden", "forbidden"}
	t.Run("an app whose grant lacks credentials gets none", func(t *testing.T) { check(t, dataOnly, refused) })
	t.Run("an app whose grant was revoked gets none", func(t *testing.T) { check(t, revokedToken, refused) })
	t.Run("a stranger gets none", func(t *testing.T) { check(t, strangerToken, refused) })
	t.Run("nobody gets none", func(t *testing.T) {
		check(t, "", want{"unauthenticated", "unauthenticated", "unauthenticated", "unauthenticated"})
	})
	t.Run("every issuance and only those are in the access log", func(t *testing.T) {
		after := credentialEntries(t, w, owner)
		// Four types for the owner and three apps, and the two mileages asked again for their headers.
		if got := len(after) - len(before); got != 4*4+2 {
			t.Fatalf("%d new issuances logged, want 18:\n%s", got, strings.Join(after[len(before):], "\n"))
		}
	})

	buyer := testnode.NewKey(t)
	tr := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
	tr.VehicleID.SetUint64(w.car)
	n.Submit(t, tr, w.owner)
	w.buyer = n.SignIn(t, buyer)
	t.Run("after a transfer the new owner gets no credential about the previous owner's period", func(t *testing.T) {
		check(t, n.SignIn(t, buyer), want{"before_ownership", "before_ownership", "before_ownership", "no_readings"})
	})
	t.Run("after a transfer the previous owner and its apps get none", func(t *testing.T) {
		check(t, owner, refused)
		check(t, credsAndData, refused)
	})
}

// A header check that the refusals above carry the challenge a client needs.
func TestNobodyIsAskedToSignIn(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/vehicles/1/credentials", n.URL), strings.NewReader(`{"type":"vin"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
