package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/bench"
	"github.com/glovebox/glovebox/internal/pgtest"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/stream"
	"github.com/glovebox/glovebox/verify"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(pastNodeData); dir != "" {
		os.Exit(runPastNode(dir)) // the child process of TestKill9WhileClosedHoursAreHeldLosesNoValue
	}
	pgtest.Main(m)
}

var mqttLine = regexp.MustCompile(`MQTT for devices on (\S+)`)

type proc struct {
	cmd  *exec.Cmd
	url  string
	mqtt string
}

// startClusterProcess runs `glovebox serve --store … --nats …` with the given roles and waits until it
// listens (and, with the ingest role, until its MQTT broker does). flags are added to the command line.
func startClusterProcess(t *testing.T, data, dsn, natsURL, roles string, flags ...string) *proc {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--data", data, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0", "--rate-limit", "0",
		"--store", dsn, "--nats", natsURL, "--role", roles, "--log-level", "warn")
	cmd.Args = append(cmd.Args, flags...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &proc{cmd: cmd}
	wantMQTT := strings.Contains(roles, "ingest")
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
			p.url = m[1]
		}
		if m := mqttLine.FindStringSubmatch(sc.Text()); m != nil {
			p.mqtt = m[1]
		}
		if p.url != "" && (p.mqtt != "" || !wantMQTT) {
			go func() {
				for sc.Scan() {
				}
			}()
			return p
		}
	}
	t.Fatalf("glovebox serve (%s) exited before listening: %v", roles, sc.Err())
	return nil
}

// failover sends to the first node that answers, as a load balancer in front of ingest processes would.
type failover struct{ nodes []*sim.HTTPTransport }

func (f *failover) Send(ctx context.Context, subs []telemetry.Submission) ([]telemetry.Result, error) {
	var err error
	for _, n := range f.nodes {
		var res []telemetry.Result
		if res, err = n.Send(ctx, subs); err == nil {
			return res, nil
		}
	}
	return nil, err
}

// acks records every record a node acknowledged (accepted or duplicate), with its bytes.
type acks struct {
	mu sync.Mutex
	m  map[telemetry.RecordKey][]byte
}

type recording struct {
	sim.Transport
	acks *acks
}

func (r *recording) Send(ctx context.Context, subs []telemetry.Submission) ([]telemetry.Result, error) {
	res, err := r.Transport.Send(ctx, subs)
	if err != nil {
		return nil, err
	}
	r.acks.mu.Lock()
	defer r.acks.mu.Unlock()
	for i, x := range res {
		if x.Status == telemetry.StatusAccepted || x.Status == telemetry.StatusDuplicate {
			r.acks.m[telemetry.RecordKey{Source: common.HexToAddress(x.Source), ID: x.ID}] = subs[i].Event
		}
	}
	return res, nil
}

// recordingDevices is a recording transport that logs in as each device (MQTT).
type recordingDevices struct {
	recording
	dt sim.DeviceTransport
}

func (r *recordingDevices) SetDevices(origin string, keys []*ecdsa.PrivateKey) {
	r.dt.SetDevices(origin, keys)
}

