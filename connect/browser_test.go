package connect_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/glovebox/glovebox/connect"
	"github.com/glovebox/glovebox/internal/browsertest"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
)

// browser starts a headless Chromium for the test (browsertest.Start).
func browser(t *testing.T) context.Context { return browsertest.Start(t) }

// keyFile writes key as a Web3 Secret Storage v3 file, with the scrypt cost `glovebox key new` uses by
// default.
func keyFile(t *testing.T, key testnode.Key, pass string) string {
	t.Helper()
	id, _ := uuid.NewRandom()
	b, err := keystore.EncryptKey(&keystore.Key{Id: id, Address: key.Address, PrivateKey: key.Key}, pass,
		keystore.StandardScryptN, keystore.StandardScryptP)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "owner.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// screenshot saves the page as docs/screenshots/name.png at a width, then goes back to the desktop size.
func screenshot(name string, width, height int64, mobile bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := chromedp.EmulateViewport(width, height, func(p *emulation.SetDeviceMetricsOverrideParams, q *emulation.SetTouchEmulationEnabledParams) {
			p.Mobile = mobile
			q.Enabled = mobile
		})(ctx, t); err != nil {
			return err
		}
		buf, err := chromedp.FullScreenshot(100)(ctx, t)
		if err != nil {
			return err
		}
		if err := browsertest.SaveScreenshot(name, buf); err != nil {
			return err
		}
		_, err = chromedp.EmulateViewport(1280, 900)(ctx, t)
		return err
	})
}

// addScript runs src in every new document before the page's own scripts, as a wallet extension's
// content script does.
func addScript(src string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		return err
	})
}

// TestConnectWithKeyFile is the whole flow with real parts: an app built on golang.org/x/oauth2 and
// go-oidc sends headless Chromium to the node; the driver unlocks a key file in the browser, sees each
// car's retention policy in words, allows one of two cars, and is sent back; the app exchanges the code,
// verifies the ID token and reads that car over GraphQL, and is refused the other; the owner revokes,
// and the next read fails.
func TestConnectWithKeyFile(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	kf := keyFile(t, w.owner, "correct horse battery staple")
	keep := &ledger.Tx{Type: ledger.TypeSetRetention, Days: 30}
	keep.VehicleID.SetUint64(w.v1)
	w.n.Submit(t, keep, w.owner)

	err := chromedp.Do(ctx,
		chromedp.Navigate(w.app.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("keyfile")),
		screenshot("consent-desktop", 1280, 900, false),
		screenshot("consent-phone", 390, 844, true),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{kf}),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery staple"),
		chromedp.Click(chromedp.ID("unlock")),
		chromedp.WaitVisible(chromedp.ID("vehicle-2")),
	)
	policies := map[string]string{}
	for _, id := range []uint64{w.v1, w.v2} {
		if err == nil {
			policies[fmt.Sprint(id)], err = chromedp.Run(ctx, chromedp.Text(chromedp.ID(fmt.Sprintf("retention-%d", id))))
		}
	}
	if err == nil {
		err = chromedp.Do(ctx,
			chromedp.Click(chromedp.ID("vehicle-1")),
			screenshot("consent-choose-desktop", 1280, 900, false),
			screenshot("consent-choose-phone", 390, 844, true),
			chromedp.Click(chromedp.ID("allow")),
			chromedp.WaitVisible(chromedp.ID("connected")),
		)
	}
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("browser: %v (at %s)", err, loc)
	}
	want := map[string]string{fmt.Sprint(w.v1): "Glovebox keeps this car's data for 30 days, then deletes it.",
		fmt.Sprint(w.v2): "Glovebox keeps this car's data until you erase it."}
	for id, words := range want {
		if policies[id] != words {
			t.Errorf("the consent screen says of car %s %q, want %q", id, policies[id], words)
		}
	}
	res := <-w.app.results
	w.checkConnected(t, res, w.v1, w.v2)
}

