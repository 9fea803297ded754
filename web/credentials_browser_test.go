package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/ledger"
)

// attestAs posts a signed attestation about car as the app (POST /v1/attestations).
func (w *world) attestAs(t *testing.T, id, data string) {
	t.Helper()
	h := ledger.PersonalHash([]byte(data))
	sig, err := crypto.Sign(h[:], w.app.Key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	body := fmt.Sprintf(`{"id":%q,"source":%q,"subject":"%d","dataversion":"insurance/v1","tags":["insurance"],"signature":"0x%x","data":%s}`,
		id, w.app.Address.Hex(), w.car, sig, data)
	req, _ := http.NewRequest("POST", w.n.URL+"/v1/attestations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+signIn(t, w.n, w.app))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("attesting: %d", resp.StatusCode)
	}
}

// TestCredentialsJourney: the owner opens the car's Credentials tab, sees the insurer's attestation,
// asks for a mileage over the last two hours and gets the file, which Go's credential.Verify accepts
// down to the records; the issuance is listed as issued to the owner; the owner deletes the attestation.
// Then, signed out, the Verify page checks the file — from a file input, and with the browser offline —
// and refuses a changed claim and an altered disclosure, naming the check.
func TestCredentialsJourney(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	w.attestAs(t, "policy-1", `{"insured":true,"provider":"Acme Insurance"}`)
	kf := keyFile(t, w.owner, "glovebox demo")
	car := strconv.FormatUint(w.car, 10)

	run(t, ctx, "sign in and open the Credentials tab",
		chromedp.Navigate(w.n.URL+"/"), chromedp.WaitVisible(chromedp.ID("keyfile")),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{kf}),
		chromedp.SendKeys(chromedp.ID("password"), "glovebox demo"),
		chromedp.Click(chromedp.ID("unlock")),
		chromedp.WaitVisible(chromedp.CSS("#car-"+car+" .badge")),
		chromedp.Navigate(w.n.URL+"/#/vehicles/"+car+"/credentials"),
		chromedp.WaitVisible(chromedp.ID("cred-form")),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#attestations li.attestation").length === 1 && !!document.querySelector("#cred-issued .empty")`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	att := eval[string](t, ctx, `document.querySelector("#attestations li.attestation").textContent`)
	for _, want := range []string{w.appName, "insurance/v1", `"provider": "Acme Insurance"`} {
		if !strings.Contains(att, want) {
			t.Errorf("the attestation shows %q, want %q in it", att, want)
		}
	}
	checkLabels(t, ctx, "the Credentials tab")

	run(t, ctx, "ask for a mileage",
		chromedp.SetValue(chromedp.ID("cred-type"), "mileage"),
		chromedp.Evaluate[chromedp.Void](`(() => {
			const local = (t) => new Date(t - new Date(t).getTimezoneOffset() * 60000).toISOString().slice(0, 16);
			document.getElementById("cred-type").dispatchEvent(new Event("change"));
			document.getElementById("cred-from").value = local(Date.now() - 118 * 60000);
			document.getElementById("cred-to").value = local(Date.now() + 60000);
		})()`),
		// Keep the file the page makes (the page's CSP lets no script read a blob: URL back).
		chromedp.Evaluate[chromedp.Void](`(() => { const make = URL.createObjectURL; window.testBlobs = [];
			URL.createObjectURL = (b) => { window.testBlobs.push(b); return make(b); }; })()`),
		chromedp.Click(chromedp.ID("cred-get")),
		statusSays("Downloaded car-"+car+"-mileage.sdjwt"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#cred-issued tr.cred-row").length === 1`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	var sdjwt string
	run(t, ctx, "read the downloaded file", chromedp.Func(func(c context.Context, tg *chromedp.Target) error {
		var err error
		sdjwt, err = chromedp.Evaluate[string](`window.testBlobs[0].text()`, chromedp.EvalAwaitPromise)(c, tg)
		return err
	}))
	c, err := credential.Verify(sdjwt, w.n.LogKey, time.Now())
	if err != nil || c.Type != credential.TypeMileage || !c.EvidenceChecked || c.Distance <= 0 {
		t.Fatalf("the downloaded file: %v %+v", err, c)
	}
	row := eval[string](t, ctx, `document.querySelector("#cred-issued tr.cred-row").textContent`)
	if !strings.Contains(row, "Distance driven") || !strings.Contains(row, "You") {
		t.Errorf("the issued credential is listed as %q", row)
	}
	run(t, ctx, "credentials screenshots", both("webapp-credentials")...)

	run(t, ctx, "delete the attestation",
		chromedp.Click(chromedp.ID("attestation-delete-policy-1")),
		statusSays("Deleted."),
		chromedp.WaitVisible(chromedp.CSS("#attestations .empty")),
	)

	file := filepath.Join(t.TempDir(), "mileage.sdjwt")
	if err := os.WriteFile(file, []byte(sdjwt), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "the Verify page, signed out, checks the file",
		chromedp.Evaluate[chromedp.Void](`sessionStorage.clear()`),
		chromedp.Navigate(w.n.URL+"/#/verify"),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("verify-file")),
		chromedp.SetUploadFiles(chromedp.ID("verify-file"), []string{file}),
		chromedp.Poll[chromedp.Void](`!!document.getElementById("verify-verdict")`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	if who := eval[string](t, ctx, `document.getElementById("who").textContent`); who != "" {
		t.Errorf("the Verify page is signed in: %q", who)
	}
	verdict := eval[string](t, ctx, `document.getElementById("verify-verdict").textContent`)
	if !strings.HasPrefix(verdict, "Valid: checked down to the device-signed records") {
		t.Fatalf("verdict %q; steps %q", verdict, eval[string](t, ctx, `document.getElementById("verify-steps").textContent`))
	}
	run(t, ctx, "verify screenshots", both("webapp-verify")...)
	if n := eval[int](t, ctx, `document.querySelectorAll("#verify-steps li.ok").length`); n != 9 {
		t.Errorf("%d checks passed, want 9 (every check but key binding)", n)
	}
	claims := eval[string](t, ctx, `document.getElementById("verify-claims").textContent`)
	if !strings.Contains(claims, "Distance driven") || !strings.Contains(claims, "no. "+car) {
		t.Errorf("the claims shown: %q", claims)
	}
	checkLabels(t, ctx, "the Verify page")

	// The node is gone from here on: the checks need nothing more from it.
	w.n.Stop()
	jwt, rest, _ := strings.Cut(sdjwt, "~")
	parts := strings.Split(jwt, ".")
	payload := decodeSegment(t, parts[1])
	payload = strings.Replace(payload, `"distance_km":`, `"distance_km":1`, 1)
	changedClaim := parts[0] + "." + encodeSegment(payload) + "." + parts[2] + "~" + rest
	ds := strings.Split(rest, "~")
	ds[0] = ds[0][:len(ds[0])-2] + flipB64(ds[0][len(ds[0])-2:])
	alteredDisclosure := jwt + "~" + strings.Join(ds, "~")
	for _, c := range []struct {
		name, text, want string
	}{
		{"a changed claim", changedClaim, "Not valid: signed by the log's key"},
		{"an altered disclosure", alteredDisclosure, "Not valid: every disclosure is one the issuer signed"},
		{"the credential without its disclosures", jwt + "~", "Valid: signed by the log's key (no evidence disclosed"},
	} {
		q, _ := json.Marshal(c.text)
		run(t, ctx, c.name,
			chromedp.Evaluate[chromedp.Void](`document.getElementById("verify-text").value = `+string(q)),
			chromedp.Click(chromedp.ID("verify-submit")),
			chromedp.Poll[chromedp.Void](`(document.getElementById("verify-verdict")||{}).textContent?.startsWith(`+strconv.Quote(c.want)+`)`, chromedp.WithPollingTimeout(30*time.Second)),
		)
	}
}

func decodeSegment(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func encodeSegment(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// flipB64 changes the first base64url character of s to another.
func flipB64(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}
