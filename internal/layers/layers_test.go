// Package layers holds the test of the project's import directions: which of its packages may import
// which, so that the arrows keep pointing down (cmd → node → api → access, accesslog → ledger, telemetry
// → tlog, stores). It has no code of its own.
package layers

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/glovebox/glovebox"

// allowed lists, for every package of the module, the packages of the module it may import (tests not
// counted). A package missing from the table fails the test: a new package adds its row here, naming only
// packages below it, and no package may gain an edge upwards.
var allowed = map[string][]string{
	"ledger":    {},
	"tlog":      {},
	"accesslog": {},
	"access":    {"ledger"},
	"telemetry": {"ledger", "telemetry/chunk"},
	// telemetry/chunk encodes signal values as compressed chunks with their summaries (issue 16): the
	// standard library only, below both stores.
	"telemetry/chunk": {},
	// telemetry/series maps an hour of a signal's values to chunks and back, for both stores.
	"telemetry/series": {"telemetry", "telemetry/chunk"},
	// telemetry/segment cuts trips from signal values: pure, below everything that reads it.
	"telemetry/segment": {},
	// telemetry/stream deduplicates by telemetry.RecordKey, which store/postgres's lookup shares: no store
	// imports it.
	"telemetry/stream": {"telemetry"},
	// telemetry/live hands accepted records to GraphQL subscriptions.
	"telemetry/live": {"telemetry"},
	// Stores implement the contracts of the packages below them (accesslog, webhook/outbox, telemetry's
	// Reader, ledger's Store) and import nothing that uses them.
	"store/sqlite": {"accesslog", "attestation", "credential", "ledger", "telemetry", "telemetry/chunk", "telemetry/series", "webhook/outbox"},
	// webhook/outbox is the webhook store's contract (its types and Store): below the engine and the stores.
	"webhook/outbox": {},
	"webhook":        {"access", "accesslog", "ledger", "telemetry", "telemetry/segment", "webhook/outbox"},
	"store/postgres": {"accesslog", "attestation", "auth/challenge", "connect/flowstate", "credential", "ledger", "telemetry", "telemetry/chunk", "telemetry/series", "tlog", "webhook/outbox"},
	// store/sqlite/sqlitetest reads what store/sqlite wrote, for tests above it (node, cmd/glovebox).
	"store/sqlite/sqlitetest": {"store/sqlite"},
	"store/storetest":         {"accesslog", "attestation", "auth/challenge", "connect/flowstate", "credential", "telemetry", "webhook/outbox"},
	"api/wire":                {"accesslog", "ledger"},
	// auth verifies sign-in signatures with ledger.PersonalHash and ledger.Recover: nothing of telemetry.
	"auth": {"auth/challenge", "internal/expiry", "ledger"},
	// auth/challenge is the contract of the outstanding sign-in challenges (and its in-memory store): below
	// auth and the stores that implement it.
	"auth/challenge": {},
	"connect":        {"auth", "connect/flowstate", "ledger"},
	// connect/flowstate is the contract of the OpenID Provider's flow state (and its in-memory store): below
	// connect and the stores that implement it.
	"connect/flowstate":              {"internal/expiry"},
	"api/mqtt":                       {"internal/connlimit", "ledger", "telemetry"},
	"api/graphql/internal/exec":      {},
	"api/graphql/internal/schemagen": {"ledger", "telemetry"},
	"api/graphql/internal/gen":       {"api/graphql/internal/schemagen", "telemetry"},
	// GraphQL reads telemetry only through telemetry.Reader: no store.
	"api/graphql": {"access", "accesslog", "api/graphql/internal/exec", "attestation", "credential", "api/graphql/internal/schemagen", "ledger", "telemetry",
		"telemetry/live", "telemetry/segment"},
	// credential issues and verifies SD-JWT VCs from records and log proofs: below the API that serves it.
	"credential": {"ledger", "telemetry", "tlog"},
	// attestation parses and checks third parties' signed statements about a car (DIMO's format): below the
	// stores that keep them and the API that takes them.
	"attestation": {"ledger"},
	// export builds and verifies an owner's data export from the log and telemetry.Reader: below the API.
	"export":             {"accesslog", "ledger", "telemetry", "telemetry/segment", "tlog"},
	"api":                {"access", "accesslog", "api/graphql", "api/wire", "attestation", "auth", "connect", "credential", "export", "internal/connlimit", "internal/expiry", "ledger", "telemetry", "tlog", "webhook"},
	"web":                {},
	"web/internal/build": {},
	// The client and everything built on it speak the API through api/wire and never link the server.
	"client": {"api/wire", "ledger", "telemetry"},
	"verify": {"client", "internal/atomicfile", "ledger", "tlog"},
	"sim":    {"api/mqtt", "api/wire", "client", "ledger", "telemetry"},
	"node":   {"accesslog", "api", "api/graphql", "api/wire", "attestation", "auth", "connect", "connect/flowstate", "credential", "export", "ledger", "store/postgres", "store/sqlite", "telemetry", "telemetry/live", "telemetry/stream", "tlog", "web", "webhook"},
	// internal/expiry is a min-heap of keys by expiry time for the in-memory stores that forget.
	"internal/expiry": {},
	// internal/connlimit caps the connections per client address of the HTTP and MQTT listeners.
	"internal/connlimit": {},
	// internal/atomicfile replaces files whole (temporary file, fsync, rename).
	"internal/atomicfile": {},
	"internal/pgtest":     {},
	// internal/tmpfs mounts a small file system that fills up, for the full-disk tests.
	"internal/tmpfs":       {},
	"internal/browsertest": {},
	"internal/testnode":    {"api", "client", "ledger", "node", "telemetry", "web", "webhook"},
	"verify/verifytest":    {"api/wire", "client", "internal/testnode", "ledger", "tlog"},
	"internal/attack":      {"api", "internal/testnode", "ledger", "telemetry"},
	"internal/bench": {"api", "api/mqtt", "client", "export", "internal/pgtest", "ledger", "node", "store/postgres", "store/sqlite", "telemetry",
		"telemetry/stream", "tlog", "webhook", "sim"},
	"cmd/glovebox": {"api", "api/mqtt", "client", "credential", "export", "internal/atomicfile", "internal/bench", "ledger", "node", "sim", "store/postgres", "store/sqlite", "telemetry",
		"telemetry/stream", "verify", "web", "webhook"},
	"examples/connect-app": {"client", "ledger"},
	"examples/go-signin":   {},
	"internal/layers":      {},
	"internal/jsclients":   {},
}

