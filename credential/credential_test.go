package credential_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/tlog"
)

// world is a node holding two hours of a simulated car's signed records, measured ten hours ago.
type world struct {
	n      *testnode.Node
	owner  testnode.Key
	car    uint64
	vin    string
	start  time.Time // the first simulated record
	end    time.Time // the last
	issuer *credential.Issuer
	buyer  string // the token of whom testPermissions sold the car to
}

func newWorld(t *testing.T) *world {
	t.Helper()
	var behind atomic.Int64
	behind.Store(int64(10 * time.Hour))
	clock := func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }
	n := testnode.Start(t, testnode.Options{Origin: "glovebox.test/credentials", Now: clock})
	ctx := context.Background()
	specs := sim.Specs(15, 1)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := sim.Setup(ctx, n.Client, specs, quiet, nil); err != nil {
		t.Fatal(err)
	}
	w := &world{n: n, owner: testnode.Key{Key: specs[0].OwnerKey, Address: specs[0].Owner}, car: specs[0].VehicleID, vin: specs[0].VIN}
	w.start = clock().Add(time.Second).Truncate(time.Second)
	fleet, err := sim.NewFleetFromSpecs(15, specs, w.start)
	if err != nil {
		t.Fatal(err)
	}
	var subs []telemetry.Submission
	for range 2 * 3600 / 5 {
		subs = append(subs, sim.Submissions(fleet.Step(5*time.Second))...)
	}
	w.end = fleet.Now()
	behind.Store(0)
	post(t, n, subs)
	if _, err := n.Telemetry.Index(ctx); err != nil {
		t.Fatal(err)
	}
	skey, err := os.ReadFile(filepath.Join(n.Dir, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	if w.issuer, err = credential.NewIssuer(n.URL, signer, n.LogKey, telemetry.DefaultCatalog); err != nil {
		t.Fatal(err)
	}
	return w
}

func post(t *testing.T, n *testnode.Node, subs []telemetry.Submission) {
	t.Helper()
	for len(subs) > 0 {
		k := min(len(subs), 1000)
		res, err := n.Client.PostEvents(context.Background(), subs[:k])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Status != telemetry.StatusAccepted && r.Status != telemetry.StatusDuplicate {
				t.Fatalf("record: %+v", r)
			}
		}
		subs = subs[k:]
	}
}