// checkConnected checks what the app can do with the tokens of one consent for granted and not for
// other, then revokes and checks it can do nothing.
func (w *world) checkConnected(t *testing.T, res appResult, granted, other uint64) {
	t.Helper()
	if res.Err != nil || res.Error != "" {
		t.Fatalf("the app got %q %v", res.Error, res.Err)
	}
	if res.IDToken.Subject != w.owner.Address.Hex() {
		t.Errorf("ID token sub = %s, want the owner %s", res.IDToken.Subject, w.owner.Address.Hex())
	}
	if !slices.Equal(res.Vehicles, []uint64{granted}) {
		t.Errorf("ID token vehicles = %v, want [%d]", res.Vehicles, granted)
	}
	if res.Token.RefreshToken == "" {
		t.Error("no refresh token")
	}
	ui, err := w.app.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(res.Token))
	if err != nil || ui.Subject != w.owner.Address.Hex() {
		t.Errorf("go-oidc UserInfo: %+v %v", ui, err)
	}
	tok := res.Token.AccessToken
	if v, code := speed(t, w.n, tok, granted); code != "" || v == 0 {
		t.Fatalf("reading the granted car: %v %s", v, code)
	}
	if _, code := speed(t, w.n, tok, other); code != "FORBIDDEN" {
		t.Fatalf("reading the other car: %q, want FORBIDDEN", code)
	}
	w.revoke(t, granted, w.app.key.Address)
	if _, code := speed(t, w.n, tok, granted); code != "FORBIDDEN" {
		t.Fatalf("after the owner revoked: %q, want FORBIDDEN", code)
	}
}

// TestConnectWithBrowserWallet is the same flow with the driver's browser wallet: an injected EIP-1193
// provider that signs with ethers.js, the library most wallets are built on.
func TestConnectWithBrowserWallet(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	wallet, err := os.ReadFile(filepath.Join("..", "web", "testdata", "testwallet.js"))
	if err != nil {
		t.Fatal(err)
	}
	install := string(wallet) + ";GloveboxTestWallet.install('0x" + hex.EncodeToString(crypto.FromECDSA(w.owner.Key)) + "');"
	err = chromedp.Do(ctx,
		addScript(install),
		chromedp.Navigate(w.app.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("use-wallet")),
		screenshot("consent-wallet-desktop", 1280, 900, false),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	// The wallet announced itself (EIP-6963): the button names it.
	if label, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("use-wallet"))); err != nil || label != "Use Test Wallet" {
		t.Errorf("wallet button %q %v", label, err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("use-wallet")),
		chromedp.WaitVisible(chromedp.ID("vehicle-2")),
		chromedp.Click(chromedp.ID("vehicle-2")),
		chromedp.Click(chromedp.ID("allow")),
		chromedp.WaitVisible(chromedp.ID("connected")),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	res := <-w.app.results
	w.checkConnected(t, res, w.v2, w.v1)

	// Granted before with the same scopes: after signing in, the driver is not asked again.
	w.n.Grant(t, w.owner, w.v1, w.app.key.Address, time.Now().Add(time.Hour).Unix(), "signals", "location:approximate")
	err = chromedp.Do(ctx,
		chromedp.Navigate(w.app.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("use-wallet")),
		chromedp.Click(chromedp.ID("use-wallet")),
		chromedp.WaitVisible(chromedp.ID("connected")),
	)
	if err != nil {
		t.Fatalf("browser, second time: %v", err)
	}
	res = <-w.app.results
	if res.Err != nil || !slices.Equal(res.Vehicles, []uint64{w.v1}) {
		t.Fatalf("second consent: %+v", res)
	}
}

// The consent screen cannot be framed: a page of the node's own origin that frames it gets an empty
// frame, while the same page framing an ordinary route of the node sees it.
func TestConsentScreenCannotBeFramed(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	frame := func(src string, probe string) chromedp.Action[bool] {
		return chromedp.Evaluate[bool](`new Promise((resolve) => {
			const f = document.createElement("iframe");
			f.onload = () => {
				let seen = false;
				try { seen = !!(f.contentDocument && f.contentDocument.querySelector(`+"`"+`${`+probe+`}`+"`"+`)); } catch (e) {}
				resolve(seen);
			};
			f.src = `+"`"+`${`+src+`}`+"`"+`;
			document.body.appendChild(f);
		})`, chromedp.EvalAwaitPromise)
	}
	js := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	if err := chromedp.Do(ctx, chromedp.Navigate(w.n.URL+"/v1/node")); err != nil {
		t.Fatal(err)
	}
	control, err := chromedp.Run(ctx, frame(js("/v1/node"), js("pre, body")))
	if err != nil || !control {
		t.Fatalf("framing an ordinary route: %v %v (the probe itself does not work)", control, err)
	}
	framed, err := chromedp.Run(ctx, frame(js(w.authorizeURL(w.newFlow().query)), js("#keyfile")))
	if err != nil {
		t.Fatal(err)
	}
	if framed {
		t.Fatal("the consent screen rendered inside a frame")
	}
}

