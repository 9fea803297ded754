package credential_test

import (
	"bytes"
	"encoding/json"
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

// gqlResult is a GraphQL answer: data, and each error's path and code.
type gqlResult struct {
	Data   map[string]json.RawMessage
	Errors []struct {
		Path       []any
		Extensions struct{ Code string }
	}
}

// graphQL runs query at the node as the bearer of token ("" for nobody).
func graphQL(t *testing.T, n *testnode.Node, token, query string) gqlResult {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequest("POST", n.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r gqlResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r gqlResult) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Extensions.Code
}

type vinVC struct {
	VehicleTokenID         *int
	Vin, RecordedBy        *string
	RecordedAt             *time.Time
	CountryCode            *string
	VehicleContractAddress *string
	ValidFrom, ValidTo     *time.Time
	RawVC                  string
}

const vinVCQuery = `{ vinVCLatest(tokenId: %d) { vehicleTokenId vin recordedBy recordedAt countryCode vehicleContractAddress validFrom validTo rawVC } }`

// latestVIN asks vinVCLatest about vehicle: the credential (nil for null) or the error code.
func latestVIN(t *testing.T, n *testnode.Node, token string, vehicle uint64) (*vinVC, string) {
	t.Helper()
	r := graphQL(t, n, token, fmt.Sprintf(vinVCQuery, vehicle))
	if c := r.code(); c != "" {
		if string(r.Data["vinVCLatest"]) != "null" && r.Data["vinVCLatest"] != nil {
			t.Fatalf("refused with %s, and data %s", c, r.Data["vinVCLatest"])
		}
		return nil, c
	}
	var v *vinVC
	if err := json.Unmarshal(r.Data["vinVCLatest"], &v); err != nil {
		t.Fatal(err)
	}
	return v, ""
}

// testVINVCLatest: DIMO's vinVCLatest answers with the latest VIN credential issued through the REST API,
// to the owner and apps with credentials, with no more disclosures than the caller's grant allows.
func testVINVCLatest(t *testing.T, w *world, owner string) {
	n := w.n
	expires := time.Now().Add(24 * time.Hour).Unix()
	appOwner := testnode.NewKey(t)
	newApp := func(perms ...string) string {
		app := n.App(t, appOwner)
		if perms != nil {
			n.Grant(t, w.owner, w.car, app.Address, expires, perms...)
		}
		return n.SignIn(t, app)
	}
	credsOnly := newApp(ledger.PermCredentials)
	credsAndData := newApp(ledger.PermCredentials, ledger.PermSignals, ledger.PermLocation)
	dataOnly := newApp(ledger.PermSignals, ledger.PermLocation, ledger.PermRaw)
	stranger := newApp()

	t.Run("a car no VIN credential was issued for answers null: the query issues none", func(t *testing.T) {
		bare := n.Vehicle(t, w.owner)
		if v, code := latestVIN(t, n, owner, bare); v != nil || code != "" {
			t.Fatalf("got %+v %s, want null", v, code)
		}
	})
	status, code, issued := ask(t, n, owner, w.car, `{"type":"vin"}`)
	if status != 200 {
		t.Fatalf("issuing: %d %s %s", status, code, issued)
	}
	t.Run("the owner gets the credential issued last, as issued, in DIMO's type", func(t *testing.T) {
		v, code := latestVIN(t, n, owner, w.car)
		if v == nil {
			t.Fatalf("refused: %s", code)
		}
		c, err := credential.Verify(v.RawVC, n.LogKey, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if v.RawVC != issued || !c.EvidenceChecked || *v.Vin != w.vin || *v.VehicleTokenID != int(w.car) ||
			!v.ValidFrom.Equal(c.IssuedAt) || !v.ValidTo.Equal(c.Expires) || !v.RecordedAt.Equal(c.MeasuredAt) ||
			v.CountryCode != nil || v.VehicleContractAddress != nil {
			t.Fatalf("vinVCLatest %+v for credential %+v", v, c)
		}
		ev, err := credential.DisclosedEvidence(v.RawVC)
		if err != nil || ev.Recorder().Hex() != *v.RecordedBy || *v.RecordedBy == "0x0000000000000000000000000000000000000000" {
			t.Fatalf("recordedBy %s, evidence %v", *v.RecordedBy, err)
		}
	})
	t.Run("an app granted credentials alone gets it without the evidence", func(t *testing.T) {
		v, code := latestVIN(t, n, credsOnly, w.car)
		if v == nil {
			t.Fatalf("refused: %s", code)
		}
		c, err := credential.Verify(v.RawVC, n.LogKey, time.Now())
		if err != nil || slices.Contains(c.Disclosed, "evidence") || c.VIN != w.vin || *v.Vin != w.vin {
			t.Fatalf("%v: disclosed %v", err, c.Disclosed)
		}
	})
	t.Run("an app granted credentials and the signals the records carry gets the evidence", func(t *testing.T) {
		v, _ := latestVIN(t, n, credsAndData, w.car)
		if v == nil || v.RawVC != issued {
			t.Fatalf("got %+v", v)
		}
	})
	for _, c := range []struct{ name, token, code string }{
		{"an app whose grant lacks credentials", dataOnly, "FORBIDDEN"},
		{"a stranger", stranger, "FORBIDDEN"},
		{"nobody", "", "UNAUTHENTICATED"},
	} {
		t.Run(c.name+" is refused", func(t *testing.T) {
			if v, code := latestVIN(t, n, c.token, w.car); v != nil || code != c.code {
				t.Fatalf("got %+v %s, want %s", v, code, c.code)
			}
		})
	}
	t.Run("an app's reads are in the owner's access log", func(t *testing.T) {
		var got int
		for _, e := range accessEntries(t, n, owner, w.car) {
			if strings.HasPrefix(e, "vinVCLatest by ") {
				got++
			}
		}
		if got != 4 { // credsOnly's and credsAndData's reads, dataOnly's and the stranger's refusals
			t.Fatalf("%d vinVCLatest entries, want 4", got)
		}
	})
}

// testVINVCAfterTransfer: the buyer gets no VIN credential issued under the seller.
func testVINVCAfterTransfer(t *testing.T, w *world, seller string) {
	if v, code := latestVIN(t, w.n, w.buyer, w.car); v != nil || code != "" {
		t.Fatalf("the buyer: %+v %s, want null", v, code)
	}
	if v, code := latestVIN(t, w.n, seller, w.car); v != nil || code != "FORBIDDEN" {
		t.Fatalf("the seller: %+v %s, want FORBIDDEN", v, code)
	}
}
