package graphql_test

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api/graphql"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/tlog"
)

var _ graphql.Log = (*tlog.Log)(nil)

// rawFixture is the fixture with a handler that serves rawRecords and keeps the access entries it records.
type rawFixture struct {
	*fixture
	h       http.Handler
	mu      sync.Mutex
	entries []accesslog.Entry
}

func newRawFixture(t *testing.T) *rawFixture {
	t.Helper()
	f := &rawFixture{fixture: newFixture(t)}
	f.h = graphql.NewHandler(graphql.Config{
		State:     f.n.Sequencer.Read,
		Telemetry: f.n.Telemetry,
		Log:       f.n.Log,
		Now:       f.clock,
		Record: func(e accesslog.Entry) {
			f.mu.Lock()
			f.entries = append(f.entries, e)
			f.mu.Unlock()
		},
	})
	return f
}

const rawQuery = `{ rawRecords(tokenId: %d, from: %q, to: %q%s) {
  edges { cursor node { id } }
  nodes { id source vehicleId time receivedAt event signature
    pairing { index entry leafHash treeSize checkpoint inclusionProof } }
  pageInfo { hasNextPage endCursor }
} }`

func (f *rawFixture) raw(t *testing.T, caller common.Address, vehicle uint64, from, to time.Time, extra string) *response {
	t.Helper()
	return do(t, f.h, caller, fmt.Sprintf(rawQuery, vehicle, rfc(from), rfc(to), extra))
}

func (r *response) rawNodes() []map[string]any {
	var out []map[string]any
	ns, _ := r.get("rawRecords.nodes").([]any)
	for _, n := range ns {
		out = append(out, n.(map[string]any))
	}
	return out
}

