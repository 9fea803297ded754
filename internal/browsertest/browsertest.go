// Package browsertest starts the headless Chromium the browser tests drive (chromedp), and writes their
// screenshots only when asked. It imports nothing of the project, and only tests may import it.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Start starts a headless Chromium for t, with a fresh profile, closed when t ends. Without Chromium the
// test is skipped, unless GLOVEBOX_REQUIRE_BROWSER is set (as .ci/run does), when it fails. The flags keep
// Chromium off the network it would otherwise call at start (this machine refuses those connections).
func Start(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if path, err = exec.LookPath("chromium-browser"); err != nil {
			if os.Getenv("GLOVEBOX_REQUIRE_BROWSER") != "" {
				t.Fatal("chromium is not installed, and GLOVEBOX_REQUIRE_BROWSER is set")
			}
			t.Skip("chromium is not installed (apt-get install chromium)")
		}
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelB := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// A guard against a hung browser, not a performance bound: scrypt in a slow CI browser takes seconds.
	ctx, cancelC := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}
