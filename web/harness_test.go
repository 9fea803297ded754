package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
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

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"

	"github.com/glovebox/glovebox/internal/browsertest"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/web"
)

// browser starts a headless Chromium for the test (browsertest.Start). Exceptions the page throws fail
// the test; console errors are logged.
func browser(t *testing.T) context.Context {
	t.Helper()
	ctx := browsertest.Start(t)
	chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			t.Errorf("the page threw: %s %s (%s:%d)", d.Text, desc, d.URL, d.LineNumber)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				t.Logf("page console error: %s", strings.Join(parts, " "))
			}
		}
	})
	return ctx
}

// screenshot saves the page as docs/screenshots/name.png at a width (the whole page), then goes back
// to the desktop size. It fails when the page is wider than the screen.
func screenshot(name string, width, height int64, mobile bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := chromedp.EmulateViewport(width, height, func(p *emulation.SetDeviceMetricsOverrideParams, q *emulation.SetTouchEmulationEnabledParams) {
			p.Mobile = mobile
			q.Enabled = mobile
		})(ctx, t); err != nil {
			return err
		}
		// Let the chart and the map follow the new width (their resize observers run when the browser gets
		// to them, later on a busy machine): wait until nothing is wider than the screen, for up to 10 s.
		fits := fmt.Sprintf(`document.documentElement.scrollWidth <= %d`, width)
		if _, err := chromedp.Poll[chromedp.Void](fits, chromedp.WithPollingTimeout(10*time.Second))(ctx, t); err != nil && !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
			return err
		}
		if _, err := chromedp.Sleep(300*time.Millisecond)(ctx, t); err != nil {
			return err
		}
		// Nothing may stick out sideways: a page wider than the screen scrolls sideways on a phone.
		wide, err := chromedp.Evaluate[int64](`document.documentElement.scrollWidth`)(ctx, t)
		if err != nil {
			return err
		}
		if wide > width {
			return fmt.Errorf("%s: the page is %d px wide on a screen %d px wide", name, wide, width)
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

// both takes the desktop and the phone screenshot of the page.
func both(name string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{screenshot(name+"-desktop", 1280, 900, false), screenshot(name+"-phone", 390, 844, true)}
}

// addScript runs src in every new document before the page's own scripts, as a wallet extension does.
func addScript(src string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		return err
	})
}

// fixedKey is the same key in every run, so that screenshots change only when the pages do.
func fixedKey(t *testing.T, name string) testnode.Key {
	t.Helper()
	h := sha256.Sum256([]byte("glovebox web test " + name))
	k, err := crypto.ToECDSA(h[:])
	if err != nil {
		t.Fatal(err)
	}
	return testnode.Key{Key: k, Address: crypto.PubkeyToAddress(k.PublicKey)}
}

// keyFile writes key as a Web3 key file with light scrypt (as the demo's owner key file).
func keyFile(t *testing.T, key testnode.Key, pass string) string {
	t.Helper()
	id, _ := uuid.NewRandom()
	b, err := keystore.EncryptKey(&keystore.Key{Id: id, Address: key.Address, PrivateKey: key.Key}, pass, keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "owner.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// world is a node with the simulator's data: two simulated cars (registered and paired by the
// simulator's setup) that drove for the last two hours, the first one owned by owner; an insurer's
// app with a grant on it that has read its data.
type world struct {
	n       *testnode.Node
	owner   testnode.Key
	car     uint64
	dev     testnode.Key // a device of its own, registered but not paired
	app     testnode.Key
	appName string
}

const seed = 42

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t, web.Options{})
}

// newWorldWith is newWorld with the web app configured by o.
func newWorldWith(t *testing.T, o web.Options) *world {
	t.Helper()
	return newWorldNode(t, testnode.Options{Web: o})
}

// newWorldNode is newWorld on a node started with opts (its Origin and Now are the world's).
func newWorldNode(t *testing.T, opts testnode.Options) *world {
	t.Helper()
	// The node's clock runs two hours behind while the simulator registers and pairs its cars, so that
	// the two hours of driving that follow are measured after the pairing; then it is the real time.
	var behind atomic.Int64
	behind.Store(int64(2 * time.Hour))
	clock := func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }
	opts.Origin, opts.Now = "glovebox.test/web", clock
	n := testnode.Start(t, opts)
	ctx := context.Background()
	specs := sim.Specs(seed, 2)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := sim.Setup(ctx, n.Client, specs, quiet, nil); err != nil {
		t.Fatal(err)
	}
	w := &world{n: n, owner: testnode.Key{Key: specs[0].OwnerKey, Address: specs[0].Owner}, car: specs[0].VehicleID}
	fleet, err := sim.NewFleetFromSpecs(seed, specs, clock().Add(time.Second).Truncate(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	behind.Store(0)
	var subs []telemetry.Submission
	for range 2*3600/5 - 2 {
		subs = append(subs, sim.Submissions(fleet.Step(5*time.Second))...)
	}
	for len(subs) > 0 {
		k := min(len(subs), 1000)
		res, err := n.Client.PostEvents(ctx, subs[:k])
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
	if _, err := n.Telemetry.Index(ctx); err != nil {
		t.Fatal(err)
	}
	// An insurer's app, granted signals and approximate location, reads the car once.
	dev := fixedKey(t, "insurer developer")
	w.app, w.appName = fixedKey(t, "insurer app"), "Acme Insurance"
	n.Submit(t, &ledger.Tx{Type: ledger.TypeRegisterApp, App: w.app.Address, Owner: dev.Address, Name: w.appName,
		RedirectURIs: []string{"https://acme.example/callback"}}, dev, w.app)
	n.Grant(t, w.owner, w.car, w.app.Address, time.Now().Add(30*24*time.Hour).Unix(), "signals", "location:approximate")
	if v, code := w.speed(t, signIn(t, n, w.app)); code != "" || v < 0 {
		t.Fatalf("the app's first read: %v %s", v, code)
	}
	w.dev = fixedKey(t, "spare dongle")
	n.Submit(t, &ledger.Tx{Type: ledger.TypeRegisterDevice, Device: w.dev.Address, Kind: ledger.KindHardware}, w.dev)
	return w
}

// signIn runs the SIWE flow over HTTP for k and returns the bearer token.
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

// speed reads the car's latest speed over GraphQL with token: the value, or the first error's code.
func (w *world) speed(t *testing.T, token string) (float64, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { value } } }`, w.car)})
	req, _ := http.NewRequest("POST", w.n.URL+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			SignalsLatest *struct{ Speed *struct{ Value float64 } }
		}
		Errors []struct{ Extensions struct{ Code string } }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) > 0 {
		return 0, out.Errors[0].Extensions.Code
	}
	if out.Data.SignalsLatest == nil || out.Data.SignalsLatest.Speed == nil {
		return 0, "NO_DATA"
	}
	return out.Data.SignalsLatest.Speed.Value, ""
}
