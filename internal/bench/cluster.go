package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/pgtest"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/stream"
	"github.com/glovebox/glovebox/tlog"
)

// ClusterOptions sizes a cluster benchmark; zero fields take the defaults.
type ClusterOptions struct {
	Binary     string // the glovebox binary the processes run (required)
	Ingesters  []int  // numbers of ingest processes to measure (default 1, 2, 3)
	Vehicles   int    // default 1,000
	Records    int    // per run, 10 signals each (default 60,000)
	PerRequest int    // records per POST /v1/events (default 100)
	Clients    int    // connections, spread over the ingest processes (default 32)
	// Queries is how many times each query is timed on PostgreSQL and on SQLite (default 200).
	Queries int
	// History is how many more records the first vehicle gets, one per millisecond, before the queries
	// are timed, so that its history queries scan that many values per signal (default 20,000).
	History int
	// SyncAlways makes the JetStream server fsync every message before acknowledging it.
	SyncAlways bool
	Progress   io.Writer
}

func (o *ClusterOptions) defaults() {
	if len(o.Ingesters) == 0 {
		o.Ingesters = []int{1, 2, 3}
	}
	if o.Vehicles == 0 {
		o.Vehicles = 1000
	}
	if o.Records == 0 {
		o.Records = 60000
	}
	if o.PerRequest == 0 {
		o.PerRequest = 100
	}
	if o.Clients == 0 {
		o.Clients = 32
	}
	if o.Queries == 0 {
		o.Queries = 200
	}
	if o.History == 0 {
		o.History = 20000
	}
}

// ClusterRun is one measurement with a number of ingest processes.
type ClusterRun struct {
	Ingesters     int
	RecoverPerSec float64 // bare recovery on all cores, just before
	AckedPerSec   float64 // verified records acknowledged (on the stream) per second
	StoredPerSec  float64 // records in PostgreSQL per second, from the first request to the last row
	Ratio         float64 // AckedPerSec / RecoverPerSec
	P50, P99      time.Duration
	// BytesPerRecord is PostgreSQL's size of the telemetry tables (records, record_keys, signals, the
	// chunks of sealed hours, latest, with their indexes and TOAST) per stored record.
	BytesPerRecord float64
}

// ClusterReport is what a cluster benchmark measured.
type ClusterReport struct {
	Cores      int
	Records    int
	History    int
	SyncAlways bool
	Runs       []ClusterRun
	// Query latencies of the same GraphQL queries on the cluster (PostgreSQL) and on a single SQLite node
	// replaying the same log and records: p50 and p99 per query name.
	Queries []QueryCompare
}

// QueryCompare is one query's latency on both stores.
type QueryCompare struct {
	Name                       string
	PGp50, PGp99, SQp50, SQp99 time.Duration
}

func (o *ClusterOptions) logf(format string, args ...any) { logTo(o.Progress, format, args...) }

// clusterProc is a `glovebox serve --store …` child process.
type clusterProc struct {
	cmd *exec.Cmd
	url string
}

func startClusterProc(binary, data, dsn, natsURL, roles string) (*clusterProc, error) {
	cmd := exec.Command(binary, append([]string{"serve", "--data", data, "--http", "127.0.0.1:0", "--mqtt", "off",
		"--store", dsn, "--nats", natsURL, "--role", roles, "--log-level", "warn"}, unlimited...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`listening on (http://\S+?)/? `)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, out)
			return &clusterProc{cmd: cmd, url: m[1]}, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("glovebox serve --role %s exited before listening", roles)
}

func (p *clusterProc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
}

// Cluster measures ingest through 1, 2 and 3 ingest processes of a cluster on a real PostgreSQL and an
// embedded JetStream server (in this process), all on this machine, then the latency of GraphQL queries on
// the cluster's PostgreSQL against a single SQLite node holding the same data.
func Cluster(ctx context.Context, opts ClusterOptions) (*ClusterReport, error) {
	opts.defaults()
	if opts.Binary == "" {
		return nil, fmt.Errorf("the cluster benchmark needs the glovebox binary")
	}
	rep := &ClusterReport{Cores: runtime.NumCPU(), Records: opts.Records, History: opts.History, SyncAlways: opts.SyncAlways}
	opts.logf("starting PostgreSQL…")
	pg, err := pgtest.Start(ctx)
	if err != nil {
		return nil, err
	}
	defer pg.Stop()
	for i, n := range opts.Ingesters {
		run, err := clusterRun(ctx, &opts, pg, n, i == len(opts.Ingesters)-1, rep)
		if err != nil {
			return nil, err
		}
		rep.Runs = append(rep.Runs, *run)
	}
	return rep, nil
}

