package web_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/web"
)

// run runs browser actions and fails the test with the page's address and status line when one fails.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("status")||{}).textContent||""`))
		shot := filepath.Join(os.TempDir(), "glovebox-web-failed.png")
		if buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			os.WriteFile(shot, buf, 0o644)
		}
		t.Fatalf("%s: %v (at %s, status %q; the page is in %s)", what, err, loc, status, shot)
	}
}

func flat(groups ...[]chromedp.Action[chromedp.Void]) []chromedp.Action[chromedp.Void] {
	var out []chromedp.Action[chromedp.Void]
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// statusIs waits until the status line says something containing want (and is not an error, unless
// want is).
func statusSays(want string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](`(document.getElementById("status").textContent || "").includes(`+strconv.Quote(want)+`)`, chromedp.WithPollingTimeout(60*time.Second))
}

// TestOwnerJourney: the owner signs in with a key file (after a wrong password, said in words), sees
// the car with its key values and a live badge, its map and a chart with data points, the latest values
// and daily distance; sees the insurer's grant and its read in the access log, revokes it with the
// keyboard (it is gone from the list and the API refuses the insurer); registers a second car, pairs a
// device to it by pasting the device's signature (after two that are refused in words), unpairs it,
// and transfers the car away; after a reload it still reads, and asks for the key again before signing.
func TestOwnerJourney(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	kf := keyFile(t, w.owner, "glovebox demo")
	car := strconv.FormatUint(w.car, 10)

	run(t, ctx, "sign in", flat(
		[]chromedp.Action[chromedp.Void]{addScript(measureLayoutShift), chromedp.Navigate(w.n.URL + "/"), chromedp.WaitVisible(chromedp.ID("keyfile"))},
		both("webapp-signin"),
		[]chromedp.Action[chromedp.Void]{
			chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{kf}),
			// A wrong password first: the error in words, and the form stays.
			chromedp.SendKeys(chromedp.ID("password"), "glovebox dmeo"),
			chromedp.Click(chromedp.ID("unlock")),
			statusSays("That passphrase does not open this key file"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("password").value = ""`),
			chromedp.SendKeys(chromedp.ID("password"), "glovebox demo"),
			chromedp.Click(chromedp.ID("unlock")),
			chromedp.WaitVisible(chromedp.CSS("#car-" + car + " .badge")),
		},
		both("webapp-cars"),
	)...)
	card := eval[string](t, ctx, `document.getElementById("car-`+car+`").textContent`)
	for _, want := range []string{"Live", "km/h", "Odometer", "1 device paired"} {
		if !strings.Contains(card, want) {
			t.Errorf("the car's card %q does not say %q", card, want)
		}
	}

	run(t, ctx, "the car's overview",
		chromedp.Click(chromedp.ID("car-"+car)),
		chromedp.Poll[chromedp.Void](chartPoints+` > 0`, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Poll[chromedp.Void](mapTrips+` > 0 && document.querySelectorAll("#latest tbody tr").length > 3`, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.WaitVisible(chromedp.CSS("#distance table")),
	)
	// The trips list comes from the node's segments: start, duration, distance and driving style.
	run(t, ctx, "the trips list", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#trips li.trip").length > 0`, chromedp.WithPollingTimeout(30*time.Second)))
	trip := eval[string](t, ctx, `document.querySelector("#trips li.trip").textContent`)
	if !strings.Contains(trip, " min") || !strings.Contains(trip, " km") || !(strings.Contains(trip, "harsh") || strings.Contains(trip, "smooth")) {
		t.Errorf("a trip says %q, want its duration, distance and driving style", trip)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#distance tbody tr").length`); n == 0 {
		t.Error("the daily activity table has no day")
	}
	points := eval[int](t, ctx, chartPoints)
	if points < 60 {
		t.Errorf("the chart has %d points for the last 6 hours of two hours of driving, want at least 60 (one a minute)", points)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#chart canvas").length`); n == 0 {
		t.Error("no chart was drawn")
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#map path.leaflet-interactive").length`); n == 0 {
		t.Error("no track was drawn on the map")
	}
	checkLabels(t, ctx, "the car's overview")
	if cls := eval[float64](t, ctx, `window.gloveboxLayoutShift`); cls > 0.05 {
		t.Errorf("the pages so far shifted their layout by %.3f (cumulative layout shift), want at most 0.05: %v", cls, eval[[]string](t, ctx, `window.gloveboxShifts`))
	}
	run(t, ctx, "overview screenshots", both("webapp-vehicle")...)
	// Another signal and period, with the keyboard-reachable selects.
	run(t, ctx, "another signal",
		chromedp.SetValue(chromedp.ID("chart-range"), "24h"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("chart-range").dispatchEvent(new Event("change"))`),
		chromedp.Poll[chromedp.Void](`(document.getElementById("chart-count").textContent||"").includes("over 5m")`, chromedp.WithPollingTimeout(30*time.Second)),
	)

	// Dates of one's own: the last three days, in 15-minute buckets; the numbers as a table too.
	run(t, ctx, "chosen dates",
		chromedp.SetValue(chromedp.ID("chart-range"), "custom"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("chart-range").dispatchEvent(new Event("change"))`),
		chromedp.WaitVisible(chromedp.ID("chart-from")),
		chromedp.Evaluate[chromedp.Void](`{
			const local = (t) => new Date(t - new Date(t).getTimezoneOffset() * 60000).toISOString().slice(0, 16);
			document.getElementById("chart-from").value = local(Date.now() - 3 * 86400000);
		}`),
		chromedp.Click(chromedp.ID("chart-show")),
		chromedp.Poll[chromedp.Void](`(document.getElementById("chart-count").textContent||"").includes("over 15m")`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	if n := eval[int](t, ctx, `document.querySelectorAll("#chart details tbody tr, section details tbody tr").length`); n < 5 {
		t.Errorf("the numbers under the chart have %d rows, want at least 5 (two hours in 15-minute buckets)", n)
	}

	// Who can see my car: the insurer, in words; its read in the access log; revoke.
	appHex := w.app.Address.Hex()
	run(t, ctx, "sharing", flat([]chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.ID("tab-sharing")),
		chromedp.WaitVisible(chromedp.ID("revoke-" + appHex)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#access-table tbody tr td .badge").length > 0`, chromedp.WithPollingTimeout(30*time.Second)),
	}, both("webapp-sharing"))...)
	checkLabels(t, ctx, "sharing")
	text := eval[string](t, ctx, `document.getElementById("grants").textContent + "|" + document.getElementById("access-table").textContent`)
	for _, want := range []string{w.appName, "Car readings", "Approximate location", "Usage-based insurance quote", "signalsLatest", "allowed"} {
		if !strings.Contains(text, want) {
			t.Errorf("the sharing tab does not say %q", want)
		}
	}
	// Revoke with the keyboard: focus the button, press Enter.
	run(t, ctx, "revoke",
		chromedp.Focus(chromedp.ID("revoke-"+appHex)),
		chromedp.KeyEvent("\r"),
		statusSays("Revoked"),
		chromedp.WaitNotPresent(chromedp.ID("revoke-"+appHex)),
	)
	if _, code := w.speed(t, signIn(t, w.n, w.app)); code != "FORBIDDEN" {
		t.Errorf("after the owner revoked in the web app, the app reads with %q, want FORBIDDEN", code)
	}
	v, err := w.n.Client.Vehicle(context.Background(), w.car)
	if err != nil || len(v.Grants) != 0 {
		t.Errorf("after revoking, the car's grants are %+v (%v)", v.Grants, err)
	}

	// Register a car, pair the spare dongle with its signature pasted, then transfer the car away.
	run(t, ctx, "register a car",
		chromedp.Navigate(w.n.URL+"/#/"),
		chromedp.WaitVisible(chromedp.ID("car-"+car)),
		chromedp.SendKeys(chromedp.ID("reg-make"), "Renault"),
		chromedp.SendKeys(chromedp.ID("reg-model"), "Zoe"),
		chromedp.SendKeys(chromedp.ID("reg-year"), "2021"),
		chromedp.Click(chromedp.ID("reg-submit")),
		statusSays("Registered"),
		chromedp.WaitVisible(chromedp.ID("pair-form")),
	)
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	var newCar uint64
	if i := strings.Index(loc, "#/vehicles/"); i >= 0 {
		newCar, _ = strconv.ParseUint(strings.TrimSuffix(loc[i+len("#/vehicles/"):], "/devices"), 10, 64)
	}
	if nv, err := w.n.Client.Vehicle(context.Background(), newCar); err != nil || nv.Make != "Renault" || nv.Owner != w.owner.Address.Hex() {
		t.Fatalf("the registered car %d: %+v %v", newCar, nv, err)
	}
	run(t, ctx, "pair a device",
		// Something that is not a pairing signature first, then a signature for another car.
		chromedp.SetValue(chromedp.ID("pairing"), `{"device": "0x1234"}`),
		chromedp.Click(chromedp.ID("pair-submit")),
		statusSays("That is not a device's pairing signature"),
		chromedp.SetValue(chromedp.ID("pairing"), w.pairSignature(t, w.car)),
		chromedp.Click(chromedp.ID("pair-submit")),
		statusSays("That is not a device's pairing signature"),
		chromedp.SetValue(chromedp.ID("pairing"), w.pairSignature(t, newCar)),
		chromedp.Click(chromedp.ID("pair-submit")),
		statusSays("Paired"),
		chromedp.WaitVisible(chromedp.ID("unpair-"+w.dev.Address.Hex())),
	)
	if d, err := w.n.Client.Device(context.Background(), w.dev.Address); err != nil || d.VehicleID != newCar {
		t.Fatalf("the device after pairing: %+v %v", d, err)
	}
	checkLabels(t, ctx, "devices")
	run(t, ctx, "devices screenshots", both("webapp-devices")...)
	run(t, ctx, "unpair",
		chromedp.Click(chromedp.ID("unpair-"+w.dev.Address.Hex())),
		statusSays("Unpaired"),
		chromedp.WaitNotPresent(chromedp.ID("unpair-"+w.dev.Address.Hex())),
	)
	if d, err := w.n.Client.Device(context.Background(), w.dev.Address); err != nil || d.VehicleID != 0 {
		t.Fatalf("the device after unpairing: %+v %v", d, err)
	}
	buyer := fixedKey(t, "buyer").Address.Hex()
	run(t, ctx, "transfer",
		chromedp.SendKeys(chromedp.ID("transfer-to"), buyer),
		chromedp.Click(chromedp.ID("transfer-sure")),
		chromedp.Click(chromedp.ID("transfer-submit")),
		statusSays("Transferred"),
		chromedp.WaitVisible(chromedp.ID("car-"+car)),
	)
	if nv, err := w.n.Client.Vehicle(context.Background(), newCar); err != nil || nv.Owner != buyer {
		t.Fatalf("the transferred car: %+v %v", nv, err)
	}

	// After a reload the pages still read (the token is kept in the tab) but the key is locked: the page
	// says so, and unlocking leads back to the sign-in.
	run(t, ctx, "reload",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("car-"+car)),
		chromedp.WaitVisible(chromedp.CSS("#locked button")),
		chromedp.Click(chromedp.CSS("#locked button")),
		chromedp.WaitVisible(chromedp.ID("keyfile")),
	)
}

// measureLayoutShift adds up the page's layout shifts not caused by input (Cumulative Layout Shift) in
// window.gloveboxLayoutShift.
const measureLayoutShift = `window.gloveboxLayoutShift = 0;
window.gloveboxShifts = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.hadRecentInput) continue;
    window.gloveboxLayoutShift += e.value;
    window.gloveboxShifts.push(e.value.toFixed(3) + " " + location.hash + " " + (e.sources || []).map((s) => s.node ? (s.node.id || s.node.className || s.node.nodeName) : "?").join(","));
  }
}).observe({ type: "layout-shift", buffered: true });`

// chartPoints and mapTrips read, as a person would, how many points the chart says it drew and how many
// trips the map's label says it shows.
const (
	chartPoints = `Number((/^(\d+) data point/.exec((document.getElementById("chart-count")||{}).textContent||"")||[0,0])[1])`
	mapTrips    = `Number((/Map of (\d+) recent trip/.exec((document.getElementById("map")||{getAttribute:()=>""}).getAttribute("aria-label")||"")||[0,0])[1])`
)

// checkLabels fails the test for any form control without a label, any button or link without a name,
// and any image without alternative text on the page.
func checkLabels(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	bad := eval[[]string](t, ctx, `[...document.querySelectorAll("input, select, textarea, button, a[href], img")].filter((el) => {
		if (el.closest(".leaflet-control-attribution")) return false;
		if (el.matches("img")) return !el.hasAttribute("alt") && !el.closest(".leaflet-pane");
		if (el.matches("button, a")) return !(el.getAttribute("aria-label") || el.textContent.trim() || el.title);
		return !(el.labels && el.labels.length > 0) && !el.getAttribute("aria-label");
	}).map((el) => el.outerHTML.slice(0, 120))`)
	for _, b := range bad {
		t.Errorf("%s: unlabelled: %s", page, b)
	}
}

// pairSignature is the device's half of a pairing, as `glovebox device pair-sign` prints it.
func (w *world) pairSignature(t *testing.T, car uint64) string {
	t.Helper()
	tx := &ledger.Tx{Type: ledger.TypePairDevice, Device: w.dev.Address}
	tx.VehicleID.SetUint64(car)
	client.Prepare(tx, time.Hour)
	if err := w.n.Domain.Sign(tx, w.dev.Key); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"device": w.dev.Address.Hex(), "vehicleId": tx.VehicleID.Dec(), "nonce": tx.Nonce.Dec(),
		"deadline": tx.Deadline.Dec(), "signature": "0x" + hex.EncodeToString(tx.Signatures[0][:])})
	return string(b)
}

