package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/ethereum/go-ethereum/common"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api/graphql/internal/exec"
	"github.com/glovebox/glovebox/attestation"
	vc "github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/live"
)

// The limits of a request.
const (
	// MaxBodyBytes bounds a request body (POST) or query string (GET).
	MaxBodyBytes = 64 << 10
	// MaxDepth bounds the nesting of fields in an operation (introspection's ofType chains not counted).
	MaxDepth = 10
	// MaxComplexity bounds an operation's complexity: each field counts 1 plus its subfields, so
	// signalsLatest asking for every signal's timestamp and value costs about 400, and two such
	// queries in one operation pass; introspection, signals' buckets and rawRecords' pages count too
	// (complexity.go).
	MaxComplexity = 1000
)

// Config configures the handler.
type Config struct {
	// State reads the ledger's current state (ledger.Sequencer.Read). Required.
	State telemetry.StateReader
	// Telemetry reads the stored telemetry (store/sqlite's or store/postgres's Telemetry): latest values,
	// history, the data summary and the raw records. Required.
	Telemetry telemetry.Reader
	// Catalog is the signal catalogue; nil means telemetry.DefaultCatalog, which the schema is generated
	// from.
	Catalog *telemetry.Catalog
	// Now is the clock grants are judged by; nil means time.Now.
	Now func() time.Time
	// Logger receives internal errors; nil means slog.Default().
	Logger *slog.Logger
	// Record, if set, is given an access entry for every query of a vehicle's data by anyone but its
	// owner (accesslog.Recorder.Record: batched; bounded, dropped and counted when the store cannot keep up).
	Record func(accesslog.Entry)
	// AccessLog is where Record's entries end up (the node's sqlite.AccessLog), read by the accessLog
	// query; nil makes accessLog fail with INTERNAL.
	AccessLog accesslog.Store
	// Log is the ledger's log (*tlog.Log or *postgres.Log), for the pairing entries of rawRecords and
	// their proofs; without it rawRecords fails with INTERNAL.
	Log Log
	// VINs holds the latest VIN credential of each vehicle (the node's Credentials store), read by
	// vinVCLatest; nil makes it fail with INTERNAL.
	VINs vc.VINStore
	// Attestations holds third parties' attestations (the node's Credentials store), read by
	// attestations; nil makes it fail with INTERNAL.
	Attestations attestation.Store
	// DisableFastPath sends every request through gqlgen's executor, also the signals queries the fast
	// path would answer (fastpath.go); for tests that compare the two.
	DisableFastPath bool
	// Live is where subscriptions hear of accepted records and ledger changes (the node's live.Hub); nil
	// answers every subscription with BAD_REQUEST.
	Live *live.Hub
	// Authenticate verifies a bearer token (auth.Issuer.Verify): the caller and when the token expires.
	// Subscriptions use it for a WebSocket's connection_init token and to check their token again at
	// every ledger change and push; nil accepts no token in connection_init.
	Authenticate func(token string) (caller common.Address, expiry time.Time, err error)
	// PingInterval is how often a WebSocket is pinged (and an event stream gets a comment line); zero
	// means the constant PingInterval.
	PingInterval time.Duration
}

// Log is what rawRecords reads of the ledger's log; *tlog.Log has it.
type Log interface {
	// Latest returns the committed tree size and the signed checkpoint of exactly that size.
	Latest() (size int64, checkpoint []byte)
	// InclusionProof proves the entry at index in the tree of size.
	InclusionProof(index, size int64) (xtlog.RecordProof, error)
	// Entry returns the entry at index.
	Entry(ctx context.Context, index int64) ([]byte, error)
}

// NewHandler returns the GraphQL endpoint: POST (JSON) and GET (query parameters), introspection on.
// The caller is read from the request context (WithCaller).
func NewHandler(cfg Config) http.Handler {
	return newHandler(cfg, nil)
}

