package node_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/export"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/verify"
)

// movingClock is a clock the test sets.
type movingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movingClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *movingClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TestClusterSweepsRetentionOnPostgreSQL runs one cluster process with every role on a real PostgreSQL
// and NATS JetStream, its sweeper every 100 ms: a car's device sends two records three days old and one
// of an hour ago; the owner sets a retention of one day. Once a sweep reports the old records deleted,
// nothing of them is readable through GraphQL (raw records, values, latest values, data summary) or
// the export, no row of them is left in the database, the report counts them, and the log still verifies
// and replays to the cluster's state.
func TestClusterSweepsRetentionOnPostgreSQL(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now().Add(-72 * time.Hour).Truncate(time.Minute)
	clock := &movingClock{t: t0}
	p := startPGCluster(t, node.ClusterConfig{SweepInterval: 100 * time.Millisecond, Now: clock.now})
	cl := p.cl
	pool, err := postgres.Connect(ctx, p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	submit := func(tx *ledger.Tx, keys ...testnode.Key) *ledger.Result { return p.submit(t, tx, keys...).Result }
	owner, dev := testnode.NewKey(t), testnode.NewKey(t)
	vid := submit(&ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Volvo", Model: "XC40", Year: 2023}, owner).VehicleID
	submit(&ledger.Tx{Type: ledger.TypeRegisterDevice, Device: dev.Address, Kind: ledger.KindHardware}, dev)
	pair := &ledger.Tx{Type: ledger.TypePairDevice, Device: dev.Address}
	pair.VehicleID.SetUint64(vid)
	submit(pair, owner, dev)
	// Every process follows the log: wait until the API sees the pairing.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if v, err := cl.Vehicle(ctx, vid); err == nil && len(v.Devices) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pairing did not reach the API within 30 s")
		}
	}

	post := func(id string, at time.Time) {
		t.Helper()
		clock.set(at.Add(time.Second))
		res, err := cl.PostEvents(ctx, []telemetry.Submission{testnode.Record(t, dev, vid, id, at)})
		if err != nil || res[0].Status != telemetry.StatusAccepted {
			t.Fatalf("record %s: %+v %v", id, res, err)
		}
	}
	old := []time.Time{t0.Add(time.Minute), t0.Add(2 * time.Minute)}
	recent := time.Now().Add(-time.Hour).Truncate(time.Second)
	post("old1", old[0])
	post("old2", old[1])
	post("new", recent)
	clock.set(time.Now())
	// The records reach PostgreSQL through JetStream: wait until all three are stored.
	// "values" counts the signal values in rows and in the chunks the sealer moves closed hours into.
	stored := func(table string) int {
		t.Helper()
		var n int
		q := `SELECT COUNT(*) FROM ` + table + ` WHERE vehicle = $1`
		if table == "values" {
			q = `SELECT (SELECT COUNT(*) FROM signals WHERE vehicle = $1) + (SELECT COALESCE(SUM(cnt), 0) FROM chunk_sums WHERE vehicle = $1)`
		}
		if err := pool.QueryRow(ctx, q, int64(vid)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); stored("records") < 3 || stored("values") < 6; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d records and %d values stored after 30 s, want 3 and 6", stored("records"), stored("values"))
		}
	}
	tok, err := cl.SignIn(ctx, owner.Key)
	if err != nil {
		t.Fatal(err)
	}
	reads := func() string {
		t.Helper()
		q := fmt.Sprintf(`{ rawRecords(tokenId: %d, from: %q, to: %q, first: 100) { nodes { id } }
			signals(tokenId: %[1]d, interval: "24h", from: %[2]q, to: %[3]q) { speed(agg: AVG) }
			dataSummary(tokenId: %[1]d) { firstSeen signalDataSummary { name numberOfSignals } } }`,
			vid, t0.Add(-time.Hour).UTC().Format(time.RFC3339), time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		res, err := cl.GraphQL(ctx, tok.AccessToken, q, nil)
		if err != nil || len(res.Errors) > 0 {
			t.Fatalf("GraphQL: %+v %v", res, err)
		}
		var out struct {
			RawRecords  struct{ Nodes []struct{ ID string } }
			Signals     []struct{ Speed *float64 }
			DataSummary struct {
				FirstSeen         time.Time
				SignalDataSummary []struct {
					Name            string
					NumberOfSignals int
				}
			}
		}
		if err := json.Unmarshal(res.Data, &out); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, n := range out.RawRecords.Nodes {
			ids = append(ids, n.ID)
		}
		speeds := 0 // days with a speed
		for _, s := range out.Signals {
			if s.Speed != nil {
				speeds++
			}
		}
		var counts []string
		for _, s := range out.DataSummary.SignalDataSummary {
			counts = append(counts, fmt.Sprintf("%s=%d", s.Name, s.NumberOfSignals))
		}
		return fmt.Sprintf("raw [%s] days with speed %d summary %s first %s", strings.Join(ids, " "), speeds, strings.Join(counts, " "),
			out.DataSummary.FirstSeen.UTC().Format(time.RFC3339))
	}
	before := fmt.Sprintf("raw [old1 old2 new] days with speed 2 summary isIgnitionOn=3 speed=3 first %s", old[0].UTC().Format(time.RFC3339))
	if got := reads(); got != before {
		t.Fatalf("before the retention the owner reads\n%s\nwant\n%s", got, before)
	}

	keep := &ledger.Tx{Type: ledger.TypeSetRetention, Days: 1}
	keep.VehicleID.SetUint64(vid)
	submit(keep, owner)
	// The sweeper runs every 100 ms: wait until the report says the window deleted the two old records.
	var report telemetry.RetentionReport
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		body, status := get(t, fmt.Sprintf("%s/v1/vehicles/%d/retention", p.url, vid), tok.AccessToken)
		if status != http.StatusOK {
			t.Fatalf("the retention report: %d %s", status, body)
		}
		if err := json.Unmarshal(body, &report); err != nil {
			t.Fatal(err)
		}
		if report.Retention != nil && report.Retention.SweptAt != "" && report.Retention.Deleted.Records == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sweep deleted the old records within 60 s: %s", body)
		}
	}
	if report.Days != 1 || report.Retention.Deleted != (telemetry.Deleted{Records: 2, Values: 4}) {
		t.Fatalf("the report: %+v %+v", report, report.Retention)
	}
	after := fmt.Sprintf("raw [new] days with speed 1 summary isIgnitionOn=1 speed=1 first %s", recent.UTC().Format(time.RFC3339))
	if got := reads(); got != after {
		t.Fatalf("after the sweep the owner reads\n%s\nwant\n%s", got, after)
	}
	for table, want := range map[string]int{"records": 1, "values": 2, "latest": 2} {
		if got := stored(table); got != want {
			t.Errorf("after the sweep the table %s holds %d rows of the car, want %d", table, got, want)
		}
	}
	var oldRows int
	if err := pool.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM records WHERE vehicle = $1 AND time < $2) +
		(SELECT COUNT(*) FROM signals WHERE vehicle = $1 AND time < $2) + (SELECT COUNT(*) FROM chunk_sums WHERE vehicle = $1 AND start < $2) +
		(SELECT COUNT(*) FROM latest WHERE vehicle = $1 AND time < $2) +
		(SELECT COUNT(*) FROM events WHERE vehicle = $1 AND time < $2)`, int64(vid), recent.Add(-time.Minute).UnixMilli()).Scan(&oldRows); err != nil {
		t.Fatal(err)
	}
	if oldRows != 0 {
		t.Errorf("%d rows older than the window are left in the database", oldRows)
	}

	// The export holds only the new record, and verifies.
	info, err := cl.Node(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cl.Export(ctx, tok.AccessToken, client.ExportQuery{Vehicle: vid})
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(st.Body)
	st.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := export.Verify(zr, info.LogKey)
	if err != nil || rep.Records != 1 || rep.Values != 2 {
		t.Fatalf("the export after the sweep: %+v %v, want 1 record of 2 values that verifies", rep, err)
	}
	if _, err := verify.Log(ctx, cl, verify.Options{Key: info.LogKey}); err != nil {
		t.Fatalf("the log does not verify (or replay to the cluster's state): %v", err)
	}
}

// get reads url with a bearer token: the body and the status.
func get(t *testing.T, url, token string) ([]byte, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body, resp.StatusCode
}
