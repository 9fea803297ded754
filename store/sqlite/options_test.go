package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/telemetry"
)

// TestMapRecordsMapsOnlyTheRecordsFile opens stores with and without Options.MapRecords: the records
// file's connections are given the map (SQLite caps it at its compile-time maximum), the derived file's
// never are, and the node's default maps nothing.
func TestMapRecordsMapsOnlyTheRecordsFile(t *testing.T) {
	for _, tc := range []struct {
		name             string
		opts             sqlite.Options
		records, signals int64
	}{
		{"the node's", sqlite.Options{}, 0, 0},
		{"a mebibyte", sqlite.Options{MapRecords: 1 << 20}, 1 << 20, 0},
		{"more than SQLite allows", sqlite.Options{MapRecords: 1 << 40}, 2147418112, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.OpenTelemetryWith(filepath.Join(t.TempDir(), "telemetry.db"), telemetry.DefaultCatalog, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var records, signals int64
			if err := s.DB().QueryRow(`PRAGMA mmap_size`).Scan(&records); err != nil {
				t.Fatal(err)
			}
			if err := s.SignalsDB().QueryRow(`PRAGMA mmap_size`).Scan(&signals); err != nil {
				t.Fatal(err)
			}
			if records != tc.records || signals != tc.signals {
				t.Errorf("mmap_size %d (records), %d (signals), want %d, %d", records, signals, tc.records, tc.signals)
			}
		})
	}
}
