package web_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/sim"
)

// TestDemoSharingAndNotFoundJourney runs the demo as serve --demo does (the simulator with its insurer
// app, which reads its cars through the API every half second here) and signs in with the key file the
// demo writes: the Sharing tab shows the insurer's grant and its reads in the access log, the developer
// console shows the app with its three cars, Revoke ends the grant. Then addresses that show nothing: a
// car that does not exist replaces the page it was opened from with a not-found page, on a fresh load
// too, and so does an unknown page.
func TestDemoSharingAndNotFoundJourney(t *testing.T) {
	ctx := browser(t)
	n := testnode.Start(t, testnode.Options{Origin: "glovebox.test/demo"})
	keys := t.TempDir()
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := sim.Run(runCtx, sim.Options{Node: n.URL, Vehicles: 4, Seed: 9, KeysDir: keys, OwnerPassphrase: sim.DemoPassphrase,
			DemoApp: true, DemoAppEvery: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		done <- err
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("the demo: %v", err)
		}
	})
	// Ready when the insurer's first read of car 1 is in its access log.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if entries, err := n.AccessLog.List(t.Context(), 1, 0, 10); err == nil && len(entries) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the demo's insurer did not read car 1 within two minutes")
		}
	}
	const app = `"Acme Insurance (demo)"`
	run(t, ctx, "sign in with the demo's key file and open car 1's sharing",
		chromedp.Navigate(n.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("keyfile")),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{filepath.Join(keys, sim.OwnerKeyFile)}),
		chromedp.SendKeys(chromedp.ID("password"), sim.DemoPassphrase),
		chromedp.Click(chromedp.ID("unlock")),
		chromedp.WaitVisible(chromedp.CSS("#car-1")),
		chromedp.Navigate(n.URL+"/#/vehicles/1/sharing"),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#grants li.grant h3")].some((e) => e.textContent === `+app+`)`, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#access-table tbody tr")].some((r) => r.textContent.includes(`+app+`) && r.textContent.includes("signalsLatest") && r.textContent.includes("allowed"))`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	purpose := eval[string](t, ctx, `document.querySelector("#grants li.grant .purpose").textContent`)
	if purpose != "“"+sim.InsurerPurpose+"”" {
		t.Errorf("the grant's purpose reads %q", purpose)
	}

	run(t, ctx, "the developer console shows the demo app and its cars",
		chromedp.Navigate(n.URL+"/#/developer"),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#apps article h2")].some((e) => e.textContent === `+app+`)`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	if stats := eval[string](t, ctx, `document.querySelector("#apps article .meta").textContent`); stats != "3 cars granted access: Car readings (3), Approximate location (3)." {
		t.Errorf("the app's card says %q", stats)
	}

	run(t, ctx, "revoke the demo app's grant",
		chromedp.Navigate(n.URL+"/#/vehicles/1/sharing"),
		chromedp.WaitVisible(chromedp.CSS("#grants li.grant button.danger")),
		chromedp.Click(chromedp.CSS("#grants li.grant button.danger")),
		statusSays("Revoked: Acme Insurance (demo) can no longer read this car."),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#grants li.grant").length === 0`, chromedp.WithPollingTimeout(30*time.Second)),
	)

	run(t, ctx, "a car that does not exist, opened from the sharing page",
		chromedp.Navigate(n.URL+"/#/vehicles/999"),
		chromedp.WaitVisible(chromedp.ID("not-found")),
	)
	if n := eval[int](t, ctx, `document.querySelectorAll("#grants, #access-table").length`); n != 0 {
		t.Errorf("the previous page is still on screen under the not-found page")
	}
	if text := eval[string](t, ctx, `document.getElementById("view").textContent`); !strings.Contains(text, "There is no such car") {
		t.Errorf("the not-found page says %q", text)
	}
	run(t, ctx, "the same address on a fresh load, and an unknown page",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("not-found")),
		chromedp.Navigate(n.URL+"/#/nowhere"),
		chromedp.WaitVisible(chromedp.ID("not-found")),
	)
}