func clusterRun(ctx context.Context, opts *ClusterOptions, pg *pgtest.Server, ingesters int, queries bool, rep *ClusterReport) (*ClusterRun, error) {
	run := &ClusterRun{Ingesters: ingesters}
	dsn, err := pg.CreateDatabase(ctx)
	if err != nil {
		return nil, err
	}
	defer pg.DropDatabase(context.Background(), dsn)
	pool, err := postgres.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		return nil, err
	}
	natsDir, err := os.MkdirTemp("", "glovebox-bench-nats-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(natsDir)
	ns, err := stream.StartEmbedded(natsDir, "127.0.0.1", -1, opts.SyncAlways)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	data, err := os.MkdirTemp("", "glovebox-bench-cluster-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(data)
	seq, err := startClusterProc(opts.Binary, data, dsn, ns.URL(), "sequencer,api")
	if err != nil {
		return nil, err
	}
	defer seq.stop()
	var ins []*clusterProc
	for range ingesters {
		p, err := startClusterProc(opts.Binary, data, dsn, ns.URL(), "api,ingest")
		if err != nil {
			return nil, err
		}
		defer p.stop()
		ins = append(ins, p)
	}
	opts.logf("%d ingest process(es): registering and pairing %d vehicles…", ingesters, opts.Vehicles)
	for {
		if _, url, _, err := postgres.Leader(ctx, pool); err == nil && url == seq.url {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	devs, ids, owners, err := fleetWithOwners(ctx, client.New(seq.url), opts.Vehicles)
	if err != nil {
		return nil, err
	}
	opts.logf("signing %d records of 10 signals…", opts.Records)
	start := time.Now().Add(time.Second) // after the pairings, and after the ingest processes followed them
	bodies, err := signedRecordBodies(opts, devs, ids, start)
	if err != nil {
		return nil, err
	}
	for time.Now().Before(start) {
		time.Sleep(10 * time.Millisecond)
	}
	run.RecoverPerSec = RecoverRate(3 * time.Second)
	opts.logf("ingesting through %d process(es) from %d connections…", ingesters, opts.Clients)
	t0 := time.Now()
	var mu sync.Mutex
	var lat []time.Duration
	var first error
	var wg sync.WaitGroup
	for i, p := range ins {
		var mine [][]byte
		for j := i; j < len(bodies); j += len(ins) {
			mine = append(mine, bodies[j])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, _, err := sendAll(ctx, strings.TrimPrefix(p.url, "http://"), mine, max(1, opts.Clients/len(ins)), func(body []byte) error {
				if strings.Count(string(body), `"status":"accepted"`) != strings.Count(string(body), `"status":`) {
					return fmt.Errorf("a record was not accepted: %.300s", body)
				}
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, l...)
			if err != nil && first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	acked := time.Since(t0)
	if first != nil {
		return nil, first
	}
	for {
		var n int
		if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM record_keys`).Scan(&n); err != nil {
			return nil, err
		}
		if n >= opts.Records {
			break
		}
		if time.Since(t0) > 10*time.Minute {
			return nil, fmt.Errorf("only %d of %d records reached PostgreSQL", n, opts.Records)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stored := time.Since(t0)
	var bytes int64
	if err := pool.QueryRow(ctx, `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c
		WHERE c.relkind = 'r' AND (c.relname LIKE 'records%' OR c.relname LIKE 'signals%' OR c.relname LIKE 'chunk\_%' OR c.relname IN ('record_keys', 'latest', 'names'))`).Scan(&bytes); err != nil {
		return nil, err
	}
	run.BytesPerRecord = float64(bytes) / float64(opts.Records)
	run.AckedPerSec = float64(opts.Records) / acked.Seconds()
	run.StoredPerSec = float64(opts.Records) / stored.Seconds()
	run.Ratio = run.AckedPerSec / run.RecoverPerSec
	run.P50, run.P99 = percentile(lat, 0.5), percentile(lat, 0.99)
	opts.logf("  %.0f records/s acknowledged, %.0f/s in PostgreSQL (bare recovery %.0f/s)", run.AckedPerSec, run.StoredPerSec, run.RecoverPerSec)
	if queries {
		opts.logf("adding %d records of history to vehicle %d…", opts.History, ids[0])
		if err := addHistory(ctx, opts, pool, ins[0].url, devs[0], ids[0], start.Add(time.Second)); err != nil {
			return nil, err
		}
		if err := compareQueries(ctx, opts, pool, data, ins[0].url, owners[0], ids, start, rep); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// addHistory sends opts.History records of one device, one per millisecond from at, and waits until they
// are in PostgreSQL.
func addHistory(ctx context.Context, opts *ClusterOptions, pool *pgxpool.Pool, url string, dev *ecdsa.PrivateKey, vehicle uint64, at time.Time) error {
	subs := make([]telemetry.Submission, opts.History)
	var signErr atomic.Value
	parallel(opts.History, func(i int) {
		t := at.Add(time.Duration(i) * time.Millisecond)
		ev, err := telemetry.NewEvent(crypto.PubkeyToAddress(dev.PublicKey), vehicle, "h"+strconv.Itoa(i), t, sim.TenSignals(t, i))
		if err == nil {
			subs[i], err = telemetry.Sign(ev, dev)
		}
		if err != nil {
			signErr.Store(err)
		}
	})
	if err, ok := signErr.Load().(error); ok {
		return err
	}
	var before int
	if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM record_keys`).Scan(&before); err != nil {
		return err
	}
	var bodies [][]byte
	for i := 0; i < len(subs); i += opts.PerRequest {
		b, err := json.Marshal(subs[i:min(i+opts.PerRequest, len(subs))])
		if err != nil {
			return err
		}
		bodies = append(bodies, postRequest("/v1/events", b))
	}
	if _, _, err := sendAll(ctx, strings.TrimPrefix(url, "http://"), bodies, opts.Clients, func([]byte) error { return nil }); err != nil {
		return err
	}
	for deadline := time.Now().Add(5 * time.Minute); ; {
		var n int
		if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM record_keys`).Scan(&n); err != nil {
			return err
		}
		if n >= before+opts.History {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d history records reached PostgreSQL", n-before, opts.History)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signedRecordBodies signs opts.Records records (round robin over the devices, one per millisecond per
// device from start) and packs them into POST /v1/events requests.
func signedRecordBodies(opts *ClusterOptions, devs []*ecdsa.PrivateKey, ids []uint64, start time.Time) ([][]byte, error) {
	subs := make([]telemetry.Submission, opts.Records)
	var signErr atomic.Value
	parallel(opts.Records, func(i int) {
		v := i % len(devs)
		seq := i / len(devs)
		at := start.Add(time.Duration(seq) * time.Millisecond)
		ev, err := telemetry.NewEvent(crypto.PubkeyToAddress(devs[v].PublicKey), ids[v], strconv.Itoa(seq), at, sim.TenSignals(at, i))
		if err == nil {
			subs[i], err = telemetry.Sign(ev, devs[v])
		}
		if err != nil {
			signErr.Store(err)
		}
	})
	if err, ok := signErr.Load().(error); ok {
		return nil, err
	}
	var bodies [][]byte
	for i := 0; i < len(subs); i += opts.PerRequest {
		b, err := json.Marshal(subs[i:min(i+opts.PerRequest, len(subs))])
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, postRequest("/v1/events", b))
	}
	return bodies, nil
}

// compareQueries replays the cluster's log and records into a single SQLite node and times the same
// GraphQL queries, as the owner of the first vehicle, on both.
func compareQueries(ctx context.Context, opts *ClusterOptions, pool *pgxpool.Pool, data, clusterURL string, owner *ecdsa.PrivateKey, ids []uint64, start time.Time, rep *ClusterReport) error {
	opts.logf("replaying the cluster's log and records into a single SQLite node…")
	dir, err := os.MkdirTemp("", "glovebox-bench-replay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := ReplayOnSQLite(ctx, pool, data, dir); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srvURL := "http://" + ln.Addr().String()
	n, err := node.Open(ctx, node.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler), PublicURL: srvURL})
	if err != nil {
		ln.Close()
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(runCtx); close(done) }()
	srv := &http.Server{Handler: n.API}
	go srv.Serve(ln)
	defer func() {
		srv.Close()
		cancel()
		<-done
		n.Close()
	}()
	if _, err := n.Telemetry.Index(ctx); err != nil {
		return err
	}
	from, to := start.Add(-time.Minute).UTC().Format(time.RFC3339), start.Add(2*time.Minute).UTC().Format(time.RFC3339)
	qs := []struct{ name, q string }{
		{"signalsLatest (10 fields)", fmt.Sprintf(`{ signalsLatest(tokenId: %d) { lastSeen speed { timestamp value } powertrainTransmissionTravelledDistance { value } `+
			`powertrainFuelSystemRelativeLevel { value } powertrainCombustionEngineSpeed { value } powertrainCombustionEngineECT { value } `+
			`exteriorAirTemperature { value } lowVoltageBatteryCurrentVoltage { value } isIgnitionOn { value } currentLocationHeading { value } } }`, ids[0])},
		{"signals, 1 s buckets, AVG/MAX/LAST", fmt.Sprintf(`{ signals(tokenId: %d, interval: "1s", from: %q, to: %q) { timestamp a: speed(agg: AVG) `+
			`m: speed(agg: MAX) l: powertrainTransmissionTravelledDistance(agg: LAST) } }`, ids[0], from, to)},
		{"dataSummary", fmt.Sprintf(`{ dataSummary(tokenId: %d) { numberOfSignals signalDataSummary { name numberOfSignals } } }`, ids[0])},
	}
	for _, q := range qs {
		var lat [2][]time.Duration
		for i, base := range []string{clusterURL, srvURL} {
			token, err := siweSignIn(ctx, base, owner)
			if err != nil {
				return err
			}
			for range opts.Queries {
				t0 := time.Now()
				body, err := postGraphQL(ctx, base, token, q.q)
				if err != nil {
					return err
				}
				lat[i] = append(lat[i], time.Since(t0))
				if strings.Contains(body, `"errors"`) {
					return fmt.Errorf("%s: %.300s", q.name, body)
				}
			}
		}
		rep.Queries = append(rep.Queries, QueryCompare{Name: q.name, PGp50: percentile(lat[0], 0.5), PGp99: percentile(lat[0], 0.99),
			SQp50: percentile(lat[1], 0.5), SQp99: percentile(lat[1], 0.99)})
	}
	return nil
}

// ReplayOnSQLite writes a single node's data directory in dir holding the cluster's log (from PostgreSQL,
// signed with the key in clusterData) and its records; node.Open on dir then replays the identity state
// and serves the same answers.
func ReplayOnSQLite(ctx context.Context, pool *pgxpool.Pool, clusterData, dir string) error {
	for _, f := range []string{"log.key", "log.pub"} {
		b, err := os.ReadFile(filepath.Join(clusterData, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			return err
		}
	}
	skey, err := os.ReadFile(filepath.Join(dir, "log.key"))
	if err != nil {
		return err
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return err
	}
	pl, err := postgres.OpenLog(ctx, pool, signer.Name())
	if err != nil {
		return err
	}
	entries, err := pl.Entries(ctx, 0, pl.Size())
	if err != nil {
		return err
	}
	l, err := tlog.Open(filepath.Join(dir, "log"), signer.Name(), signer)
	if err != nil {
		return err
	}
	for i := 0; i < len(entries); i += 4096 {
		if _, _, err := l.Append(ctx, entries[i:min(i+4096, len(entries))]); err != nil {
			l.Close()
			return err
		}
	}
	if err := l.Close(); err != nil {
		return err
	}
	store, err := sqlite.OpenTelemetry(filepath.Join(dir, "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		return err
	}
	defer store.Close()
	rows, err := pool.Query(ctx, `SELECT event, signature, received, pairing FROM records ORDER BY received, seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var recs []*telemetry.Record
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		_, err := store.Write(ctx, recs)
		recs = recs[:0]
		return err
	}
	for rows.Next() {
		var ev, sig []byte
		var received, pairing int64
		if err := rows.Scan(&ev, &sig, &received, &pairing); err != nil {
			return err
		}
		r, err := telemetry.DefaultCatalog.Parse(&telemetry.Submission{Event: ev, Signature: sig}, math.MaxInt64/2)
		if err != nil {
			return err
		}
		copy(r.Signature[:], sig)
		r.Received, r.Pairing.FromIndex = received, pairing
		if recs = append(recs, r); len(recs) == telemetry.MaxWriteBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}

// Print writes the report as the README's table rows.
func (r *ClusterReport) Print(w io.Writer) {
	fmt.Fprintf(w, "cluster ingest, %d records of 10 signals per run, %d cores, JetStream sync_always %v:\n", r.Records, r.Cores, r.SyncAlways)
	fmt.Fprintf(w, "%-10s %14s %14s %12s %8s %10s %10s %12s\n", "ingesters", "acked/s", "in PG/s", "recovery/s", "ratio", "p50", "p99", "PG B/record")
	for _, x := range r.Runs {
		fmt.Fprintf(w, "%-10d %14.0f %14.0f %12.0f %8.2f %10v %10v %12.0f\n", x.Ingesters, x.AckedPerSec, x.StoredPerSec, x.RecoverPerSec, x.Ratio,
			x.P50.Round(time.Millisecond), x.P99.Round(time.Millisecond), x.BytesPerRecord)
	}
	if len(r.Queries) > 0 {
		fmt.Fprintf(w, "GraphQL latency, same data, the first vehicle with %d records (p50 / p99):\n", r.History)
		for _, q := range r.Queries {
			fmt.Fprintf(w, "  %-36s PostgreSQL %v / %v   SQLite %v / %v\n", q.Name, q.PGp50.Round(10*time.Microsecond), q.PGp99.Round(10*time.Microsecond),
				q.SQp50.Round(10*time.Microsecond), q.SQp99.Round(10*time.Microsecond))
		}
	}
}

// postGraphQL posts one query with a bearer token and returns the answer's body.
func postGraphQL(ctx context.Context, base, token, query string) (string, error) {
	body, _ := json.Marshal(map[string]string{"query": query})
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, b)
	}
	return string(b), err
}
