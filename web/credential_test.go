package web_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/credential"
)

// issue asks the node for a credential as the bearer of token.
func (w *world) issue(t *testing.T, token, body string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/vehicles/%d/credentials", w.n.URL, w.car), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("issuing %s: %d %s", body, resp.StatusCode, b)
	}
	return string(b)
}

// reissuer signs tampered credentials with the node's own log key, as a dishonest issuer would: the
// signature is good, so only the evidence can give the lie away.
type reissuer struct{ signer note.Signer }

// reissue re-signs sdjwt after mutate changed its payload and its evidence (the evidence disclosure gets
// a fresh salt and its digest replaces the old one in _sd).
func (r reissuer) reissue(t *testing.T, sdjwt string, mutate func(p map[string]any, ev *credential.Evidence)) string {
	t.Helper()
	parts := strings.Split(strings.TrimSuffix(sdjwt, "~"), "~")
	seg := strings.Split(parts[0], ".")
	var p map[string]any
	if err := json.Unmarshal([]byte(decodeSegment(t, seg[1])), &p); err != nil {
		t.Fatal(err)
	}
	digest := func(enc string) string {
		h := sha256.Sum256([]byte(enc))
		return base64.RawURLEncoding.EncodeToString(h[:])
	}
	out := []string{}
	for _, d := range parts[1:] {
		var arr []json.RawMessage
		json.Unmarshal([]byte(decodeSegment(t, d)), &arr)
		var name string
		json.Unmarshal(arr[1], &name)
		if name != "evidence" {
			out = append(out, d)
			continue
		}
		var ev credential.Evidence
		if err := json.Unmarshal(arr[2], &ev); err != nil {
			t.Fatal(err)
		}
		mutate(p, &ev)
		b, _ := json.Marshal([]any{"c2FsdHNhbHRzYWx0c2FsdA", "evidence", ev})
		enc := encodeSegment(string(b))
		sd := p["_sd"].([]any)
		for i := range sd {
			if sd[i] == digest(d) {
				sd[i] = digest(enc)
			}
		}
		out = append(out, enc)
	}
	body, _ := json.Marshal(p)
	input := seg[0] + "." + encodeSegment(string(body))
	sig, err := r.signer.Sign([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig) + "~" + strings.Join(out, "~") + "~"
}

// TestCredentialChecksAgreeWithGo runs the web app's credential checks (web/src/app/credential.js) in
// Chromium on credentials the node issued, and on tampered ones — a changed claim, an altered
// disclosure, and, signed again with the log key, a record's signature or bytes changed, a proof for
// another entry, a checkpoint signed by another key, a claim the records do not give, an expired
// credential: the browser must refuse each at the same check as Go's credential.Verify, and accept what
// it accepts.
func TestCredentialChecksAgreeWithGo(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	owner := signIn(t, w.n, w.owner)
	from, to := time.Now().Add(-118*time.Minute).UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339)
	mileage := w.issue(t, owner, `{"type":"mileage","from":"`+from+`","to":"`+to+`"}`)
	odometer := w.issue(t, owner, `{"type":"odometer"}`)
	vin := w.issue(t, owner, `{"type":"vin"}`)
	movement := w.issue(t, owner, `{"type":"movement","from":"`+from+`","to":"`+to+`"}`)
	skey, err := os.ReadFile(filepath.Join(w.n.Dir, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	r := reissuer{signer}
	otherKey, _, _ := note.GenerateKey(rand.Reader, signer.Name())
	other, _ := note.NewSigner(otherKey)
	bare, _ := credential.Present(mileage, "vehicle_id")
	jwt, rest, _ := strings.Cut(mileage, "~")
	seg := strings.Split(jwt, ".")
	changed := seg[0] + "." + encodeSegment(strings.Replace(decodeSegment(t, seg[1]), `"distance_km":`, `"distance_km":1`, 1)) + "." + seg[2] + "~" + rest
	ds := strings.Split(rest, "~")
	ds[len(ds)-2] = flipB64(ds[len(ds)-2])
	altered := jwt + "~" + strings.Join(ds, "~")

	cases := []struct {
		name, text, want string // want: the check that fails, "" for valid
	}{
		{"a mileage as issued", mileage, ""},
		{"an odometer as issued", odometer, ""},
		{"a VIN as issued", vin, ""},
		{"a movement as issued", movement, ""},
		{"a mileage without its disclosures", bare, ""},
		{"a changed claim", changed, credential.CheckSignature},
		{"an altered disclosure", altered, credential.CheckDisclosures},
		{"a record whose signature changed", r.reissue(t, mileage, func(_ map[string]any, ev *credential.Evidence) {
			s := []byte(ev.Records[0].Signature)
			if s[20] == '0' {
				s[20] = '1'
			} else {
				s[20] = '0'
			}
			ev.Records[0].Signature = string(s)
		}), credential.CheckRecord},
		{"a record whose bytes changed", r.reissue(t, mileage, func(_ map[string]any, ev *credential.Evidence) {
			ev.Records[0].Event = strings.Replace(ev.Records[0].Event, `"value":`, `"value":1`, 1)
		}), credential.CheckRecord},
		{"a proof for another entry", r.reissue(t, mileage, func(_ map[string]any, ev *credential.Evidence) {
			ev.Pairings[0].Start.Index++
		}), credential.CheckPairing},
		{"a checkpoint signed by another key", r.reissue(t, mileage, func(_ map[string]any, ev *credential.Evidence) {
			body, _, _ := strings.Cut(ev.Checkpoint, "\n\n")
			signed, err := note.Sign(&note.Note{Text: body + "\n"}, other)
			if err != nil {
				t.Fatal(err)
			}
			ev.Checkpoint = string(signed)
		}), credential.CheckCheckpoint},
		{"a distance the records do not give", r.reissue(t, mileage, func(p map[string]any, _ *credential.Evidence) {
			p["distance_km"] = p["distance_km"].(float64) + 1
		}), credential.CheckClaim},
		{"an odometer reading the records do not give", r.reissue(t, odometer, func(p map[string]any, _ *credential.Evidence) {
			p["odometer_km"] = p["odometer_km"].(float64) - 0.5
		}), credential.CheckClaim},
		{"an expired credential", r.reissue(t, odometer, func(p map[string]any, _ *credential.Evidence) {
			p["exp"] = time.Now().Add(-time.Hour).Unix()
		}), credential.CheckExpiry},
	}
	// What Go says of each.
	for i, c := range cases {
		_, err := credential.Verify(c.text, w.n.LogKey, time.Now())
		var f *credential.Failure
		got := ""
		if errors.As(err, &f) {
			got = f.Check
		} else if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Fatalf("%s: Go says %q (%v), the test wants %q", c.name, got, err, c.want)
		}
		cases[i] = c
	}

	resp, err := http.Get(w.n.URL + "/v1/eip712")
	if err != nil {
		t.Fatal(err)
	}
	eip712, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>credential checks</title>")
	}))
	defer srv.Close()
	module, err := os.ReadFile(filepath.Join("testdata", "credential.js"))
	if err != nil {
		t.Fatal(err)
	}
	texts := make([]string, len(cases))
	for i, c := range cases {
		texts[i] = c.text
	}
	tj, _ := json.Marshal(texts)
	kj, _ := json.Marshal(w.n.LogKey)
	js := string(module) + `;(async () => {
  const out = [];
  for (const text of ` + string(tj) + `) {
    const r = await GloveboxCredential.verifyCredential(text, ` + string(kj) + `, ` + string(eip712) + `);
    out.push({ ok: r.ok, check: r.ok ? "" : r.failed.check, why: r.ok ? "" : r.failed.why, evidence: !!(r.claims && r.claims.evidenceChecked) });
  }
  return out;
})()`
	type result struct {
		OK       bool
		Check    string
		Why      string
		Evidence bool
	}
	var res []result
	err = chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.Func(func(c context.Context, tg *chromedp.Target) error {
		r, err := chromedp.Evaluate[[]result](js, chromedp.EvalAwaitPromise)(c, tg)
		res = r
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		if res[i].Check != c.want {
			t.Errorf("%s: the browser says %q (%s), Go says %q", c.name, res[i].Check, res[i].Why, c.want)
		}
		wantEvidence := c.want == "" && c.name != "a movement as issued" && c.name != "a mileage without its disclosures"
		if c.want == "" && res[i].Evidence != wantEvidence {
			t.Errorf("%s: evidence checked %v, want %v", c.name, res[i].Evidence, wantEvidence)
		}
	}
}