// A request for every scope without a purpose: the screen names each permission in its own words, marks
// the sensitive ones, and says the app gave no reason.
func TestConsentScreenShowsEveryScope(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	f := w.newFlow()
	f.query.Set("scope", strings.Join(connect.ScopeNames(), " "))
	f.query.Del("purpose")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(w.authorizeURL(f.query)),
		chromedp.WaitVisible(chromedp.ID("keyfile")),
		screenshot("consent-every-scope-phone", 390, 844, true),
	); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range connect.Scopes {
		if !strings.Contains(text, s.Title) || !strings.Contains(text, s.Detail) {
			t.Errorf("the screen does not say %q", s.Title)
		}
	}
	for _, want := range []string{"would like access to your car", "did not say why"} {
		if !strings.Contains(text, want) {
			t.Errorf("the screen does not say %q", want)
		}
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".perms li.sensitive").length`))
	if err != nil || n != 3 {
		t.Errorf("%d sensitive permissions marked, want 3 (%v)", n, err)
	}
}

// TestConnectWithOneSignal asks for one reading only (vehicle:signals:speed): the consent screen names it
// in plain words, Allow signs a Grant of exactly signals:speed, and the app's token reads speed and
// nothing else.
func TestConnectWithOneSignal(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	w.app.cfg.Scopes = []string{"openid", "vehicle:signals:speed"}
	kf := keyFile(t, w.owner, "correct horse battery staple")
	var text string
	err := chromedp.Do(ctx,
		chromedp.Navigate(w.app.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("keyfile")),
	)
	if err == nil {
		text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	}
	if err == nil {
		err = chromedp.Do(ctx,
			chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{kf}),
			chromedp.SendKeys(chromedp.ID("password"), "correct horse battery staple"),
			chromedp.Click(chromedp.ID("unlock")),
			chromedp.WaitVisible(chromedp.ID("vehicle-2")),
			chromedp.Click(chromedp.ID("vehicle-1")),
			chromedp.Click(chromedp.ID("allow")),
			chromedp.WaitVisible(chromedp.ID("connected")),
		)
	}
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("browser: %v (at %s)", err, loc)
	}
	for _, want := range []string{"Speed", "This one reading from your car (Vehicle.Speed, in km/h)"} {
		if !strings.Contains(text, want) {
			t.Errorf("the consent screen does not say %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Car readings") {
		t.Errorf("the consent screen offers every reading:\n%s", text)
	}
	res := <-w.app.results
	if res.Err != nil || res.Error != "" {
		t.Fatalf("the app got %q %v", res.Error, res.Err)
	}
	var g ledger.Grant
	w.n.Sequencer.Read(func(st *ledger.State) { g, _ = st.GrantOf(w.v1, w.app.key.Address) })
	if !slices.Equal(g.Permissions, []string{"signals:speed"}) {
		t.Fatalf("the grant holds %v, want [signals:speed]", g.Permissions)
	}
	if v, code := speed(t, w.n, res.Token.AccessToken, w.v1); code != "" || v == 0 {
		t.Fatalf("reading speed: %v %s", v, code)
	}
	body, _ := json.Marshal(map[string]string{"query": fmt.Sprintf(`{ signalsLatest(tokenId: %d) { powertrainTransmissionTravelledDistance { value } } }`, w.v1)})
	req, _ := http.NewRequest("POST", w.n.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+res.Token.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), `"FORBIDDEN"`) || !strings.Contains(string(raw), `"signal":"powertrainTransmissionTravelledDistance"`) {
		t.Errorf("another reading: %s", raw)
	}
}
