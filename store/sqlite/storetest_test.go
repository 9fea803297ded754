package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/store/storetest"
	"github.com/glovebox/glovebox/telemetry"
)

func TestTelemetryConformance(t *testing.T) {
	storetest.TestTelemetry(t, func(t *testing.T) storetest.Telemetry {
		s, err := sqlite.OpenTelemetry(filepath.Join(t.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
