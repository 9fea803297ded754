package browsertest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

// writeScreenshots makes the browser tests write docs/screenshots; without it they take every screenshot
// (and check its width) but write nothing, so that go test ./... leaves the checkout as it found it.
// Regenerate the pictures with: go test ./web ./connect -run . -screenshots
var writeScreenshots = flag.Bool("screenshots", false, "write the browser tests' screenshots to docs/screenshots")

// SaveScreenshot writes a PNG to docs/screenshots/name.png (relative to a package directory one level
// below the checkout's top) when the test binary runs with -screenshots, and does nothing otherwise.
func SaveScreenshot(name string, png []byte) error {
	if !*writeScreenshots {
		return nil
	}
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("screenshot %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		return fmt.Errorf("screenshot %s: %w", name, err)
	}
	return nil
}
