package web_test

import (
	"archive/zip"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/glovebox/glovebox/export"
)

// TestYourDataJourney: on the car's Your data tab the owner exports the car's data (the page shows the
// bytes as they arrive; the browser saves a zip that export.Verify accepts), sets a retention limit of
// 30 days (the policy on the page and in the ledger; 4000 days is refused in words and changes nothing),
// and erases what was recorded before now: after the node's sweep the erasure is done on the page, with
// what it deleted, and the car has no data left to read.
func TestYourDataJourney(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	kf := keyFile(t, w.owner, "glovebox demo")
	car := strconv.FormatUint(w.car, 10)
	downloads := t.TempDir()
	done := chromedp.Events(ctx, cdpbrowser.DownloadProgress)

	run(t, ctx, "sign in and open Your data",
		chromedp.Navigate(w.n.URL+"/#/vehicles/"+car+"/data"),
		chromedp.WaitVisible(chromedp.ID("keyfile")),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{kf}),
		chromedp.SendKeys(chromedp.ID("password"), "glovebox demo"),
		chromedp.Click(chromedp.ID("unlock")),
		chromedp.WaitVisible(chromedp.ID("retention-policy")),
	)
	if got := eval[string](t, ctx, `document.getElementById("retention-policy").textContent`); got != "Kept until you erase it: no time limit." {
		t.Errorf("before any SetRetention the policy says %q", got)
	}
	checkLabels(t, ctx, "your data")

	// Export: every text the progress line shows is kept, to see the bytes count up.
	run(t, ctx, "export",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, EventsEnabled: new(true)})
			return err
		}),
		chromedp.Evaluate[chromedp.Void](`window.seen = [];
			new MutationObserver(() => window.seen.push(document.getElementById("export-bytes").textContent))
				.observe(document.getElementById("export-bytes"), { childList: true, characterData: true, subtree: true });`),
		chromedp.Click(chromedp.ID("export-submit")),
		statusSays("Exported"),
	)
	var file string
	for ev, err := range done {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			file = filepath.Join(downloads, eval[string](t, ctx, `/saved as (.*)\.$/.exec(document.getElementById("export-bytes").textContent)[1]`))
			break
		}
		if ev.State == cdpbrowser.DownloadProgressStateCanceled {
			t.Fatal("the browser cancelled the download")
		}
	}
	st, err := os.Stat(file)
	if err != nil || st.Size() == 0 {
		t.Fatalf("the downloaded archive: %v %v", st, err)
	}
	if shown := eval[string](t, ctx, `document.getElementById("export-bytes").dataset.bytes`); shown != strconv.FormatInt(st.Size(), 10) {
		t.Errorf("the page says it received %s bytes, the file has %d", shown, st.Size())
	}
	counting := regexp.MustCompile(`^[0-9.,]+ (bytes|kB|MB)( of [0-9.,]+ (bytes|kB|MB))? received$`)
	var partial []string
	for _, s := range eval[[]string](t, ctx, `window.seen`) {
		if counting.MatchString(s) && !strings.HasPrefix(s, "0 bytes") {
			partial = append(partial, s)
		}
	}
	if len(partial) == 0 {
		t.Errorf("the progress line never counted the bytes received: %q", eval[[]string](t, ctx, `window.seen`))
	}
	zr, err := zip.OpenReader(file)
	if err != nil {
		t.Fatalf("the download is not a zip: %v", err)
	}
	rep, err := export.Verify(&zr.Reader, w.n.LogKey)
	zr.Close()
	if err != nil || rep.Records == 0 {
		t.Fatalf("the downloaded archive does not verify: %+v %v", rep, err)
	}

	// Retention: 4000 days is more than the ledger takes; 30 is kept.
	run(t, ctx, "too long a retention",
		chromedp.SetValue(chromedp.ID("retention-days"), "4000"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("retention-form").dispatchEvent(new Event("submit", { cancelable: true }))`),
		statusSays("at most 3650 days"),
	)
	run(t, ctx, "a retention of 30 days",
		chromedp.SetValue(chromedp.ID("retention-days"), "30"),
		chromedp.Click(chromedp.ID("retention-submit")),
		statusSays("Saved"),
		chromedp.Poll[chromedp.Void](`document.getElementById("retention-policy").textContent === "Kept for 30 days, then deleted."`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	if v, err := w.n.Client.Vehicle(context.Background(), w.car); err != nil || v.RetentionDays != 30 {
		t.Fatalf("the car's retention after setting 30 days: %+v %v", v, err)
	}
	run(t, ctx, "your data screenshots", both("webapp-data")...)

	// Erase everything recorded so far.
	// A time to come is taken as now: everything recorded so far.
	run(t, ctx, "erase",
		chromedp.Evaluate[chromedp.Void](`{
			const local = (t) => new Date(t - new Date(t).getTimezoneOffset() * 60000).toISOString().slice(0, 16);
			document.getElementById("erase-before").value = local(Date.now() + 120000);
		}`),
		chromedp.Click(chromedp.ID("erase-sure")),
		chromedp.Click(chromedp.ID("erase-submit")),
		statusSays("Erasure recorded"),
		chromedp.WaitVisible(chromedp.CSS("#erasure-list li")),
	)
	if got := eval[string](t, ctx, `document.querySelector("#erasure-list li").textContent`); !strings.Contains(got, "pending") {
		t.Errorf("the new erasure says %q, want pending", got)
	}
	if _, err := w.n.Sweeper.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "the erasure done",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#erasure-list li")),
	)
	got := eval[string](t, ctx, `document.querySelector("#erasure-list li").textContent`)
	if m := regexp.MustCompile(`done.*Deleted: ([0-9,]+) records`).FindStringSubmatch(got); m == nil || m[1] == "0" {
		t.Errorf("after the sweep the erasure says %q, want done with the records it deleted", got)
	}
	if _, code := w.speed(t, signIn(t, w.n, w.owner)); code != "NO_DATA" {
		t.Errorf("after the erasure the owner reads the speed with %q, want no data", code)
	}
}
