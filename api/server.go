// Package api serves Glovebox over HTTP: the /v1 REST API for transactions, receipts and state reads, and
// the public log under /log/. Handlers are thin: rules live in package ledger, the log in package tlog.
//
// It imports the packages it serves (graphql, connect, auth, export, credential, webhook) and the contracts
// below them; never a store or node, which wires it.
package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api/graphql"
	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/connect"
	"github.com/glovebox/glovebox/export"
	"github.com/glovebox/glovebox/internal/connlimit"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/tlog"
	"github.com/glovebox/glovebox/webhook"
)

// Ledger is what the API needs of the ledger: the current state and a sequencer to submit to.
// *ledger.Sequencer has it; in a cluster (package node) a process that is not the sequencer has a
// followed state and forwards submissions.
type Ledger interface {
	Domain() *ledger.Domain
	// Read calls f with the current state under a read lock.
	Read(f func(*ledger.State))
	// Submit sequences transactions and waits until each is durable in the log or refused;
	// ledger.ErrStopped when no sequencer takes them.
	Submit(ctx context.Context, txs []*ledger.Tx, signers [][]common.Address) ([]ledger.Outcome, error)
}

// Log is what the API reads of the Merkle log. *tlog.Log and *postgres.Log have it.
type Log interface {
	// Handler serves the C2SP tlog-tiles paths under prefix.
	Handler(prefix string) http.Handler
	// Latest returns the committed tree size and the signed checkpoint of exactly that size.
	Latest() (size int64, checkpoint []byte)
	Origin() string
	InclusionProof(index, size int64) (xtlog.RecordProof, error)
	Entry(ctx context.Context, index int64) ([]byte, error)
}

var (
	_ Ledger = (*ledger.Sequencer)(nil)
	_ Log    = (*tlog.Log)(nil)
)

// Config is what a Server serves.
type Config struct {
	Sequencer Ledger
	Log       Log
	LogKey    string // the note verifier key of the log, e.g. "origin+hash+base64"
	Version   string
	Logger    *slog.Logger // one line per request at Debug level; default slog.Default()
	// Ingester verifies and stores device records at POST /v1/events; nil serves no such route (a
	// cluster process without the ingest role).
	Ingester *telemetry.Ingester
	// Catalog is the signal catalogue GET /v1/signals lists; nil means the Ingester's, or
	// telemetry.DefaultCatalog without one.
	Catalog   *telemetry.Catalog
	Auth      *auth.Issuer    // sign-in (SIWE → bearer tokens)
	AccessLog accesslog.Store // who read what, for owners
	GraphQL   http.Handler    // /graphql (package api/graphql); nil serves none
	// Connect is the OpenID Provider (package connect): its Handler serves connect.Paths, and its
	// TokenGrants are added to the token endpoint. Nil serves none.
	Connect *connect.Provider
	// RateLimit, if set, bounds each caller's (signed-in account, else IP) requests to /graphql, the
	// sign-in endpoints and the access log.
	RateLimit *RateLimiter
	// Budgets, if set, bounds what each client address may ask and submit, whoever is signed in.
	Budgets *Budgets
	// Web is the web app (package web): it serves WebPaths, the page at / among them. Nil serves a
	// plain index page at / instead.
	Web      http.Handler
	WebPaths []string
	// Credentials issues verifiable credentials at POST /v1/vehicles/{id}/credentials and publishes the
	// issuer's key at /.well-known/jwt-vc-issuer. Nil serves neither.
	Credentials *Credentials
	// Webhooks, if set, serves /v1/apps/{app}/webhooks… and the node's webhook keys (package webhook).
	Webhooks *webhook.Engine
	// Export, if set, serves owners their data export at GET /v1/vehicles/{id}/export (package export).
	Export *export.Source
	// Deleter reports what retention and erasures deleted at GET /v1/vehicles/{id}/retention; nil
	// reports the policy and the erasures with nothing deleted yet.
	Deleter telemetry.Deleter
}

