package attestation_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
)

// call sends method path with body as the bearer of token and returns the status and the body.
func call(t *testing.T, n *testnode.Node, token, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, n.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func errCode(b []byte) string {
	var e struct{ Error struct{ Code string } }
	json.Unmarshal(b, &e)
	return e.Error.Code
}

// listed returns the ids attestations lists for the bearer of token, or the error code.
func listed(t *testing.T, n *testnode.Node, token string, vehicle uint64, args string) ([]string, string) {
	t.Helper()
	q := fmt.Sprintf(`{ attestations(tokenId: %d%s) { id vehicleTokenId time attestation type source dataVersion producer signature tags } }`, vehicle, args)
	body, _ := json.Marshal(map[string]string{"query": q})
	_, b := call(t, n, token, "POST", "/graphql", string(body))
	var r struct {
		Data struct {
			Attestations []struct{ ID, Attestation, Source, Signature string }
		}
		Errors []struct{ Extensions struct{ Code string } }
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if len(r.Errors) > 0 {
		return nil, r.Errors[0].Extensions.Code
	}
	ids := []string{}
	for _, a := range r.Data.Attestations {
		ids = append(ids, a.ID)
	}
	return ids, ""
}

func TestAppsAttestAndTheOwnerSeesAndDeletes(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	car := n.Vehicle(t, owner)
	other := n.Vehicle(t, owner)
	ownerToken := n.SignIn(t, owner)
	appOwner := testnode.NewKey(t)
	expires := time.Now().Add(24 * time.Hour).Unix()
	newApp := func(perms ...string) (testnode.Key, string) {
		app := n.App(t, appOwner)
		if perms != nil {
			n.Grant(t, owner, car, app.Address, expires, perms...)
		}
		return app, n.SignIn(t, app)
	}
	insurer, insurerToken := newApp(ledger.PermSignals) // attests, may not list
	garage, garageToken := newApp(ledger.PermCredentials)
	revoked, revokedToken := newApp(ledger.PermCredentials)
	stranger, strangerToken := newApp()
	rv := &ledger.Tx{Type: ledger.TypeRevoke, App: revoked.Address}
	rv.VehicleID.SetUint64(car)
	n.Submit(t, rv, owner)

	attest := func(app testnode.Key, id, subject, data string) string {
		return fmt.Sprintf(`{"id":%q,"source":%q,"subject":%q,"type":"dimo.attestation","time":%q,"signature":%q,"data":%s}`,
			id, app.Address.Hex(), subject, time.Now().UTC().Format(time.RFC3339Nano), sign(t, data, app.Key), data)
	}
	policy := `{"subject":"` + fmt.Sprint(car) + `","insured":true}`

	t.Run("an app with a grant posts its signed statement and it is stored", func(t *testing.T) {
		status, b := call(t, n, insurerToken, "POST", "/v1/attestations", attest(insurer, "policy-1", fmt.Sprint(car), policy))
		if status != 201 {
			t.Fatalf("%d %s", status, b)
		}
		var v struct{ ID, Source, Path string }
		json.Unmarshal(b, &v)
		if v.ID != "policy-1" || v.Source != insurer.Address.Hex() || v.Path != fmt.Sprintf("/v1/vehicles/%d/attestations/%s/policy-1", car, insurer.Address.Hex()) {
			t.Fatalf("%s", b)
		}
		status, b = call(t, n, garageToken, "POST", "/v1/attestations", attest(garage, "service-1", fmt.Sprint(car), `"service done"`))
		if status != 201 {
			t.Fatalf("%d %s", status, b)
		}
	})

	t.Run("bad input is refused with its code and nothing is stored", func(t *testing.T) {
		good := attest(insurer, "bad-1", fmt.Sprint(car), policy)
		for _, c := range []struct {
			name, token, body string
			status            int
			code              string
		}{
			{"a malformed CloudEvent", insurerToken, `{"subject":"1","data":`, 400, "malformed_attestation"},
			{"a bad signature", insurerToken, strings.Replace(good, `"signature":"0x`, `"signature":"0xzz`, 1), 400, "attestation_bad_signature"},
			{"a signature by another key", insurerToken, strings.Replace(good, sign(t, policy, insurer.Key), sign(t, policy, garage.Key), 1), 403, "attestation_wrong_signer"},
			{"another app's statement", garageToken, good, 403, "attestation_wrong_signer"},
			{"an app without a grant", strangerToken, attest(stranger, "bad-2", fmt.Sprint(car), policy), 403, "attestation_no_grant"},
			{"an app whose grant was revoked", revokedToken, attest(revoked, "bad-3", fmt.Sprint(car), policy), 403, "attestation_no_grant"},
			{"an app about a car it has no grant on", insurerToken, attest(insurer, "bad-4", fmt.Sprint(other), policy), 403, "attestation_no_grant"},
			{"the owner", ownerToken, attest(owner, "bad-5", fmt.Sprint(car), policy), 403, "attestation_no_grant"},
			{"an unknown car", insurerToken, attest(insurer, "bad-6", "999", policy), 404, "unknown_vehicle"},
			{"nobody", "", good, 401, "unauthenticated"},
			{"the same id again", insurerToken, attest(insurer, "policy-1", fmt.Sprint(car), `{"insured":false}`), 409, "attestation_exists"},
			{"a body over 64 KiB", insurerToken, attest(insurer, "bad-7", fmt.Sprint(car), `"`+strings.Repeat("x", 64<<10)+`"`), 413, "attestation_too_large"},
		} {
			t.Run(c.name, func(t *testing.T) {
				status, b := call(t, n, c.token, "POST", "/v1/attestations", c.body)
				if status != c.status || errCode(b) != c.code {
					t.Fatalf("%d %s, want %d %s", status, b, c.status, c.code)
				}
			})
		}
		if ids, code := listed(t, n, ownerToken, car, `, filter: {limit: 100}`); code != "" || !slices.Equal(ids, []string{"service-1", "policy-1"}) {
			t.Fatalf("stored: %v %s", ids, code)
		}
	})

	t.Run("the owner and apps with credentials list them; others are refused", func(t *testing.T) {
		for _, c := range []struct {
			name, token, args string
			ids               []string
			code              string
		}{
			{"the owner", ownerToken, "", []string{"service-1", "policy-1"}, ""},
			{"an app with credentials", garageToken, "", []string{"service-1", "policy-1"}, ""},
			{"filtered by source", ownerToken, `, filter: {source: "` + insurer.Address.Hex() + `"}`, []string{"policy-1"}, ""},
			{"filtered by tags", ownerToken, `, filter: {tags: {containsAny: ["x"]}}`, []string{}, ""},
			{"limited", ownerToken, `, filter: {limit: 1}`, []string{"service-1"}, ""},
			{"by subject", ownerToken, `, subject: "` + fmt.Sprint(car) + `"`, []string{"service-1", "policy-1"}, ""},
			{"by another subject", ownerToken, `, subject: "did:erc721:1:0x45:7"`, []string{}, ""},
			{"the other car", ownerToken, "", nil, ""},
			{"an app that attested without credentials", insurerToken, "", nil, "FORBIDDEN"},
			{"an app whose grant was revoked", revokedToken, "", nil, "FORBIDDEN"},
			{"a stranger", strangerToken, "", nil, "FORBIDDEN"},
			{"nobody", "", "", nil, "UNAUTHENTICATED"},
			{"a limit over 100", ownerToken, `, filter: {limit: 101}`, nil, "BAD_REQUEST"},
		} {
			t.Run(c.name, func(t *testing.T) {
				vehicle := car
				if c.name == "the other car" {
					vehicle, c.ids = other, []string{}
				}
				ids, code := listed(t, n, c.token, vehicle, c.args)
				if code != c.code || !slices.Equal(ids, c.ids) {
					t.Fatalf("got %v %s, want %v %s", ids, code, c.ids, c.code)
				}
			})
		}
		body, _ := json.Marshal(map[string]string{"query": `{ attestations(subject: "1") { id } }`})
		if _, b := call(t, n, ownerToken, "POST", "/graphql", string(body)); !bytes.Contains(b, []byte("BAD_REQUEST")) {
			t.Fatalf("without tokenId: %s", b)
		}
	})

	t.Run("a listed attestation verifies: personal_sign over attestation recovers source", func(t *testing.T) {
		q, _ := json.Marshal(map[string]string{"query": fmt.Sprintf(`{ attestations(tokenId: %d, filter: {id: "policy-1"}) { attestation source signature } }`, car)})
		_, b := call(t, n, ownerToken, "POST", "/graphql", string(q))
		var r struct {
			Data struct {
				Attestations []struct{ Attestation, Source, Signature string }
			}
		}
		json.Unmarshal(b, &r)
		if len(r.Data.Attestations) != 1 {
			t.Fatalf("%s", b)
		}
		a := r.Data.Attestations[0]
		if a.Attestation != policy || a.Source != insurer.Address.Hex() || a.Signature != sign(t, policy, insurer.Key) {
			t.Fatalf("%+v", a)
		}
	})

	t.Run("posting and listing by apps are in the owner's access log", func(t *testing.T) {
		var got []string
		for range 50 { // the recorder writes in the background
			_, b := call(t, n, ownerToken, "GET", fmt.Sprintf("/v1/vehicles/%d/access", car), "")
			var page struct {
				Entries []struct{ Query, Caller, Outcome string }
			}
			json.Unmarshal(b, &page)
			got = got[:0]
			for _, e := range page.Entries {
				if strings.HasPrefix(e.Query, "attestation") {
					got = append(got, e.Query+" "+e.Caller+" "+e.Outcome)
				}
			}
			if slices.Contains(got, "attestation:policy-1 "+insurer.Address.Hex()+" ok") &&
				slices.Contains(got, "attestations "+garage.Address.Hex()+" ok") {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("access log: %q", got)
	})

	t.Run("only the owner deletes, at a stable path", func(t *testing.T) {
		path := fmt.Sprintf("/v1/vehicles/%d/attestations/%s/policy-1", car, insurer.Address.Hex())
		for _, c := range []struct {
			name, token, path string
			status            int
			code              string
		}{
			{"the app that attested", insurerToken, path, 403, "forbidden"},
			{"an app with credentials", garageToken, path, 403, "forbidden"},
			{"nobody", "", path, 401, "unauthenticated"},
			{"a bad source", ownerToken, fmt.Sprintf("/v1/vehicles/%d/attestations/0x12/policy-1", car), 400, "malformed"},
			{"another car", ownerToken, fmt.Sprintf("/v1/vehicles/%d/attestations/%s/policy-1", other, insurer.Address.Hex()), 404, "unknown_attestation"},
			{"the owner", ownerToken, path, 204, ""},
			{"the owner again", ownerToken, path, 404, "unknown_attestation"},
		} {
			t.Run(c.name, func(t *testing.T) {
				status, b := call(t, n, c.token, "DELETE", c.path, "")
				if status != c.status || errCode(b) != c.code {
					t.Fatalf("%d %s, want %d %s", status, b, c.status, c.code)
				}
			})
		}
		if ids, _ := listed(t, n, ownerToken, car, ""); !slices.Equal(ids, []string{"service-1"}) {
			t.Fatalf("after delete: %v", ids)
		}
	})

	t.Run("after a transfer the buyer sees none of the seller's period", func(t *testing.T) {
		buyer := testnode.NewKey(t)
		tr := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
		tr.VehicleID.SetUint64(car)
		n.Submit(t, tr, owner)
		if ids, code := listed(t, n, n.SignIn(t, buyer), car, ""); code != "" || len(ids) != 0 {
			t.Fatalf("the buyer: %v %s", ids, code)
		}
		if _, code := listed(t, n, ownerToken, car, ""); code != "FORBIDDEN" {
			t.Fatalf("the seller: %s", code)
		}
	})
}