func TestRawRecordsVerifyIndependently(t *testing.T) {
	f := newRawFixture(t)
	app := f.n.App(t, f.owner)
	f.n.Grant(t, f.owner, f.vehicle, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermRaw, ledger.PermLocation)
	r := f.raw(t, app.Address, f.vehicle, f.base.Add(-time.Minute), f.base.Add(time.Minute), "")
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	nodes := r.rawNodes()
	if len(nodes) != 3 {
		t.Fatalf("%d records, want 3: %s", len(nodes), r.Raw)
	}
	verifier, err := note.NewVerifier(f.n.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		if n["id"] != fmt.Sprintf("r%d", i+1) || n["time"] != f.ts(i) || n["vehicleId"] != float64(f.vehicle) {
			t.Errorf("record %d: %v", i, n)
		}
		// The signature recovers to the source.
		sigHex, _ := n["signature"].(string)
		sigBytes, err := hex.DecodeString(sigHex[2:])
		if err != nil || len(sigBytes) != 65 {
			t.Fatalf("signature %q", sigHex)
		}
		var sig ledger.Signature
		copy(sig[:], sigBytes)
		signer, err := ledger.Recover(ledger.PersonalHash([]byte(n["event"].(string))), sig)
		if err != nil || signer.Hex() != n["source"] || signer != f.dev.Address {
			t.Errorf("record %d: the signature recovers to %s (%v), source %v, device %s", i, signer.Hex(), err, n["source"], f.dev.Address.Hex())
		}
		// The pairing entry is the PairDevice of that device and vehicle.
		p := n["pairing"].(map[string]any)
		entry, err := base64.StdEncoding.DecodeString(p["entry"].(string))
		if err != nil {
			t.Fatal(err)
		}
		e, err := ledger.UnmarshalEntry(entry)
		if err != nil {
			t.Fatal(err)
		}
		if e.Tx.Type != ledger.TypePairDevice || e.Tx.Device != f.dev.Address || e.Tx.VehicleID.Uint64() != f.vehicle {
			t.Errorf("record %d: the pairing entry is %v of %s to %d", i, e.Tx.Type, e.Tx.Device.Hex(), e.Tx.VehicleID.Uint64())
		}
		leaf := xtlog.RecordHash(entry)
		if p["leafHash"] != "0x"+hex.EncodeToString(leaf[:]) {
			t.Errorf("record %d: leafHash %v, want %x", i, p["leafHash"], leaf)
		}
		// The inclusion proof verifies against the signed checkpoint.
		size, root, err := tlog.OpenCheckpoint([]byte(p["checkpoint"].(string)), f.n.Log.Origin(), verifier)
		if err != nil {
			t.Fatal(err)
		}
		if float64(size) != p["treeSize"] {
			t.Errorf("treeSize %v, checkpoint size %d", p["treeSize"], size)
		}
		var proof xtlog.RecordProof
		for _, s := range p["inclusionProof"].([]any) {
			b, err := base64.StdEncoding.DecodeString(s.(string))
			if err != nil || len(b) != xtlog.HashSize {
				t.Fatalf("proof hash %q", s)
			}
			proof = append(proof, xtlog.Hash(b))
		}
		if err := xtlog.CheckRecord(proof, size, root, int64(p["index"].(float64)), leaf); err != nil {
			t.Errorf("record %d: the inclusion proof does not verify: %v", i, err)
		}
	}
	if r.get("rawRecords.pageInfo.hasNextPage") != false {
		t.Errorf("pageInfo: %v", r.get("rawRecords.pageInfo"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.entries) != 1 || f.entries[0].Query != "rawRecords" || !slices.Equal(f.entries[0].Permissions, []string{ledger.PermRaw, ledger.PermLocation}) ||
		f.entries[0].Values != 3 || f.entries[0].Outcome != "ok" || f.entries[0].Caller != app.Address {
		t.Errorf("access entries: %+v", f.entries)
	}
}

func TestRawRecordsNeedRaw(t *testing.T) {
	f := newRawFixture(t)
	app := f.n.App(t, f.owner)
	f.n.Grant(t, f.owner, f.vehicle, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals)
	r := f.raw(t, app.Address, f.vehicle, f.base.Add(-time.Minute), f.base.Add(time.Minute), "")
	if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != graphql.CodeForbidden || r.Errors[0].Extensions["permission"] != ledger.PermRaw {
		t.Fatalf("want FORBIDDEN naming raw: %s", r.Raw)
	}
	if r.get("rawRecords") != nil {
		t.Errorf("records answered: %s", r.Raw)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.entries) != 1 || f.entries[0].Query != "rawRecords" || f.entries[0].Outcome != "forbidden" {
		t.Errorf("access entries: %+v", f.entries)
	}
}

func TestRawRecordsPagesOnce(t *testing.T) {
	f := newRawFixture(t)
	vehicle := f.n.Vehicle(t, f.owner)
	dev := f.n.PairedDevice(t, f.owner, vehicle, ledger.KindHardware)
	t0 := time.Now().Add(time.Second).Truncate(time.Second)
	var subs []telemetry.Submission
	var want []string
	for i := range 250 {
		id := fmt.Sprintf("p%03d", i)
		at := t0.Add(time.Duration(i/2) * 10 * time.Millisecond) // two records at each time: seq breaks the tie
		subs = append(subs, testnode.Record(t, dev, vehicle, id, at))
		want = append(want, id)
	}
	f.post(t, subs...)
	var got []string
	var after string
	for page := 0; ; page++ {
		if page > 3 {
			t.Fatal("too many pages")
		}
		extra := ", first: 100"
		if after != "" {
			extra += fmt.Sprintf(", after: %q", after)
		}
		r := f.raw(t, f.owner.Address, vehicle, t0, t0.Add(time.Hour), extra)
		if len(r.Errors) != 0 {
			t.Fatalf("errors: %s", r.Raw)
		}
		nodes := r.rawNodes()
		edges, _ := r.get("rawRecords.edges").([]any)
		if len(edges) != len(nodes) {
			t.Fatalf("%d edges, %d nodes", len(edges), len(nodes))
		}
		for _, n := range nodes {
			got = append(got, n["id"].(string))
		}
		more := r.get("rawRecords.pageInfo.hasNextPage") == true
		if wantMore := page < 2; more != wantMore || (more && len(nodes) != 100) {
			t.Fatalf("page %d: %d records, hasNextPage %v", page, len(nodes), more)
		}
		if !more {
			break
		}
		after, _ = r.get("rawRecords.pageInfo.endCursor").(string)
		if last := edges[len(edges)-1].(map[string]any)["cursor"]; last != after {
			t.Fatalf("endCursor %q, last edge's cursor %v", after, last)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %d records %v, want %d in order", len(got), got, len(want))
	}
}

func TestTheBuyerSeesNoRawRecordsFromBeforeTheSale(t *testing.T) {
	f := newRawFixture(t)
	buyer := testnode.NewKey(t)
	f.advanceNode(10 * time.Second) // the sale comes after the records
	tx := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
	tx.VehicleID.SetUint64(f.vehicle)
	f.n.Submit(t, tx, f.owner)
	r := f.raw(t, buyer.Address, f.vehicle, f.base.Add(-time.Minute), f.base.Add(time.Minute), "")
	if len(r.Errors) != 0 || len(r.rawNodes()) != 0 || r.get("rawRecords.pageInfo.endCursor") != nil {
		t.Errorf("the buyer sees records from before the sale: %s", r.Raw)
	}
	if r := f.raw(t, f.owner.Address, f.vehicle, f.base.Add(-time.Minute), f.base.Add(time.Minute), ""); r.codes()["rawRecords"] != graphql.CodeForbidden {
		t.Errorf("the seller still reads the records: %s", r.Raw)
	}
}

func TestRawRecordsRefusesBadArguments(t *testing.T) {
	f := newRawFixture(t)
	day := 24 * time.Hour
	for name, c := range map[string]struct {
		from, to time.Time
		extra    string
	}{
		"more than 31 days": {f.base, f.base.Add(31*day + time.Millisecond), ""},
		"to before from":    {f.base, f.base.Add(-time.Second), ""},
		"first over 1000":   {f.base, f.base.Add(day), ", first: 1001"},
		"a foreign cursor":  {f.base, f.base.Add(day), `, after: "dmVoaWNsZToy"`},
	} {
		t.Run(name, func(t *testing.T) {
			r := f.raw(t, f.owner.Address, f.vehicle, c.from, c.to, c.extra)
			if r.codes()["rawRecords"] != graphql.CodeBadRequest {
				t.Errorf("want BAD_REQUEST: %s", r.Raw)
			}
		})
	}
	// Exactly 31 days is fine.
	if r := f.raw(t, f.owner.Address, f.vehicle, f.base.Add(-31*day+time.Minute), f.base.Add(time.Minute), ""); len(r.Errors) != 0 || len(r.rawNodes()) != 3 {
		t.Errorf("31 days: %s", r.Raw)
	}
}

// TestRawRecordsWithholdPreciseLocation: the fixture's third record carries a precise location. An app
// with raw but not location (approximate is not enough) gets the other two and a count of one withheld,
// across pages too; with location, or as the owner, all three.
func TestRawRecordsWithholdPreciseLocation(t *testing.T) {
	f := newRawFixture(t)
	expires := time.Now().Add(time.Hour).Unix()
	rawOnly, approx, precise := f.n.App(t, f.owner), f.n.App(t, f.owner), f.n.App(t, f.owner)
	f.n.Grant(t, f.owner, f.vehicle, rawOnly.Address, expires, ledger.PermRaw)
	f.n.Grant(t, f.owner, f.vehicle, approx.Address, expires, ledger.PermRaw, ledger.PermLocationApproximate)
	f.n.Grant(t, f.owner, f.vehicle, precise.Address, expires, ledger.PermRaw, ledger.PermLocation)
	from, to := f.base.Add(-time.Minute), f.base.Add(time.Minute)
	ids := func(r *response) []string {
		var out []string
		for _, n := range r.rawNodes() {
			out = append(out, n["id"].(string))
		}
		return out
	}
	const extra = `) { nodes { id } withheld pageInfo { hasNextPage endCursor } } }`
	query := func(caller common.Address, args string) *response {
		return do(t, f.h, caller, fmt.Sprintf(`{ rawRecords(tokenId: %d, from: %q, to: %q%s%s`, f.vehicle, rfc(from), rfc(to), args, extra))
	}
	for _, c := range []struct {
		name     string
		caller   common.Address
		ids      string
		withheld float64
	}{
		{"raw only", rawOnly.Address, "r1 r2", 1},
		{"raw and approximate location", approx.Address, "r1 r2", 1},
		{"raw and location", precise.Address, "r1 r2 r3", 0},
		{"the owner", f.owner.Address, "r1 r2 r3", 0},
	} {
		r := query(c.caller, "")
		if len(r.Errors) != 0 || strings.Join(ids(r), " ") != c.ids || r.get("rawRecords.withheld") != c.withheld ||
			r.get("rawRecords.pageInfo.hasNextPage") != false {
			t.Errorf("%s: %s", c.name, r.Raw)
		}
	}
	// Page by page: the withheld record still moves the cursor, and the last page says so.
	var got []string
	after, withheld := "", 0.0
	for page := 0; ; page++ {
		args := ", first: 1"
		if after != "" {
			args += fmt.Sprintf(", after: %q", after)
		}
		r := query(rawOnly.Address, args)
		if len(r.Errors) != 0 || page > 3 {
			t.Fatalf("page %d: %s", page, r.Raw)
		}
		got = append(got, ids(r)...)
		withheld += r.get("rawRecords.withheld").(float64)
		if r.get("rawRecords.pageInfo.hasNextPage") != true {
			break
		}
		after = r.get("rawRecords.pageInfo.endCursor").(string)
	}
	if strings.Join(got, " ") != "r1 r2" || withheld != 1 {
		t.Errorf("paging without location: %v, %v withheld", got, withheld)
	}
	// The access entries name location only when a record with one was handed out.
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.entries {
		hasLoc := slices.Contains(e.Permissions, ledger.PermLocation)
		if (e.Caller == precise.Address) != hasLoc {
			t.Errorf("access entry %+v", e)
		}
	}
}