// Server is the HTTP API of one node.
type Server struct {
	seq     Ledger
	log     Log
	ingest  *telemetry.Ingester
	cat     *telemetry.Catalog
	auth    *auth.Issuer
	alog    accesslog.Store
	logKey  string
	domain  *ledger.Domain
	ver     string
	logger  *slog.Logger
	mux     *http.ServeMux
	creds   *Credentials
	hooks   *webhook.Engine
	budget  Budgets
	export  *export.Source
	deleter telemetry.Deleter

	exportLens exportLengths

	// recoverSlots bounds how many goroutines recover signatures at once to the number of cores. Recovery
	// is pure CPU; with hundreds of submitters all runnable at once, the sequencer goroutine (the critical
	// path: it must wake as soon as an fsync ends) would wait behind them in the run queue. Submitters
	// blocked on this channel are not runnable.
	recoverSlots chan struct{}

	bodies *bodyBudget       // BodyBytesInFlight
	memory *connlimit.Budget // BodyMemory and BodyMemoryPerAddress

	digestMu   sync.Mutex // guards the digest cache
	digestSize int64
	digest     [32]byte
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{seq: cfg.Sequencer, log: cfg.Log, ingest: cfg.Ingester, auth: cfg.Auth, alog: cfg.AccessLog, logKey: cfg.LogKey, domain: cfg.Sequencer.Domain(),
		ver: cfg.Version, logger: cfg.Logger, mux: http.NewServeMux(), digestSize: -1, creds: cfg.Credentials, hooks: cfg.Webhooks, export: cfg.Export, deleter: cfg.Deleter,
		recoverSlots: make(chan struct{}, runtime.NumCPU()), bodies: newBodyBudget(BodyBytesInFlight),
		memory: connlimit.NewBudget(BodyMemory, memoryShare(cfg.Budgets))}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if cfg.Budgets != nil {
		s.budget = *cfg.Budgets
	}
	switch s.cat = cfg.Catalog; {
	case s.cat != nil:
	case s.ingest != nil:
		s.cat = s.ingest.Catalog()
	default:
		s.cat = telemetry.DefaultCatalog
	}
	if cfg.Web != nil {
		for _, p := range cfg.WebPaths {
			s.mux.Handle(p, cfg.Web)
		}
	} else {
		s.mux.HandleFunc("GET /{$}", s.index)
	}
	s.mux.HandleFunc("GET /v1/node", s.node)
	s.mux.HandleFunc("GET /v1/eip712", s.eip712)
	s.mux.HandleFunc("POST /v1/transactions", s.submit)
	s.mux.HandleFunc("GET /v1/transactions/{index}", s.transaction)
	s.mux.HandleFunc("GET /v1/vehicles/{id}", s.vehicle)
	s.mux.HandleFunc("GET /v1/devices/{address}", s.device)
	s.mux.HandleFunc("GET /v1/apps/{address}", s.app)
	s.mux.HandleFunc("GET /v1/accounts/{address}", s.account)
	s.mux.HandleFunc("GET /v1/state/digest", s.stateDigest)
	if s.ingest != nil {
		s.mux.HandleFunc("POST /v1/events", s.events)
	}
	s.mux.HandleFunc("GET /v1/signals", s.signals)
	limit := func(h http.Handler) http.Handler {
		if cfg.RateLimit != nil {
			h = cfg.RateLimit.WrapShape(h, CallerKey(cfg.Auth), ShapeByPath)
		}
		if s.budget.Requests != nil { // first: fresh accounts on one address share its budget
			h = s.budget.Requests.WrapShape(h, AddressKey, ShapeByPath)
		}
		return h
	}
	s.mux.Handle("GET /v1/auth/challenge", limit(cfg.Auth.ChallengeHandler()))
	var grants map[string]auth.GrantHandler
	if cfg.Connect != nil {
		grants = cfg.Connect.TokenGrants()
		h := cfg.Connect.Handler()
		for _, p := range connect.Paths() {
			s.mux.Handle(p, limit(h))
		}
	}
	// Browser-based apps call the token endpoint and read the key set from their own origin.
	s.mux.Handle("POST /oauth/token", connect.CORS(limit(cfg.Auth.TokenHandler(grants))))
	s.mux.Handle("OPTIONS /oauth/token", connect.CORS(http.NotFoundHandler()))
	s.mux.Handle("GET /.well-known/jwks.json", connect.CORS(cfg.Auth.JWKSHandler()))
	s.mux.Handle("OPTIONS /.well-known/jwks.json", connect.CORS(http.NotFoundHandler()))
	s.mux.Handle("GET /v1/vehicles/{id}/access", limit(cfg.Auth.Middleware(http.HandlerFunc(s.vehicleAccess))))
	s.mux.Handle("GET /v1/vehicles/{id}/retention", limit(cfg.Auth.Middleware(http.HandlerFunc(s.vehicleRetention))))
	paths := []string{"/v1/node", "/v1/eip712", "/v1/transactions", "/v1/transactions/{index}", "/v1/vehicles/{id}",
		"/v1/devices/{address}", "/v1/apps/{address}", "/v1/accounts/{address}", "/v1/state/digest", "/v1/signals",
		"/v1/auth/challenge", "/oauth/token", "/.well-known/jwks.json", "/v1/vehicles/{id}/access", "/v1/vehicles/{id}/retention"}
	if s.ingest != nil {
		paths = append(paths, "/v1/events")
	}
	if cfg.Credentials != nil {
		s.mux.Handle("POST /v1/vehicles/{id}/credentials", limit(cfg.Auth.Middleware(http.HandlerFunc(s.issueCredential))))
		s.mux.Handle("GET /.well-known/jwt-vc-issuer", connect.CORS(http.HandlerFunc(s.issuerMetadata)))
		s.mux.Handle("OPTIONS /.well-known/jwt-vc-issuer", connect.CORS(http.NotFoundHandler()))
		paths = append(paths, "/v1/vehicles/{id}/credentials", "/.well-known/jwt-vc-issuer")
		if cfg.Credentials.Attestations != nil {
			s.mux.Handle("POST /v1/attestations", limit(cfg.Auth.Middleware(http.HandlerFunc(s.postAttestation))))
			s.mux.Handle("DELETE /v1/vehicles/{id}/attestations/{source}/{attestationId}", limit(cfg.Auth.Middleware(http.HandlerFunc(s.deleteAttestation))))
			paths = append(paths, "/v1/attestations", "/v1/vehicles/{id}/attestations/{source}/{attestationId}")
		}
	}
	if cfg.Export != nil {
		s.mux.Handle("GET /v1/vehicles/{id}/export", limit(cfg.Auth.Middleware(http.HandlerFunc(s.exportVehicle))))
		paths = append(paths, "/v1/vehicles/{id}/export")
	}
	if cfg.GraphQL != nil {
		s.mux.Handle("POST /graphql", limit(s.withCaller(cfg.GraphQL)))
		s.mux.Handle("GET /graphql", limit(s.withCaller(cfg.GraphQL)))
	}
	if s.hooks != nil {
		s.routeWebhooks()
	}
	// The same paths with any other method: a JSON 405 rather than the mux's plain-text one.
	for _, p := range paths {
		s.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			writeErr(w, CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		})
	}
	s.mux.Handle("/log/", cfg.Log.Handler("/log/"))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, CodeNotFound, "no route "+r.Method+" "+r.URL.Path)
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every answer is of the type it says (JSON, a tile, a page): no browser is to guess another.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !s.logger.Enabled(r.Context(), slog.LevelDebug) {
		s.mux.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	s.logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "dur", time.Since(start))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

