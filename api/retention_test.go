package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/verify"
)

// TestRetentionAndErasureThroughTheNode runs a car's life on a node with a clock the test moves: records
// two days apart, a one-day retention window, a sale, and the seller's erasure of its period. After each
// sweep, nothing deleted is readable through GraphQL (values, latest values, raw records) or present in the
// database, GET /v1/vehicles/{id}/retention reports it to the owner and the former owner only, the access
// log is kept, and the log still verifies and replays to the node's state.
func TestRetentionAndErasureThroughTheNode(t *testing.T) {
	ctx := context.Background()
	// The test node's helpers sign deadlines an hour after the real time, which the clock must be within a
	// day of; the transactions after that carry deadlines from the clock (dl).
	t0 := time.Now().Add(-22*time.Hour - 50*time.Minute).Truncate(time.Minute)
	clock := &atomicTime{t: t0}
	n := testnode.Start(t, testnode.Options{Now: clock.get})
	alice, bob, app := testnode.NewKey(t), testnode.NewKey(t), testnode.NewKey(t)
	vid := n.Vehicle(t, alice)
	dev := n.PairedDevice(t, alice, vid, ledger.KindHardware)
	n.App(t, app)
	post := func(id string, at time.Time) {
		t.Helper()
		clock.set(at.Add(time.Second))
		if res := post1(t, n, testnode.Record(t, dev, vid, id, at)); res[0].Status != telemetry.StatusAccepted {
			t.Fatalf("record %s: %+v", id, res)
		}
	}
	post("old1", t0.Add(time.Minute))
	post("old2", t0.Add(2*time.Minute))
	post("new", t0.Add(24*time.Hour+5*time.Minute))
	dl := func(tx *ledger.Tx) *ledger.Tx {
		tx.Deadline.SetUint64(uint64(clock.get().Add(time.Hour).Unix()))
		return tx
	}
	if _, err := n.Telemetry.Index(ctx); err != nil {
		t.Fatal(err)
	}
	rawIDs := func(tok string) string {
		t.Helper()
		got := graphQL(t, n, tok, fmt.Sprintf(`{ rawRecords(tokenId: %d, from: %q, to: %q, first: 100) { nodes { id } } }`, vid,
			t0.Add(-time.Hour).UTC().Format(time.RFC3339), clock.get().Add(time.Hour).UTC().Format(time.RFC3339)))
		var ids []string
		for _, nd := range got["data"].(map[string]any)["rawRecords"].(map[string]any)["nodes"].([]any) {
			ids = append(ids, nd.(map[string]any)["id"].(string))
		}
		return strings.Join(ids, " ")
	}
	speedCount := func(tok string) string {
		t.Helper()
		got := graphQL(t, n, tok, fmt.Sprintf(`{ dataSummary(tokenId: %d) { signalDataSummary { name numberOfSignals } } }`, vid))
		b, _ := json.Marshal(got["data"])
		return string(b)
	}
	stored := func() int {
		t.Helper()
		var c int
		if err := n.Telemetry.DB().QueryRow(`SELECT COUNT(*) FROM records WHERE vehicle = ?`, vid).Scan(&c); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := n.Telemetry.SignalsDB().QueryRow(`SELECT (SELECT COALESCE(SUM(cnt), 0) FROM open_values WHERE vehicle = ?1) + (SELECT COALESCE(SUM(cnt), 0) FROM chunk_sums WHERE vehicle = ?1)`, vid).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return c*1000 + v
	}
	aliceTok := signIn(t, n, alice)
	if got := rawIDs(aliceTok); got != "old1 old2 new" {
		t.Fatalf("before any deletion alice reads %q", got)
	}

	// A window of one day: the two records of the first day go at the next sweep, the third stays.
	keep := &ledger.Tx{Type: ledger.TypeSetRetention, Days: 1}
	keep.VehicleID.SetUint64(vid)
	n.Submit(t, dl(keep), alice)
	if _, err := n.Sweeper.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	aliceTok = signIn(t, n, alice)
	if got := rawIDs(aliceTok); got != "new" {
		t.Fatalf("after the sweep alice reads the raw records %q, want only new", got)
	}
	if got, want := speedCount(aliceTok), `{"dataSummary":{"signalDataSummary":[{"name":"isIgnitionOn","numberOfSignals":1},{"name":"speed","numberOfSignals":1}]}}`; got != want {
		t.Fatalf("data summary %s\nwant %s", got, want)
	}
	if got := stored(); got != 1002 {
		t.Fatalf("the database holds %d records and %d values of the car, want 1 and 2", got/1000, got%1000)
	}

	// Alice sells the car; bob's record follows; alice erases her whole period.
	clock.add(time.Minute)
	sale := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: bob.Address}
	sale.VehicleID.SetUint64(vid)
	n.Submit(t, dl(sale), alice)
	post("bobs", clock.get().Add(time.Minute))
	if _, err := n.Telemetry.Index(ctx); err != nil {
		t.Fatal(err)
	}
	erase := &ledger.Tx{Type: ledger.TypeEraseData, Before: uint64(clock.get().Unix())}
	erase.VehicleID.SetUint64(vid)
	n.Submit(t, dl(erase), alice)
	n.Refuse(t, string(ledger.CodeNeverOwned), func() *ledger.Tx {
		tx := &ledger.Tx{Type: ledger.TypeEraseData, Before: uint64(clock.get().Unix())}
		tx.VehicleID.SetUint64(vid)
		return dl(tx)
	}(), app)
	if _, err := n.Sweeper.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got != 1002 {
		t.Fatalf("after the erasure the database holds %d records and %d values, want bob's 1 and 2", got/1000, got%1000)
	}
	bobTok := signIn(t, n, bob)
	if got := rawIDs(bobTok); got != "bobs" {
		t.Fatalf("bob reads %q", got)
	}

	var report telemetry.RetentionReport
	for _, c := range []struct {
		who    string
		token  string
		status int
	}{
		{"the owner", bobTok, 200},
		{"the former owner", signIn(t, n, alice), 200},
		{"an app", signIn(t, n, app), 403},
		{"nobody", "", 401},
	} {
		status, body := authGet(t, fmt.Sprintf("%s/v1/vehicles/%d/retention", n.URL, vid), c.token)
		if status != c.status {
			t.Fatalf("%s reading the retention: %d %s", c.who, status, body)
		}
		if status != 200 {
			continue
		}
		if err := json.Unmarshal(body, &report); err != nil {
			t.Fatal(err)
		}
		if report.Days != 1 || len(report.Erasures) != 1 || report.Erasures[0].Status != "completed" ||
			report.Erasures[0].Deleted != (telemetry.Deleted{Records: 1, Values: 2}) || !strings.EqualFold(report.Erasures[0].Account, alice.Address.Hex()) {
			t.Fatalf("%s reads the retention %s", c.who, body)
		}
		if report.Retention == nil || report.Retention.Deleted != (telemetry.Deleted{Records: 2, Values: 4}) {
			t.Fatalf("%s reads what the window deleted as %s", c.who, body)
		}
	}
	if status, body := authGet(t, fmt.Sprintf("%s/v1/vehicles/%d/access", n.URL, vid), bobTok); status != 200 || !strings.Contains(string(body), `"entries":`) {
		t.Fatalf("the access log: %d %s", status, body)
	}
	info, err := n.Client.Node(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Log(ctx, n.Client, verify.Options{Key: info.LogKey}); err != nil {
		t.Fatalf("the log does not verify (or replay to the node's state): %v", err)
	}
}