// TestClusterSurvivesKillingTheSequencerAndAnIngestProcess runs a cluster of real processes on a real
// PostgreSQL and NATS JetStream: a sequencer, a standby, and two api/ingest processes, with simulated
// fleets sending signed telemetry over HTTP and MQTT and an owner registering vehicles. It SIGKILLs the
// sequencer and one ingest process mid-load and then checks that the standby took over, that every
// acknowledged transaction and record is present exactly once, and that the log verifies.
func TestClusterSurvivesKillingTheSequencerAndAnIngestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills real processes")
	}
	ctx := context.Background()
	dsn, pool, ns := pgBackend(t, true)
	data := t.TempDir() // the keys every process shares

	leader := startClusterProcess(t, data, dsn, ns.URL(), "sequencer,api")
	waitFor(t, 30*time.Second, "the first process to take the lease", func() bool {
		_, url, _, err := postgres.Leader(ctx, pool)
		return err == nil && url == leader.url
	})
	standby := startClusterProcess(t, data, dsn, ns.URL(), "sequencer,api")
	in1 := startClusterProcess(t, data, dsn, ns.URL(), "api,ingest")
	in2 := startClusterProcess(t, data, dsn, ns.URL(), "api,ingest")

	// Transactions: an owner registers vehicles one at a time through the api processes.
	c1, c2 := client.New(in1.url), client.New(in2.url)
	d, err := c2.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := crypto.GenerateKey()
	type ackedTx struct {
		index int64
		nonce string
	}
	var txMu sync.Mutex
	var txAcks []ackedTx
	startedAt := time.Now()
	load, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; load.Err() == nil; i++ {
			tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: crypto.PubkeyToAddress(owner.PublicKey), Make: "Cluster", Model: "Test", Year: 2025}
			client.Prepare(tx, time.Hour)
			d.Sign(tx, owner)
			c := c1
			if i%2 == 1 {
				c = c2
			}
			r, err := c.Submit(load, tx)
			if err != nil {
				if r, err = c2.Submit(load, tx); err != nil {
					time.Sleep(50 * time.Millisecond) // the sequencer is being taken over
					continue
				}
			}
			txMu.Lock()
			txAcks = append(txAcks, ackedTx{r.Index, tx.Nonce.String()})
			txMu.Unlock()
			// Reading one's own write through an api process that did not forward it finds the receipt.
			if i%10 == 0 {
				if got, err := c2.Transaction(load, r.Index); err != nil && load.Err() == nil {
					t.Errorf("receipt %d read back through an api process: %v", r.Index, err)
				} else if err == nil && got.Index != r.Index {
					t.Errorf("receipt %d read back as %d", r.Index, got.Index)
				}
			}
		}
	}()

	// Telemetry: one fleet over HTTP through both ingest processes, one over MQTT to the second.
	recorded := &acks{m: map[telemetry.RecordKey][]byte{}}
	mq := sim.NewMQTTTransport(in2.mqtt)
	fleets := []sim.Options{
		{Node: in1.url, Vehicles: 6, Rate: 100 * time.Millisecond, KeysDir: t.TempDir(),
			Transport: &recording{&failover{[]*sim.HTTPTransport{sim.NewHTTPTransport(in1.url), sim.NewHTTPTransport(in2.url)}}, recorded}},
		{Node: in2.url, Vehicles: 4, Rate: 100 * time.Millisecond, KeysDir: t.TempDir(),
			Transport: &recordingDevices{recording{mq, recorded}, mq}},
	}
	stats := make([]sim.Stats, len(fleets))
	for i, o := range fleets {
		o.Logger = slog.New(slog.DiscardHandler)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if stats[i], err = sim.Run(load, o); err != nil && load.Err() == nil {
				t.Errorf("fleet %d: %v", i, err)
			}
		}()
	}

	recordsAcked := func() int {
		recorded.mu.Lock()
		defer recorded.mu.Unlock()
		return len(recorded.m)
	}
	waitFor(t, 60*time.Second, "records to be acknowledged", func() bool { return recordsAcked() >= 200 })
	txMu.Lock()
	before := len(txAcks)
	txMu.Unlock()
	leader.cmd.Process.Signal(syscall.SIGKILL)
	leader.cmd.Wait()
	in1.cmd.Process.Signal(syscall.SIGKILL)
	in1.cmd.Wait()
	killedAt := time.Now()
	waitFor(t, 30*time.Second, "the standby to take over", func() bool {
		_, url, _, err := postgres.Leader(ctx, pool)
		return err == nil && url == standby.url
	})
	waitFor(t, 30*time.Second, "transactions to be acknowledged again", func() bool {
		txMu.Lock()
		defer txMu.Unlock()
		return len(txAcks) > before+20
	})
	t.Logf("the standby sequences again %v after the kill", time.Since(killedAt).Round(10*time.Millisecond))
	n := recordsAcked()
	waitFor(t, 30*time.Second, "more records after the kill", func() bool { return recordsAcked() > n+100 })
	stopLoad()
	wg.Wait()

	// Every acknowledged record is in PostgreSQL exactly once, with its bytes (the dead ingest
	// process's unacknowledged stream messages are delivered to the other writer).
	recorded.mu.Lock()
	defer recorded.mu.Unlock()
	var srcs [][]byte
	var ids []string
	for k := range recorded.m {
		srcs, ids = append(srcs, k.Source.Bytes()), append(ids, k.ID)
	}
	missing := -1
	waitFor(t, 90*time.Second, "every acknowledged record to be written", func() bool {
		if err := pool.QueryRow(ctx, `SELECT $3::int - COUNT(*) FROM records r JOIN unnest($1::bytea[], $2::text[]) AS u(source, id)
			ON r.source = u.source AND r.id = u.id`, srcs, ids, len(ids)).Scan(&missing); err != nil {
			t.Fatal(err)
		}
		return missing <= 0
	})
	if missing != 0 {
		t.Fatalf("%d acknowledged records are stored more than once", -missing)
	}
	rows, err := pool.Query(ctx, `SELECT source, id, event FROM records`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var src, ev []byte
		var id string
		if err := rows.Scan(&src, &id, &ev); err != nil {
			t.Fatal(err)
		}
		if want, ok := recorded.m[telemetry.RecordKey{Source: common.BytesToAddress(src), ID: id}]; ok && string(want) != string(ev) {
			t.Fatalf("record %x/%s is stored with other bytes", src, id)
		}
	}
	var dup int
	if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM records GROUP BY source, id HAVING COUNT(*) > 1) d`).Scan(&dup); err != nil || dup != 0 {
		t.Fatalf("%d keys stored more than once (%v)", dup, err)
	}

	// Every acknowledged transaction is in the log once, at the index of its receipt; the log verifies.
	cs := client.New(standby.url)
	info, err := cs.Node(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the api process to follow the log", func() bool {
		a, err1 := c2.StateDigest(ctx)
		b, err2 := cs.StateDigest(ctx)
		return err1 == nil && err2 == nil && a.TreeSize == b.TreeSize && a.Digest == b.Digest
	})
	size := int64(info.TreeSize)
	if dg, err := cs.StateDigest(ctx); err == nil {
		size = int64(dg.TreeSize)
	}
	lg, err := postgres.OpenLog(ctx, pool, info.Origin)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := lg.Entries(ctx, 0, lg.Size())
	if err != nil {
		t.Fatal(err)
	}
	nonces := map[string]int{}
	for i, raw := range entries {
		e, err := ledger.UnmarshalEntry(raw)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		nonces[e.Tx.Nonce.String()]++
	}
	for _, a := range txAcks {
		if a.index >= int64(len(entries)) {
			t.Fatalf("acknowledged transaction at %d is beyond the log (%d)", a.index, len(entries))
		}
		e, err := ledger.UnmarshalEntry(entries[a.index])
		if err != nil || e.Tx.Nonce.String() != a.nonce || nonces[a.nonce] != 1 {
			t.Fatalf("acknowledged transaction at %d (nonce %s) is not in the log once at its index", a.index, a.nonce)
		}
	}
	sum, err := verify.Log(ctx, cs, verify.Options{Key: info.LogKey})
	if err != nil {
		t.Fatalf("the log does not verify: %v", err)
	}
	bin, _ := buildBinary()
	if out, err := exec.Command(bin, "verify", "--key", info.LogKey, "--state-dir", t.TempDir(), in2.url).CombinedOutput(); err != nil {
		t.Fatalf("glovebox verify: %v\n%s", err, out)
	}
	t.Logf("%d acknowledged transactions (log size %d, %v), %d acknowledged records, all present once; fleets: %+v / %+v",
		len(txAcks), size, sum, len(recorded.m), stats[0].Accepted, stats[1].Accepted)

	// A single node on SQLite, replaying the same log and records, gives the same GraphQL answers.
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	waitFor(t, 60*time.Second, "the stream to be written out", func() bool {
		cons, err := js.Consumer(ctx, stream.DefaultStream, stream.DefaultConsumer)
		if err != nil {
			return false
		}
		ci, err := cons.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
	single := replayOnSQLite(t, ctx, pool, data)
	compared := 0
	for _, o := range fleets {
		keys, err := sim.LoadKeys(o.KeysDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, spec := range keys.Specs[:2] {
			for _, q := range []string{
				fmt.Sprintf(`{ signalsSnapshot(tokenId: %d) { lastSeen signals { name timestamp valueNumber valueString valueLocation { latitude longitude hdop } } } }`, spec.VehicleID),
				fmt.Sprintf(`{ dataSummary(tokenId: %d) { numberOfSignals availableSignals signalDataSummary { name numberOfSignals firstSeen lastSeen } } }`, spec.VehicleID),
				fmt.Sprintf(`{ signals(tokenId: %d, interval: "2s", from: %q, to: %q) { timestamp avg: speed(agg: AVG) max: speed(agg: MAX) med: speed(agg: MED) `+
					`first: speed(agg: FIRST) odo: powertrainTransmissionTravelledDistance(agg: LAST) } }`,
					spec.VehicleID, startedAt.Add(-time.Minute).UTC().Format(time.RFC3339), time.Now().Add(time.Minute).UTC().Format(time.RFC3339)),
				fmt.Sprintf(`{ rawRecords(tokenId: %d, from: %q, to: %q, first: 1000) { nodes { id source vehicleId time receivedAt event signature `+
					`pairing { index entry leafHash treeSize checkpoint inclusionProof } } } }`,
					spec.VehicleID, startedAt.Add(-time.Minute).UTC().Format(time.RFC3339), time.Now().Add(time.Minute).UTC().Format(time.RFC3339)),
			} {
				a := graphQL(t, ctx, in2.url, spec.OwnerKey, q)
				b := graphQL(t, ctx, single.URL, spec.OwnerKey, q)
				if a != b {
					t.Fatalf("GraphQL answers differ for %s\ncluster: %.2000s\nsqlite:  %.2000s", q, a, b)
				}
				if strings.Contains(a, `"errors"`) || len(a) < 60 {
					t.Fatalf("GraphQL answer for %s: %s", q, a)
				}
				compared++
			}
		}
	}
	t.Logf("%d GraphQL answers identical on the cluster (PostgreSQL) and a single SQLite node", compared)
}

// replayOnSQLite builds a single node's data directory from the cluster's log entries and records, with
// the cluster's keys, and starts it.
func replayOnSQLite(t *testing.T, ctx context.Context, pool *pgxpool.Pool, clusterData string) *testnode.Node {
	t.Helper()
	dir := t.TempDir()
	if err := bench.ReplayOnSQLite(ctx, pool, clusterData, dir); err != nil {
		t.Fatal(err)
	}
	n := testnode.Start(t, testnode.Options{Dir: dir})
	if _, err := n.Telemetry.Index(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// graphQL signs key in at base and returns the body of the answer to query.
func graphQL(t *testing.T, ctx context.Context, base string, key *ecdsa.PrivateKey, query string) string {
	t.Helper()
	token, err := bench.SignIn(ctx, base, key)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