type pkg struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	TestGoFiles  []string
	XTestGoFiles []string
	Imports      []string
	Deps         []string
}

func list(t *testing.T, args ...string) []pkg {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func TestImportsPointDown(t *testing.T) {
	for _, p := range list(t, module+"/...") {
		name, _ := rel(p.ImportPath)
		may, ok := allowed[name]
		if !ok {
			t.Errorf("package %s is not in the import table: add a row for it to allowed in internal/layers/layers_test.go, "+
				"listing the packages of this module it may import (only packages below it)", name)
			continue
		}
		for _, imp := range p.Imports {
			r, own := rel(imp)
			if own && !slices.Contains(may, r) {
				t.Errorf("%s imports %s, which the table in internal/layers/layers_test.go does not allow. If the edge points down, "+
					"add %q to the row of %s; if it points up (a store importing the API, the client importing the server, …), "+
					"move what is shared into a package below both instead", name, r, r, name)
			}
		}
	}
}

func TestTheClientDoesNotLinkTheServer(t *testing.T) {
	forbidden := []string{
		"modernc.org/sqlite", "github.com/jackc/pgx", "github.com/lib/pq", // SQL drivers
		"github.com/99designs/gqlgen", "github.com/go-jose/go-jose", "github.com/uber/h3-go",
		"github.com/mochi-mqtt/server", "github.com/nats-io/nats-server",
		module + "/api", module + "/node", module + "/store/",
	}
	for _, root := range []string{"client", "verify", "api/wire"} {
		for _, p := range list(t, "-deps=false", module+"/"+root) {
			for _, d := range p.Deps {
				for _, f := range forbidden {
					if d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/") && !strings.HasPrefix(d, module+"/api/wire") {
						t.Errorf("%s links %s (through its dependencies): a program using it would link the server", root, d)
					}
				}
			}
		}
	}
}

// TestNoUpwardDependencies checks, through every dependency and not only direct imports, the edges issue
// 12 removed: a store links neither the engines that use it nor access; auth links no telemetry.
func TestNoUpwardDependencies(t *testing.T) {
	forbidden := map[string][]string{
		"store/sqlite":   {"access", "api", "telemetry/stream", "webhook"},
		"store/postgres": {"access", "api", "telemetry/stream", "webhook"},
		"auth":           {"telemetry", "access", "api"},
		"accesslog":      {"access", "ledger", "telemetry"},
		"webhook/outbox": {"access", "ledger", "telemetry", "webhook"},
	}
	for root, bad := range forbidden {
		for _, p := range list(t, module+"/"+root) {
			for _, d := range p.Deps {
				r, own := rel(d)
				if own && slices.Contains(bad, r) {
					t.Errorf("%s depends on %s: an upward edge; move what they share below both", root, r)
				}
			}
		}
	}
}

// TestEveryPackageDocSaysWhatItMayImport demands a package doc comment, in the manner of tlog/doc.go, that
// says what the package imports or must not import, for every package but generated ones: the table above
// enforces the arrows, the doc tells the reader why.
func TestEveryPackageDocSaysWhatItMayImport(t *testing.T) {
	for _, p := range list(t, module+"/...") {
		name, _ := rel(p.ImportPath)
		files := p.GoFiles
		if len(files) == 0 {
			files = append(p.TestGoFiles, p.XTestGoFiles...)
		}
		var doc strings.Builder
		generated := true
		for _, f := range files {
			af, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			generated = generated && ast.IsGenerated(af)
			if af.Doc != nil {
				doc.WriteString(af.Doc.Text())
			}
		}
		switch {
		case generated:
		case doc.Len() == 0:
			t.Errorf("package %s has no package doc comment", name)
		case !strings.Contains(strings.ToLower(doc.String()), "import"):
			t.Errorf("the package doc of %s does not say what it imports or must not import", name)
		}
	}
}

// TestGraphQLImportsNoDatabase keeps api/graphql reading telemetry through telemetry.Reader only: it
// imports neither database/sql nor a driver (the table above keeps the stores out). database/sql still
// appears among its dependencies through uint256 and go-ethereum's Scan and Value methods.
func TestGraphQLImportsNoDatabase(t *testing.T) {
	for _, p := range list(t, module+"/api/graphql") {
		for _, imp := range p.Imports {
			if imp == "database/sql" || strings.HasPrefix(imp, "modernc.org/sqlite") || strings.HasPrefix(imp, "github.com/jackc/pgx") {
				t.Errorf("api/graphql imports %s: it must read telemetry through telemetry.Reader", imp)
			}
		}
	}
}