const indexPage = `<!doctype html><meta charset="utf-8"><title>Glovebox node</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}</style>
<h1>Glovebox node</h1>
<p>An open node for vehicle data. Its state is a public Merkle log anyone can check:
<code>glovebox verify URL</code>.</p>
<ul>
<li><a href="/v1/node">/v1/node</a>: origin, log key, tree size</li>
<li><a href="/log/checkpoint">/log/checkpoint</a>: the latest signed checkpoint (C2SP tlog-tiles under /log/)</li>
<li><a href="/v1/eip712">/v1/eip712</a>: the EIP-712 domain and transaction types to sign</li>
<li><a href="/v1/state/digest">/v1/state/digest</a>: a hash of the replayed state</li>
<li><a href="/v1/signals">/v1/signals</a>: the telemetry signal catalogue; devices send signed records to
<code>POST /v1/events</code> or over MQTT</li>
<li><a href="/v1/vehicles/1">/v1/vehicles/1</a>: a vehicle, its paired devices and grants</li>
<li><a href="/.well-known/openid-configuration">/.well-known/openid-configuration</a>: the OpenID Provider, by which
apps ask drivers for access (OAuth 2.0 with PKCE, OpenID Connect)</li>
</ul>`

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, indexPage)
}

func (s *Server) node(w http.ResponseWriter, r *http.Request) {
	size, _ := s.log.Latest()
	writeJSON(w, http.StatusOK, NodeInfo{Origin: s.log.Origin(), LogKey: s.logKey, TreeSize: size, Version: s.ver})
}

