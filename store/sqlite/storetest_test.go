package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

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

// openAt returns a function that opens a new telemetry store whose clock says now (nil: the real clock).
func openAt(now *time.Time) func(t *testing.T) *sqlite.Telemetry {
	return func(t *testing.T) *sqlite.Telemetry {
		s, err := sqlite.OpenTelemetry(filepath.Join(t.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if now != nil {
			s.Now = func() time.Time { return *now }
		}
		return s
	}
}

// clocks are the ways the suites run: the data's hours all open (every value a row), all closed (every
// value in chunks from the start), and open when indexed and closed when sealed.
var clocks = []clock{
	{"values in rows of open hours", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}},
	{"values in chunks of closed hours", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}},
	{"rows sealed into chunks", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
}

// clock is one way of running a suite: the store's clock when it indexes, and (if not zero) when it seals.
type clock struct {
	name        string
	index, seal time.Time
}

// settle indexes s at c.index and, if c.seal is set, moves the clock (*now) there and seals.
func (c clock) settle(ctx context.Context, s *sqlite.Telemetry, now *time.Time) error {
	if _, err := s.Index(ctx); err != nil {
		return err
	}
	if c.seal.IsZero() {
		return nil
	}
	*now = c.seal
	_, err := s.Seal(ctx)
	return err
}

func TestReaderConformance(t *testing.T) {
	for _, c := range clocks {
		t.Run(c.name, func(t *testing.T) {
			now := c.index
			open := openAt(&now)
			storetest.TestReader(t, func(t *testing.T) storetest.Reader { return open(t) }, func(ctx context.Context, s storetest.Reader) error {
				return c.settle(ctx, s.(*sqlite.Telemetry), &now)
			})
		})
	}
}

func TestChunksConformance(t *testing.T) {
	for _, c := range clocks {
		t.Run(c.name, func(t *testing.T) {
			now := c.index
			open := openAt(&now)
			storetest.TestChunks(t, func(t *testing.T) storetest.Reader { return open(t) }, func(ctx context.Context, s storetest.Reader) error {
				return c.settle(ctx, s.(*sqlite.Telemetry), &now)
			}, corruptChunk)
		})
	}
}

// corruptChunk cuts the data of the chunk that holds the value of vehicle's signal at at in half.
func corruptChunk(t *testing.T, s storetest.Reader, vehicle uint64, signal string, at int64) (int64, bool) {
	db := s.(*sqlite.Telemetry).SignalsDB()
	var name, start int64
	err := db.QueryRow(`SELECT c.name, c.start FROM chunk_sums c JOIN names n ON n.id = c.name
WHERE c.vehicle = ? AND n.name = ? AND c.start <= ? AND c.end >= ?`, vehicle, signal, at, at).Scan(&name, &start)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE chunk_data SET data = substr(data, 1, length(data) / 2) WHERE vehicle = ? AND name = ? AND start = ?`,
		vehicle, name, start); err != nil {
		t.Fatal(err)
	}
	return start, true
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
	for _, c := range clocks {
		t.Run(c.name, func(t *testing.T) {
			now := c.index
			var path string
			reopen := func(t *testing.T, s storetest.Deleting) storetest.Deleting {
				if err := s.(*sqlite.Telemetry).Close(); err != nil {
					t.Fatal(err)
				}
				s2, err := sqlite.OpenTelemetry(path, telemetry.DefaultCatalog)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s2.Close() })
				s2.Now = func() time.Time { return now }
				return s2
			}
			storetest.TestDeleter(t, func(t *testing.T) storetest.Deleting {
				path = filepath.Join(t.TempDir(), "telemetry.db")
				s, err := sqlite.OpenTelemetry(path, telemetry.DefaultCatalog)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				s.Now = func() time.Time { return now }
				return s
			}, reopen, func(ctx context.Context, s storetest.Deleting) error {
				return c.settle(ctx, s.(*sqlite.Telemetry), &now)
			})
		})
	}
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