func signIn(t *testing.T, n *testnode.Node, k testnode.Key) string {
	t.Helper()
	resp, err := http.Get(n.URL + "/v1/auth/challenge?address=" + k.Address.Hex())
	if err != nil {
		t.Fatal(err)
	}
	var ch struct{ Message string }
	json.NewDecoder(resp.Body).Decode(&ch)
	resp.Body.Close()
	h := ledger.PersonalHash([]byte(ch.Message))
	sig, _ := crypto.Sign(h[:], k.Key)
	sig[64] += 27
	resp, err = http.PostForm(n.URL+"/oauth/token", url.Values{"grant_type": {"urn:glovebox:params:oauth:grant-type:siwe"},
		"message": {ch.Message}, "signature": {fmt.Sprintf("0x%x", sig)}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

// ask posts a credential request and returns the status, the error code (if any) and the body.
func ask(t *testing.T, n *testnode.Node, token string, vehicle uint64, body string) (int, string, string) {
	t.Helper()
	status, code, out, _ := askHeader(t, n, token, vehicle, body)
	return status, code, out
}

// askHeader is ask, also returning the response's headers.
func askHeader(t *testing.T, n *testnode.Node, token string, vehicle uint64, body string) (int, string, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/vehicles/%d/credentials", n.URL, vehicle), strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/dc+sd-jwt" {
			t.Fatalf("Content-Type %q", ct)
		}
		return 200, "", string(b), resp.Header
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	return resp.StatusCode, e.Error.Code, e.Error.Message, resp.Header
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// accessEntries returns the queries of the vehicle's access log.
func accessEntries(t *testing.T, n *testnode.Node, token string, vehicle uint64) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/vehicles/%d/access", n.URL, vehicle), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	var out []string
	for range 50 { // the recorder writes in the background, within 100 ms
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Entries []struct {
				Query  string
				Caller string
			}
		}
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		out = out[:0]
		for _, e := range page.Entries {
			out = append(out, e.Query+" by "+e.Caller)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

func TestCredentials(t *testing.T) {
	w := newWorld(t)
	n := w.n
	owner := signIn(t, n, w.owner)
	mid := w.start.Add(time.Hour)
	issued := map[string]string{}

	t.Run("each type round-trips from the simulator's records and verifies offline with the log key alone", func(t *testing.T) {
		for _, c := range []struct{ typ, body string }{
			{"odometer", `{"type":"odometer","at":"` + rfc(mid) + `"}`},
			{"mileage", `{"type":"mileage","from":"` + rfc(w.start.Add(10*time.Minute)) + `","to":"` + rfc(w.end) + `"}`},
			{"movement", `{"type":"movement","from":"` + rfc(w.start) + `","to":"` + rfc(w.end) + `"}`},
			{"vin", `{"type":"vin"}`},
		} {
			status, code, body := ask(t, n, owner, w.car, c.body)
			if status != 200 {
				t.Fatalf("%s: %d %s %s", c.typ, status, code, body)
			}
			issued[c.typ] = body
			got, err := credential.Verify(body, n.LogKey, time.Now())
			if err != nil {
				t.Fatalf("%s: %v", c.typ, err)
			}
			if got.Type != c.typ || got.Issuer != n.URL || got.VehicleID != w.car || got.EvidenceChecked != (c.typ != "movement") {
				t.Fatalf("%s: %+v", c.typ, got)
			}
			switch c.typ {
			case "odometer":
				if got.Odometer <= 0 || got.MeasuredAt.After(mid) || mid.Sub(got.MeasuredAt) > time.Hour || got.Expires.IsZero() {
					t.Fatalf("odometer: %+v", got)
				}
			case "mileage":
				if got.Distance <= 0 || got.Distance > 300 || !got.Expires.IsZero() {
					t.Fatalf("mileage: %v km over two hours, expires %v", got.Distance, got.Expires)
				}
			case "movement":
				if len(got.Cells) != 2 || got.Cells[0] == got.Cells[1] {
					t.Fatalf("movement: cells %v", got.Cells)
				}
			case "vin":
				if got.VIN != w.vin {
					t.Fatalf("vin: %q, want %q", got.VIN, w.vin)
				}
			}
		}
	})

	t.Run("every issuance is in the vehicle's access log, naming the caller", func(t *testing.T) {
		got := strings.Join(accessEntries(t, n, owner, w.car), "\n")
		for _, typ := range []string{"odometer", "mileage", "movement", "vin"} {
			if !strings.Contains(got, "credential:"+typ+" by "+w.owner.Address.Hex()) {
				t.Fatalf("access log lacks credential:%s:\n%s", typ, got)
			}
		}
	})

	t.Run("movement never discloses a coordinate", func(t *testing.T) {
		decoded := decodeAll(t, issued["movement"])
		for _, s := range []string{"latitude", "longitude", "currentLocation", "evidence"} {
			if strings.Contains(decoded, s) {
				t.Fatalf("the movement credential holds %q:\n%s", s, decoded)
			}
		}
	})

	t.Run("a mileage shown without its disclosures says the number, the period and the issuer only", func(t *testing.T) {
		bare, err := credential.Present(issued["mileage"])
		if err != nil {
			t.Fatal(err)
		}
		got, err := credential.Verify(bare, n.LogKey, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if got.VehicleID != 0 || got.EvidenceChecked || len(got.Disclosed) != 0 {
			t.Fatalf("%+v", got)
		}
		jwt, _, _ := strings.Cut(bare, "~")
		_, payload, _ := strings.Cut(jwt, ".")
		payload, _, _ = strings.Cut(payload, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(payload)
		var claims map[string]any
		json.Unmarshal(raw, &claims)
		var names []string
		for k := range claims {
			names = append(names, k)
		}
		for _, k := range names {
			switch k {
			case "iss", "iat", "vct", "_sd", "_sd_alg", "from", "to", "distance_km":
			default:
				t.Fatalf("the bare mileage says %s: %s", k, raw)
			}
		}
		if strings.Contains(string(raw), w.vin) || strings.Contains(string(raw), w.owner.Address.Hex()[2:]) {
			t.Fatalf("the bare mileage identifies the car: %s", raw)
		}
	})

	t.Run("tampering is refused, naming why", func(t *testing.T) {
		odo, mileage := issued["odometer"], issued["mileage"]
		claimsOf := func(s string) *credential.Claims {
			c, err := credential.Verify(s, n.LogKey, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		odoEv, err := credential.EvidenceOf(odo)
		if err != nil || odoEv == nil {
			t.Fatal(err)
		}
		milEv, _ := credential.EvidenceOf(mileage)
		forge := func(s string, edit func(ev *credential.Evidence)) string {
			ev, _ := credential.EvidenceOf(s)
			edit(ev)
			out, err := credential.Reissue(w.issuer, claimsOf(s), ev)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		otherKey := testnode.NewKey(t)
		otherSkey, _, _ := tlog.GenerateKey("glovebox.test/credentials")
		otherSigner, _ := note.NewSigner(otherSkey)
		jwt, rest, _ := strings.Cut(odo, "~")
		parts := strings.Split(jwt, ".")

		for _, c := range []struct {
			name, cred, check, msg string
			now                    time.Time
		}{
			{name: "a changed claim", check: credential.CheckSignature, msg: "does not verify",
				cred: func() string {
					raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
					raw = bytes.Replace(raw, []byte(`"odometer_km":`), []byte(`"odometer_km":1`), 1)
					return parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2] + "~" + rest
				}()},
			{name: "an altered disclosure", check: credential.CheckDisclosures, msg: "not one the issuer signed",
				cred: func() string {
					ds := strings.Split(rest, "~")
					raw, _ := base64.RawURLEncoding.DecodeString(ds[0])
					raw = bytes.Replace(raw, []byte(fmt.Sprint(w.car)), []byte(fmt.Sprint(w.car+1)), 1)
					ds[0] = base64.RawURLEncoding.EncodeToString(raw)
					return jwt + "~" + strings.Join(ds, "~")
				}()},
			{name: "a disclosure from another credential", check: credential.CheckDisclosures, msg: "not one the issuer signed",
				cred: func() string {
					_, mrest, _ := strings.Cut(mileage, "~")
					return jwt + "~" + mrest
				}()},
			{name: "the evidence without the vehicle id it is checked against", check: credential.CheckDisclosures, msg: "without vehicle_id",
				cred: func() string {
					ev, _ := credential.Present(odo, "evidence")
					return ev
				}()},
			{name: "a swapped record", check: credential.CheckClaim, msg: "the records do not support the claim",
				cred: forge(odo, func(ev *credential.Evidence) { ev.Records[0] = milEv.Records[len(milEv.Records)-1] })},
			{name: "a record from a device not paired at that time", check: credential.CheckRecord, msg: "but pairing entry",
				cred: forge(odo, func(ev *credential.Evidence) {
					var m map[string]any
					json.Unmarshal([]byte(ev.Records[0].Event), &m)
					m["source"] = otherKey.Address.Hex()
					b, _ := json.Marshal(m)
					s, _ := telemetry.Sign(b, otherKey.Key)
					ev.Records[0].Event, ev.Records[0].Signature = string(b), fmt.Sprintf("0x%x", s.Signature)
				})},
			{name: "a record whose signature is not its device's", check: credential.CheckRecord, msg: "not by its source",
				cred: forge(odo, func(ev *credential.Evidence) {
					s, _ := telemetry.Sign([]byte(ev.Records[0].Event), otherKey.Key)
					ev.Records[0].Signature = fmt.Sprintf("0x%x", s.Signature)
				})},
			{name: "a proof for another entry", check: credential.CheckPairing, msg: "inclusion proof does not verify",
				cred: forge(odo, func(ev *credential.Evidence) { ev.Pairings[0].Start.Index-- })},
			{name: "another entry with the pairing's proof", check: credential.CheckPairing, msg: "inclusion proof does not verify",
				cred: forge(odo, func(ev *credential.Evidence) { ev.Pairings[0].Start.Entry[len(ev.Pairings[0].Start.Entry)-1] ^= 1 })},
			{name: "a checkpoint signed by another key", check: credential.CheckCheckpoint, msg: "not signed by the log key",
				cred: forge(odo, func(ev *credential.Evidence) {
					text := strings.SplitN(ev.Checkpoint, "\n\n", 2)[0] + "\n"
					signed, err := note.Sign(&note.Note{Text: text}, otherSigner)
					if err != nil {
						t.Fatal(err)
					}
					ev.Checkpoint = string(signed)
				})},
			{name: "an expired credential", check: credential.CheckExpiry, msg: "expired", cred: odo, now: time.Now().Add(31 * 24 * time.Hour)},
			// A rollback hidden in a silence of 25 hours (over MaxReadingGap) while the odometer moved.
			{name: "a mileage whose readings leave out a rollback", check: credential.CheckClaim, msg: "more than 24h0m0s apart while the car moved",
				cred: w.forgedMileage(t, claimsOf(mileage), milEv, 5, odoAt{0, 100000}, odoAt{25 * time.Hour, 100005})},
			{name: "a mileage whose chain decreases", check: credential.CheckClaim, msg: "the odometer went backwards: 100000 km",
				cred: w.forgedMileage(t, claimsOf(mileage), milEv, 5, odoAt{0, 100000}, odoAt{time.Hour, 99990}, odoAt{time.Hour, 100005})},
		} {
			t.Run(c.name, func(t *testing.T) {
				now := c.now
				if now.IsZero() {
					now = time.Now()
				}
				_, err := credential.Verify(c.cred, n.LogKey, now)
				f, ok := err.(*credential.Failure)
				if !ok || f.Check != c.check || !strings.Contains(f.Msg, c.msg) {
					t.Fatalf("Verify = %v; want the %s check to fail with %q", err, c.check, c.msg)
				}
			})
		}
	})

	t.Run("bad input is refused with a stable code, nothing issued", func(t *testing.T) { testBadInput(t, w, owner) })
	t.Run("DIMO's vinVCLatest", func(t *testing.T) { testVINVCLatest(t, w, owner) })
	t.Run("permissions", func(t *testing.T) { testPermissions(t, w, owner) }) // it transfers the car
	t.Run("after the transfer vinVCLatest shows the buyer nothing of the seller's", func(t *testing.T) { testVINVCAfterTransfer(t, w, owner) })
}

// odoAt is an odometer reading of forged evidence: km, after the reading before it.
type odoAt struct {
	after time.Duration
	km    float64
}

// forgedMileage signs, with the car's device key, records of the given odometer readings, the first a
// minute after w.start (the last may lie ahead: the pairing is still in force), and reissues the mileage
// c over them as evidence, claiming distance km from a minute after the first reading to a minute after
// the last.
func (w *world) forgedMileage(t *testing.T, c *credential.Claims, like *credential.Evidence, distance float64, readings ...odoAt) string {
	t.Helper()
	spec := sim.Specs(15, 1)[0]
	dev := testnode.Key{Key: spec.DeviceKey, Address: spec.Device}
	ev := *like
	ev.Records = nil
	at := w.start.Add(time.Minute)
	from := at.Add(time.Minute)
	for i, r := range readings {
		at = at.Add(r.after)
		sub := testnode.Record(t, dev, w.car, fmt.Sprintf("forged-%d", i), at,
			telemetry.EventSignal{Name: credential.SignalOdometer, Timestamp: at, Value: r.km})
		ev.Records = append(ev.Records, credential.SignedRecord{Event: string(sub.Event), Signature: fmt.Sprintf("0x%x", sub.Signature),
			Pairing: like.Records[0].Pairing})
	}
	c.From, c.To, c.Distance = from, at.Add(time.Minute), distance
	out, err := credential.Reissue(w.issuer, c, &ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decodeAll returns the credential's JWT payload and disclosures decoded, for searching.
func decodeAll(t *testing.T, s string) string {
	var b strings.Builder
	for i, part := range strings.Split(s, "~") {
		if i == 0 {
			for _, p := range strings.Split(part, ".")[:2] {
				raw, _ := base64.RawURLEncoding.DecodeString(p)
				b.Write(raw)
			}
			continue
		}
		raw, _ := base64.RawURLEncoding.DecodeString(part)
		b.Write(raw)
	}
	return b.String()
}