func (s *Server) eip712(w http.ResponseWriter, r *http.Request) {
	var info EIP712Info
	info.Domain.Name, info.Domain.Version = ledger.DomainName, ledger.DomainVersion
	info.Domain.Salt = "0x" + hex.EncodeToString(s.domain.Salt[:])
	info.Origin = s.domain.Origin
	info.Types = ledger.TypedDataTypes()
	for _, t := range ledger.TxTypes() {
		info.PrimaryTypes = append(info.PrimaryTypes, t.String())
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) receipt(index, size int64, entry, checkpoint []byte) (*Receipt, error) {
	proof, err := s.log.InclusionProof(index, size)
	if err != nil {
		return nil, fmt.Errorf("couldn't prove entry %d in tree %d: %w", index, size, err)
	}
	h := xtlog.RecordHash(entry)
	rc := &Receipt{Index: index, Hash: "0x" + hex.EncodeToString(h[:]), TreeSize: size,
		Checkpoint: string(checkpoint), InclusionProof: make([]string, len(proof))}
	for i, p := range proof {
		rc.InclusionProof[i] = base64.StdEncoding.EncodeToString(p[:])
	}
	return rc, nil
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	body, release, ok := s.readBody(w, r, MaxBatchBody)
	if !ok {
		return
	}
	defer release()
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		s.submitBatch(w, r, trimmed)
		return
	}
	tx, err := ledger.DecodeTxJSON(body)
	if err != nil {
		writeError(w, detail(err))
		return
	}
	if !take(w, r, s.budget.Transactions, 1, "transactions") {
		return
	}
	signers, err := s.signers(tx)
	if err != nil {
		writeError(w, detail(err))
		return
	}
	out, err := s.seq.Submit(r.Context(), []*ledger.Tx{tx}, [][]common.Address{signers})
	if err != nil {
		writeError(w, detail(err))
		return
	}
	o := &out[0]
	if o.Err != nil {
		writeError(w, detail(o.Err))
		return
	}
	b, err := s.appendOutcome(make([]byte, 0, 1536), o, nil)
	if err != nil {
		s.logger.Error("receipt", "err", err)
		writeErr(w, CodeInternal, "the transaction is in the log but its receipt failed; fetch it with GET /v1/transactions/"+strconv.FormatInt(o.Index, 10))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

// withCaller puts the signed-in caller, if the request carries a valid bearer token, into the context
// for the GraphQL resolvers, which answer UNAUTHENTICATED themselves when there is none.
func (s *Server) withCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := s.auth.FromRequest(r); err == nil {
			r = r.WithContext(graphql.WithCaller(r.Context(), c.Subject))
		}
		next.ServeHTTP(w, r)
	})
}

// signers recovers the signers of tx, holding one of the recovery slots.
func (s *Server) signers(tx *ledger.Tx) ([]common.Address, error) {
	s.recoverSlots <- struct{}{}
	defer func() { <-s.recoverSlots }()
	return s.domain.Signers(tx)
}

