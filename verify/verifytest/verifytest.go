// Package verifytest runs real Glovebox nodes for the tests of the auditor (package verify) and of
// `glovebox verify`: a node on a data directory behind an httptest server, accounts with fresh keys,
// signed transactions of every kind to fill its log, and a proxy that can rewrite the node's answers the
// way a dishonest operator would.
//
// It imports internal/testnode to run the node, so package verify itself must not import it: only the
// tests of verify and cmd/glovebox do.
package verifytest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/api/wire"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/tlog"
)

// Node is a running node (see package testnode), with the data directory it was started on.
type Node struct {
	*testnode.Node
	DataDir string
}

// Start opens (creating on first use) the node in dataDir, runs its sequencer and serves its API over
// httptest until the test ends.
func Start(tb testing.TB, dataDir string) *Node {
	tb.Helper()
	return &Node{Node: testnode.Start(tb, testnode.Options{Dir: dataDir}), DataDir: dataDir}
}

// Account is a key pair with its address.
type Account = testnode.Key

// NewAccount makes an account with a fresh key.
func NewAccount(tb testing.TB) Account { return testnode.NewKey(tb) }

// Submit submits txs, one alone or several in batches, and fails the test if any is refused.
func (n *Node) Submit(tb testing.TB, txs ...*ledger.Tx) {
	tb.Helper()
	ctx := context.Background()
	if len(txs) == 1 {
		if _, err := n.Client.Submit(ctx, txs[0]); err != nil {
			tb.Fatalf("submitting %s: %v", txs[0].Type, err)
		}
		return
	}
	for len(txs) > 0 {
		batch := txs[:min(len(txs), wire.MaxBatch)]
		txs = txs[len(batch):]
		items, err := n.Client.SubmitBatch(ctx, batch)
		if err != nil {
			tb.Fatalf("submitting a batch: %v", err)
		}
		for i, it := range items {
			if it.Error != nil {
				tb.Fatalf("%s refused: %s: %s", batch[i].Type, it.Error.Code, it.Error.Message)
			}
		}
	}
}

// RegisterVehicles registers count vehicles of owner in batches.
func (n *Node) RegisterVehicles(tb testing.TB, owner Account, count int) {
	tb.Helper()
	txs := make([]*ledger.Tx, count)
	for i := range txs {
		txs[i] = n.Sign(tb, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address,
			Make: "Volkswagen", Model: "ID.3", Year: 2020 + uint16(i%5)}, owner)
	}
	n.Submit(tb, txs...)
}

// Population is what Populate put in the log.
type Population struct {
	Entries    int64 // entries appended
	Signatures int64 // signatures they carry
	Vehicles   int
	Devices    int
	Apps       int
	Grants     int // grants on record at the end
	Owner      Account
}

// Populate fills the node with vehicles registered in batches (at least 4), then transactions of every
// type: devices registered (one by a maker), paired, unpaired and paired again; apps registered and
// updated; grants given, revoked and renounced; a retention set; a vehicle transferred, erased by its
// former owner, and one burned.
func (n *Node) Populate(tb testing.TB, vehicles int) Population {
	tb.Helper()
	if vehicles < 4 {
		tb.Fatal("Populate needs at least 4 vehicles")
	}
	alice, bob := NewAccount(tb), NewAccount(tb)
	dongle, connector, spare, maker := NewAccount(tb), NewAccount(tb), NewAccount(tb), NewAccount(tb)
	insurer, fleet, dev := NewAccount(tb), NewAccount(tb), NewAccount(tb)
	p := Population{Vehicles: vehicles, Devices: 3, Apps: 2, Grants: 2, Owner: alice}

	n.RegisterVehicles(tb, alice, vehicles)
	p.Entries, p.Signatures = int64(vehicles), int64(vehicles)

	vid := func(tx *ledger.Tx, id uint64) *ledger.Tx { tx.VehicleID.SetUint64(id); return tx }
	steps := []struct {
		tx      *ledger.Tx
		signers []Account
	}{
		{&ledger.Tx{Type: ledger.TypeRegisterDevice, Device: dongle.Address, Kind: ledger.KindHardware}, []Account{dongle}},
		{&ledger.Tx{Type: ledger.TypeRegisterDevice, Device: connector.Address, Kind: ledger.KindSoftware, Maker: maker.Address}, []Account{connector, maker}},
		{&ledger.Tx{Type: ledger.TypeRegisterDevice, Device: spare.Address, Kind: ledger.KindHardware}, []Account{spare}},
		{vid(&ledger.Tx{Type: ledger.TypePairDevice, Device: dongle.Address}, 1), []Account{alice, dongle}},
		{vid(&ledger.Tx{Type: ledger.TypePairDevice, Device: connector.Address}, 1), []Account{alice, connector}},
		{vid(&ledger.Tx{Type: ledger.TypeUnpairDevice, Device: connector.Address}, 1), []Account{connector}},
		{vid(&ledger.Tx{Type: ledger.TypePairDevice, Device: connector.Address}, 2), []Account{connector, alice}},
		{&ledger.Tx{Type: ledger.TypeRegisterApp, App: insurer.Address, Owner: dev.Address, Name: "Insurer",
			RedirectURIs: []string{"https://insurer.example/cb"}}, []Account{dev, insurer}},
		{&ledger.Tx{Type: ledger.TypeRegisterApp, App: fleet.Address, Owner: dev.Address, Name: "Fleet",
			RedirectURIs: []string{"http://127.0.0.1:8765/cb"}}, []Account{dev, fleet}},
		{&ledger.Tx{Type: ledger.TypeUpdateApp, App: insurer.Address, Name: "Insurer Plus",
			RedirectURIs: []string{"https://insurer.example/cb", "https://insurer.example/cb2"}}, []Account{dev}},
		{grant(1, insurer, ledger.PermSignals, ledger.PermLocationApproximate), []Account{alice}},
		{grant(2, insurer, ledger.PermSignals), []Account{alice}},
		{grant(3, fleet, ledger.PermLocation, ledger.PermRaw), []Account{alice}},
		{vid(&ledger.Tx{Type: ledger.TypeRevoke, App: insurer.Address}, 2), []Account{alice}},
		{vid(&ledger.Tx{Type: ledger.TypeRenounce, App: fleet.Address}, 3), []Account{fleet}},
		{grant(1, fleet, ledger.PermInsights), []Account{alice}},
		{vid(&ledger.Tx{Type: ledger.TypeSetRetention, Days: 365}, 3), []Account{alice}},
		{vid(&ledger.Tx{Type: ledger.TypeTransferVehicle, To: bob.Address}, 3), []Account{alice}},
		{vid(&ledger.Tx{Type: ledger.TypeEraseData, Before: uint64(time.Now().Unix())}, 3), []Account{alice}}, // a former owner
		{vid(&ledger.Tx{Type: ledger.TypeBurnVehicle}, 4), []Account{alice}},
	}
	for _, s := range steps {
		n.Submit(tb, n.Sign(tb, s.tx, s.signers...))
		p.Entries++
		p.Signatures += int64(len(s.signers))
	}
	return p
}