// TestDeveloperJourney: the insurer's developer signs in with a browser wallet, sees how many cars granted
// their app what, registers an app whose key is made in the browser (both sign RegisterApp), sees it
// listed with its snippets, and renames it (UpdateApp).
func TestDeveloperJourney(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	dev := fixedKey(t, "insurer developer") // the owner of the insurer's app, which holds a grant
	wallet, err := os.ReadFile(filepath.Join("testdata", "testwallet.js"))
	if err != nil {
		t.Fatal(err)
	}
	install := string(wallet) + ";GloveboxTestWallet.install('0x" + hex.EncodeToString(crypto.FromECDSA(dev.Key)) + "');"
	run(t, ctx, "sign in with the wallet",
		addScript(install),
		chromedp.Navigate(w.n.URL+"/#/developer"),
		chromedp.WaitVisible(chromedp.ID("use-wallet")),
		chromedp.Click(chromedp.ID("use-wallet")),
		chromedp.WaitVisible(chromedp.ID("app-name")),
	)
	run(t, ctx, "the insurer's app", chromedp.WaitVisible(chromedp.ID("app-stats-"+w.app.Address.Hex())))
	if stats := eval[string](t, ctx, `document.getElementById("app-stats-`+w.app.Address.Hex()+`").textContent`); stats != "1 car granted access: Car readings (1), Approximate location (1)." {
		t.Errorf("the insurer's app says %q", stats)
	}
	run(t, ctx, "register an app",
		chromedp.SendKeys(chromedp.ID("app-name"), "Fleet Tracker"),
		chromedp.SendKeys(chromedp.ID("app-uris"), "https://fleet.example/callback"),
		chromedp.Click(chromedp.ID("app-submit")),
		statusSays("Registered"),
		chromedp.WaitVisible(chromedp.ID("new-app")),
	)
	appAddr := eval[string](t, ctx, `document.getElementById("new-app").textContent`)
	a, err := w.n.Client.App(context.Background(), common.HexToAddress(appAddr))
	if err != nil || a.Name != "Fleet Tracker" || a.Owner != dev.Address.Hex() || len(a.RedirectURIs) != 1 {
		t.Fatalf("the registered app: %+v %v", a, err)
	}
	run(t, ctx, "the app's card", chromedp.WaitVisible(chromedp.ID("app-stats-"+appAddr)))
	run(t, ctx, "rename",
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("#apps details").forEach((d) => d.open = true)`),
		chromedp.SetValue(chromedp.ID("edit-name-"+appAddr), "Fleet Tracker Pro"),
		chromedp.Click(chromedp.ID("edit-save-"+appAddr)),
		statusSays("Saved"),
	)
	if a, err := w.n.Client.App(context.Background(), common.HexToAddress(appAddr)); err != nil || a.Name != "Fleet Tracker Pro" {
		t.Fatalf("the renamed app: %+v %v", a, err)
	}
	run(t, ctx, "developer screenshots", flat(
		[]chromedp.Action[chromedp.Void]{chromedp.WaitVisible(chromedp.ID("edit-name-" + appAddr)),
			chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("#apps details").forEach((d, i) => d.open = i % 3 === 1)`)},
		both("webapp-developer"))...)
	checkLabels(t, ctx, "developers")
	text := eval[string](t, ctx, `document.getElementById("apps").textContent`)
	for _, want := range []string{"Fleet Tracker Pro", "/oauth/authorize?response_type=code&client_id=" + appAddr, "oauth2.Config", "/graphql"} {
		if !strings.Contains(text, want) {
			t.Errorf("the app's card does not show %q", want)
		}
	}
}