func (s *Server) submitBatch(w http.ResponseWriter, r *http.Request, body []byte) {
	raws, err := splitBatch(body)
	if err != nil {
		writeErr(w, string(ledger.CodeMalformed), "bad batch JSON: "+strings.TrimPrefix(err.Error(), "jsontext: "))
		return
	}
	if len(raws) > MaxBatch {
		writeErr(w, CodeTooLarge, fmt.Sprintf("a batch holds at most %d transactions", MaxBatch))
		return
	}
	if !take(w, r, s.budget.Transactions, len(raws), "transactions") {
		return
	}
	// Each position gets an error or, once sequenced, an outcome.
	errs := make([]*ErrorDetail, len(raws))
	txs := make([]*ledger.Tx, len(raws))
	signers := make([][]common.Address, len(raws))
	// Decoding and signature recovery run on all cores: a maker's batch of 1,000 is one request.
	var next atomic.Int64
	workers := min(runtime.NumCPU(), (len(raws)+31)/32)
	var wg sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(raws) {
					return
				}
				tx, err := ledger.DecodeTxJSON(raws[i])
				if err == nil {
					signers[i], err = s.signers(tx)
				}
				if err != nil {
					d := detail(err)
					d.Index = &i
					errs[i] = &d
					continue
				}
				txs[i] = tx
			}
		}()
	}
	wg.Wait()
	var okTxs []*ledger.Tx
	var okSigners [][]common.Address
	var pos []int
	for i, tx := range txs {
		if tx != nil {
			okTxs, okSigners, pos = append(okTxs, tx), append(okSigners, signers[i]), append(pos, i)
		}
	}
	outcomes := make([]*ledger.Outcome, len(raws))
	if len(okTxs) > 0 {
		out, err := s.seq.Submit(r.Context(), okTxs, okSigners)
		if err != nil {
			writeError(w, detail(err))
			return
		}
		for j := range out {
			i := pos[j]
			if out[j].Err != nil {
				d := detail(out[j].Err)
				d.Index = &i
				errs[i] = &d
				continue
			}
			outcomes[i] = &out[j]
		}
	}
	proofs := s.batchProofs(outcomes)
	b := make([]byte, 0, len(raws)*1280+2)
	b = append(b, '[')
	for i := range raws {
		if i > 0 {
			b = append(b, ',')
		}
		if errs[i] == nil {
			var err error
			var proof xtlog.RecordProof
			if proofs != nil {
				proof = proofs[i]
			}
			if b, err = s.appendOutcome(b, outcomes[i], proof); err == nil {
				continue
			}
			errs[i] = &ErrorDetail{Code: CodeInternal, Message: "receipt failed; fetch it with GET /v1/transactions/" + strconv.FormatInt(outcomes[i].Index, 10), Index: &i}
		}
		b = (&BatchItem{Error: errs[i]}).AppendJSON(b)
	}
	b = append(b, "]\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func (s *Server) transaction(w http.ResponseWriter, r *http.Request) {
	index, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil || index < 0 {
		writeErr(w, string(ledger.CodeMalformed), "the index is a non-negative integer")
		return
	}
	size, cp := s.log.Latest()
	if index >= size {
		writeErr(w, CodeNotFound, fmt.Sprintf("the log has %d entries", size))
		return
	}
	raw, err := s.log.Entry(r.Context(), index)
	if err != nil {
		writeErr(w, CodeInternal, "couldn't read the entry")
		return
	}
	rc, err := s.receipt(index, size, raw, cp)
	if err != nil {
		writeErr(w, CodeInternal, "couldn't prove the entry")
		return
	}
	e, err := ledger.UnmarshalEntry(raw)
	if err != nil {
		writeErr(w, CodeInternal, "the entry does not decode: "+err.Error())
		return
	}
	rc.Entry = base64.StdEncoding.EncodeToString(raw)
	rc.AcceptTime = e.AcceptTime
	rc.Type = e.Tx.Type.String()
	rc.Message = e.Tx.MessageJSON()
	for _, sig := range e.Tx.Signatures {
		rc.Signatures = append(rc.Signatures, "0x"+hex.EncodeToString(sig[:]))
	}
	if signers, err := s.domain.Signers(e.Tx); err == nil {
		for _, a := range signers {
			rc.Signers = append(rc.Signers, a.Hex())
		}
	}
	writeJSON(w, http.StatusOK, rc)
}

func (s *Server) vehicle(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeErr(w, string(ledger.CodeMalformed), "a vehicle id is a positive integer")
		return
	}
	var v ledger.Vehicle
	var ok bool
	s.seq.Read(func(st *ledger.State) { v, ok = st.Vehicle(id) })
	if !ok {
		writeErr(w, string(ledger.CodeUnknownVehicle), fmt.Sprintf("no vehicle %d", id))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func pathAddress(w http.ResponseWriter, r *http.Request) (common.Address, bool) {
	a, err := ledger.ParseAddress(r.PathValue("address"))
	if err != nil {
		writeErr(w, string(ledger.CodeMalformed), err.Error())
		return a, false
	}
	return a, true
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) {
	a, ok := pathAddress(w, r)
	if !ok {
		return
	}
	var d ledger.Device
	s.seq.Read(func(st *ledger.State) { d, ok = st.Device(a) })
	if !ok {
		writeErr(w, string(ledger.CodeUnknownDevice), "no device "+a.Hex())
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) app(w http.ResponseWriter, r *http.Request) {
	a, ok := pathAddress(w, r)
	if !ok {
		return
	}
	var p ledger.App
	s.seq.Read(func(st *ledger.State) { p, ok = st.App(a) })
	if !ok {
		writeErr(w, string(ledger.CodeUnknownApp), "no app "+a.Hex())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	a, ok := pathAddress(w, r)
	if !ok {
		return
	}
	var acc ledger.Account
	s.seq.Read(func(st *ledger.State) { acc = st.Account(a) })
	writeJSON(w, http.StatusOK, acc)
}

func (s *Server) stateDigest(w http.ResponseWriter, r *http.Request) {
	s.digestMu.Lock()
	defer s.digestMu.Unlock()
	var size int64
	s.seq.Read(func(st *ledger.State) {
		size = st.Size()
		if size != s.digestSize {
			s.digest, s.digestSize = st.Digest(), size
		}
	})
	writeJSON(w, http.StatusOK, StateDigest{TreeSize: size, Digest: "0x" + hex.EncodeToString(s.digest[:])})
}