func grant(vehicle uint64, app Account, perms ...string) *ledger.Tx {
	tx := &ledger.Tx{Type: ledger.TypeGrant, App: app.Address, Permissions: perms,
		Purpose: "Pay-as-you-drive insurance", TermsURI: "https://insurer.example/terms"}
	tx.VehicleID.SetUint64(vehicle)
	tx.ExpiresAt.SetUint64(4102444800) // 2100-01-01
	return tx
}

// Proxy stands in front of a node and forwards every request to it, rewriting answers with its rewrite
// function when one is set: a dishonest operator's front end. Its upstream can be switched, to play a
// node whose key changed.
type Proxy struct {
	*httptest.Server

	mu       sync.Mutex // guards upstream and rewrite
	upstream string
	rewrite  func(path string, body []byte) []byte
}

// NewProxy starts a proxy to upstream (a base URL) that stops when the test ends.
func NewProxy(tb testing.TB, upstream string) *Proxy {
	p := &Proxy{upstream: upstream}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	tb.Cleanup(p.Close)
	return p
}

// SetUpstream makes the proxy forward to another node.
func (p *Proxy) SetUpstream(u string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upstream = u
}

// SetRewrite makes the proxy pass the body of every 200 answer through f, with the request's path
// (e.g. "/log/tile/entries/000"); nil forwards answers unchanged.
func (p *Proxy) SetRewrite(f func(path string, body []byte) []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rewrite = f
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	upstream, rewrite := p.upstream, p.rewrite
	p.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if rewrite != nil && resp.StatusCode == http.StatusOK {
		out = rewrite(r.URL.Path, bytes.Clone(out))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}

// RawLog is a log written directly with package tlog, bypassing the sequencer and its rules, and served
// with tlog's handler under /log/ plus a minimal GET /v1/node: what a dishonest operator could publish.
type RawLog struct {
	Log    *tlog.Log
	Origin string
	LogKey string // note verifier key
	Domain *ledger.Domain
	URL    string
}

// StartRawLog creates a log with a fresh key in dir and serves it until the test ends.
func StartRawLog(tb testing.TB, dir, origin string) *RawLog {
	tb.Helper()
	skey, vkey, err := tlog.GenerateKey(origin)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := tlog.Open(dir, origin, signer)
	if err != nil {
		tb.Fatal(err)
	}
	r := &RawLog{Log: l, Origin: origin, LogKey: vkey, Domain: ledger.NewDomain(origin)}
	mux := http.NewServeMux()
	mux.Handle("/log/", l.Handler("/log/"))
	mux.HandleFunc("GET /v1/node", func(w http.ResponseWriter, _ *http.Request) {
		size, _ := l.Latest()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(wire.NodeInfo{Origin: origin, LogKey: vkey, TreeSize: size})
	})
	srv := httptest.NewServer(mux)
	r.URL = srv.URL
	tb.Cleanup(func() {
		srv.Close()
		l.Close()
	})
	return r
}

// Append appends entries, encoded as is, with no rule checked.
func (r *RawLog) Append(tb testing.TB, entries ...*ledger.Entry) {
	tb.Helper()
	raw := make([][]byte, len(entries))
	for i, e := range entries {
		b, err := e.MarshalBinary()
		if err != nil {
			tb.Fatal(err)
		}
		raw[i] = b
	}
	if _, _, err := r.Log.Append(context.Background(), raw); err != nil {
		tb.Fatal(err)
	}
}

// Entry returns tx, signed in r's domain by signers (whoever they are), as a log entry accepted at the
// given time.
func (r *RawLog) Entry(tb testing.TB, at time.Time, tx *ledger.Tx, signers ...Account) *ledger.Entry {
	tb.Helper()
	if tx.Nonce.IsZero() || tx.Deadline.IsZero() {
		client.Prepare(tx, client.DefaultTTL)
	}
	for _, s := range signers {
		if err := r.Domain.Sign(tx, s.Key); err != nil {
			tb.Fatal(err)
		}
	}
	return &ledger.Entry{AcceptTime: at.UnixMilli(), Tx: tx}
}
