package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/store/storetest"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/webhook/outbox"
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

func TestAccessLogConformance(t *testing.T) {
	storetest.TestAccessLog(t, func(t *testing.T) accesslog.Store {
		l, err := sqlite.OpenAccessLog(filepath.Join(t.TempDir(), "access.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	})
}

func TestReaderConformance(t *testing.T) {
	open := func(t *testing.T) storetest.Reader {
		s, err := sqlite.OpenTelemetry(filepath.Join(t.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	// Indexed but not rolled up: every query reads stale spans from the values.
	t.Run("indexed", func(t *testing.T) {
		storetest.TestReader(t, open, func(ctx context.Context, s storetest.Reader) error {
			_, err := s.(*sqlite.Telemetry).Index(ctx)
			return err
		})
	})
	// Rolled up: whole units come from the roll-ups.
	t.Run("rolled up", func(t *testing.T) {
		storetest.TestReader(t, open, func(ctx context.Context, s storetest.Reader) error {
			if _, err := s.(*sqlite.Telemetry).Index(ctx); err != nil {
				return err
			}
			_, err := s.(*sqlite.Telemetry).Roll(ctx)
			return err
		})
	})
}

func TestEventsConformance(t *testing.T) {
	storetest.TestEvents(t, func(t *testing.T) (storetest.EventStore, func()) {
		s, err := sqlite.OpenTelemetry(filepath.Join(t.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, func() {
			if _, err := s.Index(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestDeleterConformance(t *testing.T) {
	var path string
	open := func(t *testing.T) storetest.Deleting {
		path = filepath.Join(t.TempDir(), "telemetry.db")
		s, err := sqlite.OpenTelemetry(path, telemetry.DefaultCatalog)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	reopen := func(t *testing.T, s storetest.Deleting) storetest.Deleting {
		if err := s.(*sqlite.Telemetry).Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := sqlite.OpenTelemetry(path, telemetry.DefaultCatalog)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s2.Close() })
		return s2
	}
	storetest.TestDeleter(t, open, reopen, func(ctx context.Context, s storetest.Deleting) error {
		if _, err := s.(*sqlite.Telemetry).Index(ctx); err != nil {
			return err
		}
		_, err := s.(*sqlite.Telemetry).Roll(ctx)
		return err
	})
}

func TestWebhooksConformance(t *testing.T) {
	storetest.TestWebhooks(t, func(t *testing.T) outbox.Store {
		s, err := sqlite.OpenWebhooks(filepath.Join(t.TempDir(), "webhooks.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestCredentialsConformance(t *testing.T) {
	storetest.TestAttestations(t, func(t *testing.T) storetest.Credentials {
		s, err := sqlite.OpenCredentials(filepath.Join(t.TempDir(), "credentials.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