// newHandler is NewHandler with the schema's directives adjusted by directives, if not nil: the test that
// takes @perSignal away and sees the permission matrix fail builds its handler so.
func newHandler(cfg Config, directives func(*exec.DirectiveRoot)) http.Handler {
	if cfg.Catalog == nil {
		cfg.Catalog = telemetry.DefaultCatalog
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = PingInterval
	}
	r := newResolver(cfg)
	dirs := exec.DirectiveRoot{Requires: r.requires, PerSignal: r.perSignal, Aggregate: r.aggregate,
		VehicleReader: r.vehicleReader, Owner: r.owner}
	if directives != nil {
		directives(&dirs)
	}
	es := exec.NewExecutableSchema(exec.Config{Resolvers: r, Directives: dirs, Complexity: complexityRoot()})
	srv := handler.New(es)
	// Parsed and validated documents are kept by query text: an app asks the same few queries again and
	// again, and parsing plus validation against the 116-signal schema costs more than answering them.
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	// Subscriptions: a WebSocket (graphql-transport-ws, and the older graphql-ws) or server-sent events;
	// both before POST, which would take an event-stream request too. Any origin may open a WebSocket:
	// the caller is named by the token it sends, never by an ambient credential a browser adds.
	srv.AddTransport(transport.Websocket{
		Implementation: transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{InsecureSkipVerify: true}},
		InitFunc:       r.initWebsocket, InitTimeout: InitTimeout, PingPongInterval: cfg.PingInterval,
	})
	srv.AddTransport(transport.SSE{KeepAlivePingInterval: cfg.PingInterval})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.AroundOperations(aroundSubscriptions)
	srv.AroundResponses(aroundResponses)
	srv.Use(extension.Introspection{})
	srv.Use(depthLimit{})
	srv.Use(&complexityLimit{})
	present := presentError(cfg.Logger)
	srv.SetErrorPresenter(present)
	srv.SetRecoverFunc(func(ctx context.Context, err any) error {
		cfg.Logger.ErrorContext(ctx, "graphql: panic", "err", err)
		return codedError(CodeInternal, "internal error")
	})
	if cfg.DisableFastPath {
		return limitSize(r.streamingHandler(srv))
	}
	return limitSize(r.streamingHandler(&fastPath{q: (*queryResolver)(r), es: es, present: present, plans: lru.New[*signalsPlan](1000), next: srv}))
}

// limitSize refuses request bodies and query strings over MaxBodyBytes with BAD_REQUEST.
func limitSize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(withAccessBudget(r.Context()))
		if len(r.URL.RawQuery) > MaxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, codedError(CodeBadRequest, "the query string is longer than %d bytes", MaxBodyBytes))
			return
		}
		if r.Body != nil {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
				writeError(w, http.StatusRequestEntityTooLarge, codedError(CodeBadRequest, "the request body is larger than %d bytes", MaxBodyBytes))
				return
			case err != nil:
				writeError(w, http.StatusBadRequest, codedError(CodeBadRequest, "couldn't read the request body: %s", err.Error()))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, e *gqlerror.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(graphql.Response{Errors: gqlerror.List{e}})
}

// depthLimit refuses operations nested deeper than MaxDepth with TOO_COMPLEX.
type depthLimit struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                          { return "DepthLimit" }
func (depthLimit) Validate(schema graphql.ExecutableSchema) error { return nil }

func (depthLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	d, lists := depth(opCtx.Operation.SelectionSet, map[string]bool{})
	if d > MaxDepth {
		return codedError(CodeTooComplex, "the operation nests fields %d deep; at most %d are allowed", d, MaxDepth)
	}
	if lists > maxIntrospectionLists {
		return codedError(CodeTooComplex, "the operation nests %d introspection lists; at most %d are allowed", lists, maxIntrospectionLists)
	}
	return nil
}

// Introspection is not counted by the complexity limit, and its lists (types, fields, …) nest into each
// other without end; the standard introspection query nests three (types, fields, args).
const maxIntrospectionLists = 3

var introspectionLists = map[string]bool{"types": true, "fields": true, "args": true, "inputFields": true,
	"interfaces": true, "possibleTypes": true, "enumValues": true, "directives": true}

// depth returns the deepest nesting of fields in set, not counting ofType (a chain of single objects in
// introspection, which the standard introspection query follows seven levels deep), and the deepest
// nesting of introspection lists. visiting holds the fragments being expanded (validation already refuses
// cycles; this only keeps a bug from looping).
func depth(set ast.SelectionSet, visiting map[string]bool) (deepest, lists int) {
	for _, sel := range set {
		d, l := 0, 0
		switch s := sel.(type) {
		case *ast.Field:
			d, l = depth(s.SelectionSet, visiting)
			if s.Name != "ofType" {
				d++
			}
			if introspectionLists[s.Name] && s.Definition != nil && strings.HasPrefix(s.ObjectDefinition.Name, "__") {
				l++
			}
		case *ast.InlineFragment:
			d, l = depth(s.SelectionSet, visiting)
		case *ast.FragmentSpread:
			if s.Definition == nil || visiting[s.Name] {
				continue
			}
			visiting[s.Name] = true
			d, l = depth(s.Definition.SelectionSet, visiting)
			delete(visiting, s.Name)
		}
		deepest, lists = max(deepest, d), max(lists, l)
	}
	return deepest, lists
}
