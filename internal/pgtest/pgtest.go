// Package pgtest runs a real, throw-away PostgreSQL server for tests: Debian's binaries
// (/usr/lib/postgresql/<version>/bin), initdb and pg_ctl in a temporary directory, a random TCP port on
// loopback and the unix socket in that directory, and a fresh database for each test.
//
// PostgreSQL refuses to run as root. When the tests run as root (as CI does), the cluster belongs to and
// runs as the unprivileged "postgres" user the Debian package creates (or "nobody" when there is none).
//
// When no PostgreSQL binaries are installed the tests that need one are skipped, unless the environment
// sets GLOVEBOX_REQUIRE_POSTGRES=1 (as .ci/run does), in which case they fail: CI never skips silently.
//
// It imports nothing of the project (the stores' tests import it, not the other way), and only tests and
// internal/bench may import it.
//
// A package shares one server among its tests:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		dsn := pgtest.Database(t) // a new empty database, dropped when the test ends
//		…
//	}
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireEnv is the environment variable that turns a missing PostgreSQL into a test failure.
const RequireEnv = "GLOVEBOX_REQUIRE_POSTGRES"

// ErrNotInstalled is returned by Start when no PostgreSQL binaries are found.
var ErrNotInstalled = errors.New("pgtest: PostgreSQL is not installed (apt-get install postgresql)")

// Server is a running PostgreSQL cluster in a temporary directory.
type Server struct {
	// Dir is the cluster's directory: data/ (PGDATA), the unix socket and the server log.
	Dir string
	// Port is the TCP port on 127.0.0.1 (also the number in the unix socket's name).
	Port int
	bin  string
	cred *syscall.Credential // nil when not running as root
}

// BinDir returns the bin directory of the newest PostgreSQL installed the Debian way, or ErrNotInstalled.
func BinDir() (string, error) {
	if d := os.Getenv("GLOVEBOX_PG_BIN"); d != "" {
		return d, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", ErrNotInstalled
	}
	sort.Slice(matches, func(i, j int) bool { return pgVersion(matches[i]) < pgVersion(matches[j]) })
	return filepath.Dir(matches[len(matches)-1]), nil
}

func pgVersion(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// Start creates and starts a new cluster. Stop it with Stop.
func Start(ctx context.Context) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "glovebox-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: couldn't create a directory: %w", err)
	}
	s := &Server{Dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		if s.cred, err = unprivileged(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: couldn't hand %s to the postgres user: %w", dir, err)
		}
	}
	if out, err := s.run(ctx, "initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	// A free port can be taken between choosing it and the server binding it: try a few.
	for attempt := 0; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			break
		}
		if err = s.start(ctx); err == nil {
			return s, nil
		}
		if attempt == 2 {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

// start starts the server of an initialized cluster on s.Port and waits until it takes connections.
func (s *Server) start(ctx context.Context) error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=300 -c shared_buffers=64MB", s.Port, s.Dir)
	out, err := s.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", s.data(), "-l", filepath.Join(s.Dir, "server.log"), "-o", opts)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return nil
}

// Halt stops the server as an operator would (pg_ctl stop -m fast: sessions are ended, transactions in
// flight rolled back) and keeps its data, for Resume. Tests of a database that goes away use it on a
// server of their own (Start), never on the Shared one.
func (s *Server) Halt(ctx context.Context) error {
	if out, err := s.run(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", s.data()); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Resume starts a halted server again on the same port and socket, with the same data.
func (s *Server) Resume(ctx context.Context) error { return s.start(ctx) }

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

// run runs one of the PostgreSQL programs as the cluster's owner.
func (s *Server) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
		cmd.Env = append(cmd.Env, "HOME="+s.Dir)
	}
	return cmd.CombinedOutput()
}

// unprivileged returns the credential of the postgres user, or of nobody.
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil && uid != 0 {
			return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
		}
	}
	return nil, errors.New("pgtest: running as root and there is no postgres or nobody user to run PostgreSQL as")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: couldn't find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// DSN returns the URL of database name over the unix socket, as the superuser postgres.
func (s *Server) DSN(name string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", name, s.Dir, s.Port)
}

// CreateDatabase creates an empty database with a random name and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	if err := s.exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: couldn't create a database: %w", err)
	}
	return s.DSN(name), nil
}

// DropDatabase drops a database made by CreateDatabase, closing its connections first.
func (s *Server) DropDatabase(ctx context.Context, dsn string) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return err
	}
	return s.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{cfg.Database}.Sanitize()+" WITH (FORCE)")
}

func (s *Server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop stops the server (fast shutdown) and deletes its directory.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := s.run(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", s.data())
	os.RemoveAll(s.Dir)
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Main runs the package's tests and stops the shared server, if a test started it. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// Shared returns the package's shared server, starting it on first use. Without PostgreSQL it skips t
// (or fails it when GLOVEBOX_REQUIRE_POSTGRES=1). The package's TestMain must call Main, which stops it.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.srv, shared.err = Start(ctx)
	})
	if shared.err != nil {
		if errors.Is(shared.err, ErrNotInstalled) && !Required() {
			t.Skipf("%v; set %s=1 to make this a failure", shared.err, RequireEnv)
		}
		t.Fatal(shared.err)
	}
	return shared.srv
}

// Required reports whether GLOVEBOX_REQUIRE_POSTGRES asks for tests to fail rather than skip.
func Required() bool {
	v := strings.TrimSpace(os.Getenv(RequireEnv))
	return v != "" && v != "0"
}

// Database returns the URL of a new empty database on the shared server, dropped when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	srv := Shared(t)
	dsn, err := srv.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.DropDatabase(context.Background(), dsn); err != nil {
			t.Logf("couldn't drop the test database: %v", err)
		}
	})
	return dsn
}
