package postgres_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/auth/challenge"
	"github.com/glovebox/glovebox/connect/flowstate"
	"github.com/glovebox/glovebox/internal/pgtest"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/store/storetest"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/tlog"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// connected returns a pool on a new, empty database, closed when the test ends.
func connected(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Connect(context.Background(), pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// migrated returns a pool on a new database with the schema applied.
func migrated(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool := connected(t)
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// migratedBefore returns a pool on a new database with the schema as a build before migration version
// left it: the migrations below it applied and recorded, as Migrate would have.
func migratedBefore(t testing.TB, version int) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool := connected(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range postgres.Migrations() {
		if m.Version >= version {
			break
		}
		if _, err := pool.Exec(ctx, m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

func TestMigrationsRunUpFromEmptyOnceEvenWhenStartedTogether(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	pool, err := postgres.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := postgres.Open(ctx, dsn); err == nil {
		t.Fatal("Open accepted an empty database")
	}
	results := make(chan []int, 3)
	for range 3 {
		go func() {
			v, err := postgres.Migrate(ctx, pool)
			if err != nil {
				t.Error(err)
			}
			results <- v
		}()
	}
	var all []int
	for range 3 {
		all = append(all, <-results...)
	}
	var want []int
	for _, m := range postgres.Migrations() {
		want = append(want, m.Version)
	}
	if slices.Sort(all); !slices.Equal(all, want) {
		t.Fatalf("applied %v, want each of %v once", all, want)
	}
	if v, _ := postgres.SchemaVersion(ctx, pool); v != postgres.LatestVersion() {
		t.Fatalf("schema version %d, want %d", v, postgres.LatestVersion())
	}
	if again, err := postgres.Migrate(ctx, pool); err != nil || len(again) != 0 {
		t.Fatalf("a second migrate applied %v (%v)", again, err)
	}
	p2, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	p2.Close()
}

func TestTelemetryConformance(t *testing.T) {
	storetest.TestTelemetry(t, func(t *testing.T) storetest.Telemetry { return postgres.NewTelemetry(migrated(t)) })
}

func TestReaderConformance(t *testing.T) {
	// Write stores the derived rows in the same transaction: nothing to settle.
	storetest.TestReader(t, func(t *testing.T) storetest.Reader { return postgres.NewTelemetry(migrated(t)) }, nil)
}

func TestReaderConformanceFromChunks(t *testing.T) {
	// Every hour of the data set is closed: the sealer moves all of it into chunks.
	storetest.TestReader(t, func(t *testing.T) storetest.Reader { return postgres.NewTelemetry(migrated(t)) }, seal)
}

// seal moves every closed hour into chunks, as the sealer does, and checks that it left none in rows.
func seal[S any](ctx context.Context, s S) error {
	tel := any(s).(*postgres.Telemetry)
	if _, err := tel.SealAll(ctx, time.Now()); err != nil {
		return err
	}
	var left int64
	if err := tel.Pool().QueryRow(ctx, `SELECT COUNT(*) FROM signals`).Scan(&left); err != nil {
		return err
	}
	if left != 0 {
		return fmt.Errorf("%d values left in rows after sealing", left)
	}
	return nil
}

func TestEventsConformance(t *testing.T) {
	storetest.TestEvents(t, func(t *testing.T) (storetest.EventStore, func()) {
		return postgres.NewTelemetry(migrated(t)), func() {}
	})
}

func TestAccessLogConformance(t *testing.T) {
	storetest.TestAccessLog(t, func(t *testing.T) accesslog.Store { return postgres.NewAccessLog(migrated(t)) })
}

func TestCredentialsConformance(t *testing.T) {
	storetest.TestAttestations(t, func(t *testing.T) storetest.Credentials { return postgres.NewCredentials(migrated(t)) })
}

func TestRecordsAndSignalsLandInMonthlyPartitions(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	s := postgres.NewTelemetry(pool)
	a := storetest.Record(t, [20]byte{1}, "1", time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC).UnixMilli(), 30)
	b := storetest.Record(t, [20]byte{1}, "2", time.Date(2026, 11, 1, 1, 0, 0, 0, time.UTC).UnixMilli(), 40)
	if _, err := s.Write(ctx, []*telemetry.Record{a, b}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		table string
		want  int
	}{{"records_p202610", 1}, {"records_p202611", 1}, {"signals_p202610", 1}, {"signals_p202611", 1}} {
		var n int
		if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM `+tc.table).Scan(&n); err != nil || n != tc.want {
			t.Errorf("%s: %d rows (%v), want %d", tc.table, n, err, tc.want)
		}
	}
	var v float64
	var at int64
	if err := pool.QueryRow(ctx, `SELECT l.num, l.time FROM latest l JOIN names n ON n.id = l.name WHERE l.vehicle = 1 AND n.name = 'speed'`).Scan(&v, &at); err != nil {
		t.Fatal(err)
	}
	if v != 40 || at != b.Time {
		t.Fatalf("latest speed %v at %d, want 40 at %d", v, at, b.Time)
	}
}

func newSigner(t *testing.T, origin string) (note.Signer, note.Verifier) {
	skey, vkey, err := tlog.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func TestTheLogAppendsProvesAndServesTilesLikeTheFileLog(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	const origin = "glovebox.test/pg"
	signer, v := newSigner(t, origin)
	w, err := postgres.OpenLog(ctx, pool, origin)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := postgres.Acquire(ctx, pool, "test", "http://leader")
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	if err := w.SetWriter(ctx, lease, signer); err != nil {
		t.Fatal(err)
	}
	// The same entries go to a file log, whose tiles are the reference.
	flog, err := tlog.Open(t.TempDir(), origin, signer)
	if err != nil {
		t.Fatal(err)
	}
	defer flog.Close()
	reader, err := postgres.OpenLog(ctx, pool, origin)
	if err != nil {
		t.Fatal(err)
	}
	var all [][]byte
	for batch := 1; batch <= 40; batch++ {
		var es [][]byte
		for i := range batch {
			es = append(es, []byte{byte(batch), byte(i), 'e'})
		}
		first, _, err := w.Append(ctx, es)
		if err != nil {
			t.Fatal(err)
		}
		if first != int64(len(all)) {
			t.Fatalf("appended at %d, want %d", first, len(all))
		}
		if _, _, err := flog.Append(ctx, es); err != nil {
			t.Fatal(err)
		}
		all = append(all, es...)
	}
	if err := reader.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	size, cp := reader.Latest()
	if size != int64(len(all)) || size != 820 {
		t.Fatalf("reader sees %d entries, want %d", size, len(all))
	}
	_, root, err := tlog.OpenCheckpoint(cp, origin, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int64{0, 1, 255, 256, 500, size - 1} {
		p, err := reader.InclusionProof(i, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := xtlog.CheckRecord(p, size, root, i, xtlog.RecordHash(all[i])); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	// A batch's proofs, computed together, are the proofs computed one by one.
	batch := []int64{0, 1, 255, 256, 500, 700, 701, size - 1}
	proofs, err := reader.InclusionProofs(batch, size)
	if err != nil {
		t.Fatal(err)
	}
	for k, i := range batch {
		p, err := reader.InclusionProof(i, size)
		if err != nil || !slices.Equal(proofs[k], p) {
			t.Fatalf("entry %d: the batch's proof differs from its own (%v)", i, err)
		}
	}
	if _, err := reader.InclusionProofs([]int64{0}, size+1); err == nil {
		t.Fatal("proofs in a tree larger than the log's: no error")
	}
	for _, path := range []string{"tile/0/000", "tile/0/003.p/52", "tile/1/000.p/3",
		"tile/entries/000", "tile/entries/001", "tile/entries/003.p/52"} {
		want, err := flog.ReadTile(path)
		if err != nil {
			t.Fatalf("file log %s: %v", path, err)
		}
		got, err := reader.ReadTile(t.Context(), path)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s differs from the file log's (%v)", path, err)
		}
	}
	if _, err := reader.ReadTile(t.Context(), "tile/0/004"); !errors.Is(err, tlog.ErrNotFound) {
		t.Fatalf("a tile beyond the tree: %v", err)
	}
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := reader.ReadTile(gone, "tile/entries/000"); !errors.Is(err, context.Canceled) {
		t.Fatalf("an entry bundle read for a request that is gone: %v, want context.Canceled", err)
	}
	if _, _, err := reader.Append(ctx, [][]byte{{1}}); err == nil {
		t.Fatal("a reader appended")
	}
}

func TestOneSequencerAtATimeAndALostLeaseCannotAppend(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	const origin = "glovebox.test/lease"
	signer, _ := newSigner(t, origin)
	first, err := postgres.Acquire(ctx, pool, "a", "http://a")
	if err != nil {
		t.Fatal(err)
	}
	// A standby waits while the lease is held.
	short, cancel := context.WithTimeout(ctx, 3*postgres.PollInterval)
	if _, err := postgres.Acquire(short, pool, "b", "http://b"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second process took a held lease: %v", err)
	}
	cancel()
	got := make(chan *postgres.Lease, 1)
	go func() {
		l, err := postgres.Acquire(ctx, pool, "b", "http://b")
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	logA, err := postgres.OpenLog(ctx, pool, origin)
	if err != nil {
		t.Fatal(err)
	}
	if err := logA.SetWriter(ctx, first, signer); err != nil {
		t.Fatal(err)
	}
	if _, _, err := logA.Append(ctx, [][]byte{[]byte("by a")}); err != nil {
		t.Fatal(err)
	}
	// The leader's session ends (as when its process dies): the standby takes over with a new epoch.
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	second := <-got
	defer second.Release()
	if second.Epoch() <= first.Epoch() {
		t.Fatalf("epoch %d after %d", second.Epoch(), first.Epoch())
	}
	if holder, url, _, _ := postgres.Leader(ctx, pool); holder != "b" || url != "http://b" {
		t.Fatalf("leader recorded as %q %q", holder, url)
	}
	if _, _, err := logA.Append(ctx, [][]byte{[]byte("by a, too late")}); err == nil {
		t.Fatal("the old leader appended after losing the lease")
	}
	logB, err := postgres.OpenLog(ctx, pool, origin)
	if err != nil {
		t.Fatal(err)
	}
	if err := logB.SetWriter(ctx, second, signer); err != nil {
		t.Fatal(err)
	}
	if first, _, err := logB.Append(ctx, [][]byte{[]byte("by b")}); err != nil || first != 1 {
		t.Fatalf("the new leader appended at %d (%v), want 1", first, err)
	}
	// Fencing: a lease whose epoch was superseded cannot append even on a live session.
	if _, err := pool.Exec(ctx, `UPDATE sequencer_lease SET epoch = epoch + 1`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := logB.Append(ctx, [][]byte{[]byte("stale")}); !errors.Is(err, postgres.ErrNotLeader) {
		t.Fatalf("a superseded lease appended: %v", err)
	}
}

func TestMigrateUpgradesADatabaseAtAnOlderVersion(t *testing.T) {
	ctx := context.Background()
	// A database as an older build left it: only the first migration applied.
	pool := migratedBefore(t, postgres.Migrations()[1].Version)
	applied, err := postgres.Migrate(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, m := range postgres.Migrations()[1:] {
		want = append(want, m.Version)
	}
	if !slices.Equal(applied, want) {
		t.Fatalf("applied %v, want %v", applied, want)
	}
}

func TestDeleterConformance(t *testing.T) {
	var pool *pgxpool.Pool
	storetest.TestDeleter(t, func(t *testing.T) storetest.Deleting {
		pool = migrated(t)
		return postgres.NewTelemetry(pool)
	}, func(t *testing.T, _ storetest.Deleting) storetest.Deleting {
		// A new process on the same database.
		return postgres.NewTelemetry(pool)
	}, nil)
}

func TestDeleterConformanceFromChunks(t *testing.T) {
	var pool *pgxpool.Pool
	storetest.TestDeleter(t, func(t *testing.T) storetest.Deleting {
		pool = migrated(t)
		return postgres.NewTelemetry(pool)
	}, func(t *testing.T, _ storetest.Deleting) storetest.Deleting {
		return postgres.NewTelemetry(pool)
	}, seal)
}

// TestAHungDatabaseFailsTheLogInsteadOfHangingIt holds an exclusive lock on the log's tables, as a database
// that stopped answering would: an append, a refresh and an entry read each fail once the statement
// timeout passes, and the failed append leaves nothing behind.
func TestAHungDatabaseFailsTheLogInsteadOfHangingIt(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	const origin = "glovebox.test/hung"
	signer, _ := newSigner(t, origin)
	lease, err := postgres.Acquire(ctx, pool, "a", "http://a")
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	l, err := postgres.OpenLog(ctx, pool, origin)
	if err != nil {
		t.Fatal(err)
	}
	l.SetStatementTimeout(300 * time.Millisecond)
	if err := l.SetWriter(ctx, lease, signer); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Append(ctx, [][]byte{[]byte("before")}); err != nil {
		t.Fatal(err)
	}
	reader, err := postgres.OpenLog(ctx, pool, origin)
	if err != nil {
		t.Fatal(err)
	}
	reader.SetStatementTimeout(300 * time.Millisecond)

	hold, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, `LOCK TABLE log_entries, log_hashes, log_checkpoints IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Append", func() error { _, _, err := l.Append(ctx, [][]byte{[]byte("while hung")}); return err }},
		{"Refresh", func() error { return reader.Refresh(ctx) }},
		{"Entry", func() error { _, err := reader.Entry(ctx, 0); return err }},
	} {
		if err := c.call(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s while the database hangs: %v, want a deadline error", c.name, err)
		}
	}
	// The caller's own deadline counts too, when it is the sooner.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, err := reader.Entry(short, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Entry with a caller's deadline: %v", err)
	}
	cancel()
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The failed append stored nothing.
	if err := reader.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if reader.Size() != 1 {
		t.Fatalf("after a failed append the log has %d entries, want 1", reader.Size())
	}
}

func TestAHungDatabaseFailsTheLeaseCheckInsteadOfHangingIt(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	lease, err := postgres.Acquire(ctx, pool, "a", "http://a")
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	if err := lease.Check(ctx); err != nil {
		t.Fatalf("check of a live lease: %v", err)
	}
	old := postgres.LeaseCheckTimeout
	postgres.LeaseCheckTimeout = 300 * time.Millisecond
	defer func() { postgres.LeaseCheckTimeout = old }()
	hold, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `LOCK TABLE sequencer_lease IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	// The caller passes no deadline: Check brings its own.
	if err := lease.Check(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("check while the database hangs: %v, want a deadline error", err)
	}
}

func TestChallenges(t *testing.T) {
	storetest.TestChallenges(t, func(t *testing.T) challenge.Store { return postgres.NewChallenges(migrated(t)) })
}

func TestFlowState(t *testing.T) {
	storetest.TestConnect(t, func(t *testing.T) flowstate.Store { return postgres.NewFlowState(migrated(t)) })
}

// TestFlowStateRevocationsAreReadInOrderOnce: what RevokeFamily and RevokeAccess revoke is read back in
// order from any position, once, and an expired token not at all.
func TestFlowStateRevocationsAreReadInOrderOnce(t *testing.T) {
	ctx := context.Background()
	s := postgres.NewFlowState(migrated(t))
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if err := s.AddCode(ctx, "c", flowstate.Code{Request: []byte("{}"), Deadline: t0.Add(time.Minute)}, t0); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.RedeemCode(ctx, "c", "f", t0); !ok || err != nil {
		t.Fatal(ok, err)
	}
	for i, exp := range []time.Duration{time.Hour, 2 * time.Hour} {
		if err := s.Issue(ctx, "f", flowstate.Access{ID: fmt.Sprint("at", i), Expiry: t0.Add(exp)}, [32]byte{byte(i)},
			flowstate.Refresh{Request: []byte("{}"), Deadline: t0.Add(time.Hour)}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RevokeFamily(ctx, "f", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAccess(ctx, flowstate.Access{ID: "single", Expiry: t0.Add(3 * time.Hour)}, t0); err != nil {
		t.Fatal(err)
	}
	ids := func(as []flowstate.Access) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	all, next, err := s.Revocations(ctx, 0, t0)
	if err != nil || !slices.Equal(ids(all), []string{"at0", "at1", "single"}) {
		t.Fatalf("from the start: %v %v", ids(all), err)
	}
	if again, n2, _ := s.Revocations(ctx, next, t0); len(again) != 0 || n2 != next {
		t.Fatalf("read again from %d: %v, next %d", next, ids(again), n2)
	}
	if later, _, _ := s.Revocations(ctx, 0, t0.Add(time.Hour)); !slices.Equal(ids(later), []string{"at1", "single"}) {
		t.Fatalf("an hour later: %v", ids(later))
	}
}

// BenchmarkFlowStateRefresh is the store's share of one refresh-token exchange on PostgreSQL: read the
// token, mark it used (trimming the family's used tokens), record the rotated one and its access token.
func BenchmarkFlowStateRefresh(b *testing.B) {
	ctx := context.Background()
	pool, err := postgres.Connect(ctx, pgtest.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	s := postgres.NewFlowState(pool)
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if err := s.AddCode(ctx, "c", flowstate.Code{Request: []byte("{}"), Deadline: t0.Add(time.Minute)}, t0); err != nil {
		b.Fatal(err)
	}
	if ok, err := s.RedeemCode(ctx, "c", "f", t0); !ok || err != nil {
		b.Fatal(ok, err)
	}
	rt := [32]byte{}
	r := flowstate.Refresh{Request: []byte(`{"scope":"openid vehicle:signals"}`), Vehicles: []uint64{1}, Deadline: t0.Add(30 * 24 * time.Hour)}
	if err := s.Issue(ctx, "f", flowstate.Access{ID: "at", Expiry: t0.Add(time.Hour)}, rt, r, t0); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		if _, ok, err := s.Refresh(ctx, rt, now); !ok || err != nil {
			b.Fatal(ok, err)
		}
		if ok, err := s.UseRefresh(ctx, rt, now); !ok || err != nil {
			b.Fatal(ok, err)
		}
		rt = sha256.Sum256(rt[:])
		if err := s.Issue(ctx, "f", flowstate.Access{ID: fmt.Sprint("at", i), Expiry: now.Add(time.Hour)}, rt, r, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFlowStateWritesForgetExpiredRowsInBoundedSteps: each write deletes at most 100 forgotten rows of
// the tables it touches, so a backlog goes in a few writes and no write is long.
func TestFlowStateWritesForgetExpiredRowsInBoundedSteps(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	s := postgres.NewFlowState(pool)
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for i := range 150 {
		if err := s.AddCode(ctx, fmt.Sprint("old", i), flowstate.Code{Request: []byte("{}"), Deadline: t0}, t0.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM connect_codes`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	later := t0.Add(flowstate.UsedCodeMemory) // the old codes are forgotten from this instant
	var got []int
	for i := range 3 {
		if err := s.AddCode(ctx, fmt.Sprint("new", i), flowstate.Code{Request: []byte("{}"), Deadline: later.Add(time.Minute)}, later); err != nil {
			t.Fatal(err)
		}
		got = append(got, count())
	}
	if want := []int{51, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("codes held after each write: %v, want %v", got, want)
	}
}

// TestChunksConformance runs the shared cases of values across the end of an hour with the values as
// rows and sealed into chunks.
func TestChunksConformance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		settle func(ctx context.Context, s storetest.Reader) error
	}{
		{"rows", nil},
		{"sealed", seal[storetest.Reader]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.TestChunks(t, func(t *testing.T) storetest.Reader { return postgres.NewTelemetry(migrated(t)) }, tc.settle, corruptChunk)
		})
	}
}

// corruptChunk cuts the data of the chunk that holds the value of vehicle's signal at at in half.
func corruptChunk(t *testing.T, s storetest.Reader, vehicle uint64, signal string, at int64) (int64, bool) {
	ctx := context.Background()
	pool := s.(*postgres.Telemetry).Pool()
	var name int32
	var start int64
	err := pool.QueryRow(ctx, `SELECT c.name, c.start FROM chunk_sums c JOIN names n ON n.id = c.name
WHERE c.vehicle = $1 AND n.name = $2 AND c.start <= $3 AND c."end" >= $3`, int64(vehicle), signal, at).Scan(&name, &start)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE chunk_data SET data = substring(data FROM 1 FOR length(data) / 2)
WHERE vehicle = $1 AND name = $2 AND start = $3`, int64(vehicle), name, start); err != nil {
		t.Fatal(err)
	}
	return start, true
}