// TestLogExplorer: anyone opens the public log, sees the checkpoint verified with the node's key, and
// checks an entry's inclusion proof in the browser; the browser warns when the node later shows another
// key or a smaller log than it saw.
func TestLogExplorer(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	run(t, ctx, "the log", flat([]chromedp.Action[chromedp.Void]{
		chromedp.Navigate(w.n.URL + "/#/log"),
		chromedp.Poll[chromedp.Void](`(document.getElementById("checkpoint-verified")||{}).className === "badge ok"`, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.WaitVisible(chromedp.ID("check-0")),
		chromedp.Click(chromedp.ID("check-0")),
		chromedp.Poll[chromedp.Void](`(document.getElementById("proof-0")||{classList:{contains:()=>false}}).classList.contains("passed")`, chromedp.WithPollingTimeout(30*time.Second)),
	}, both("webapp-log"))...)
	size, _ := w.n.Log.Latest()
	last := strconv.FormatInt(size-1, 10)
	run(t, ctx, "one entry",
		chromedp.Navigate(w.n.URL+"/#/log/"+last),
		chromedp.Poll[chromedp.Void](`(document.getElementById("proof-`+last+`")||{classList:{contains:()=>false}}).classList.contains("passed")`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	if n := eval[int](t, ctx, `document.querySelectorAll("#log-warning").length`); n != 0 {
		t.Fatal("a warning on a second visit to the same log")
	}
	// The browser remembers the key and the size it saw: another key, or a log that shrank, is a warning.
	for _, c := range []struct{ what, seen, want string }{
		{"another key", `{"key": "glovebox.test/web+00000000+AQ", "size": 1}`, "not the one this browser saw before"},
		{"a smaller log", `{"key": ` + strconv.Quote(w.n.LogKey) + `, "size": 1000000}`, "A log never shrinks"},
	} {
		run(t, ctx, c.what,
			chromedp.Evaluate[chromedp.Void](`localStorage.setItem("glovebox.log.glovebox.test/web", `+strconv.Quote(c.seen)+`)`),
			chromedp.Navigate(w.n.URL+"/#/log"),
			chromedp.Reload(),
			chromedp.WaitVisible(chromedp.ID("log-warning")),
		)
		if text := eval[string](t, ctx, `document.getElementById("log-warning").textContent`); !strings.Contains(text, c.want) {
			t.Errorf("%s: the warning says %q", c.what, text)
		}
	}
}

// TestMapTilesFromAConfiguredServer: with serve --map-tiles, the map loads its tiles from that server
// (the page's CSP lets its origin through, for images) and still draws the track over them.
func TestMapTilesFromAConfiguredServer(t *testing.T) {
	ctx := browser(t)
	var tiles atomic.Int64
	// A 1×1 PNG for every tile.
	png, _ := base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tiles.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	}))
	defer ts.Close()
	w := newWorldWith(t, web.Options{MapTiles: ts.URL + "/tiles/{z}/{x}/{y}.png", MapAttribution: "Test tiles"})
	kf := keyFile(t, w.owner, "glovebox demo")
	run(t, ctx, "the map with tiles",
		chromedp.Navigate(w.n.URL+"/#/vehicles/"+strconv.FormatUint(w.car, 10)),
		chromedp.WaitVisible(chromedp.ID("keyfile")),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{kf}),
		chromedp.SendKeys(chromedp.ID("password"), "glovebox demo"),
		chromedp.Click(chromedp.ID("unlock")),
		chromedp.Poll[chromedp.Void](mapTrips+` > 0 &&
			[...document.querySelectorAll("#map img.leaflet-tile")].some((i) => i.complete && i.naturalWidth > 0)`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	if tiles.Load() == 0 {
		t.Error("no tile was requested")
	}
	if text := eval[string](t, ctx, `document.querySelector(".leaflet-control-attribution").textContent`); !strings.Contains(text, "Test tiles") {
		t.Errorf("the attribution says %q", text)
	}
}
