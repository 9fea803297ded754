package bench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/api/mqtt"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/telemetry"
)

// IngestOptions sizes an ingest benchmark; zero fields take the defaults.
type IngestOptions struct {
	Vehicles        int           // paired vehicles, each with its own device key (default 1,000)
	Records         int           // records to ingest, 10 signals each (default 100,000)
	PerRequest      int           // records per POST /v1/events (default 100)
	Clients         int           // concurrent connections (default 32)
	RecoverDuration time.Duration // each bare recovery measurement (default 3 s)
	// Binary, when set, runs the node as a child process of this glovebox binary (so that its memory
	// can be measured apart from the load generator's); otherwise the node runs in this process.
	Binary string
	// MQTT sends the records over the node's MQTT broker, one connection per device publishing QoS 1
	// (PerRequest records per message), instead of HTTP.
	MQTT     bool
	Progress io.Writer
	// CPUProfile, when set, receives a CPU profile of this process over the ingest phase alone (the
	// node's work with Binary empty, beside the load generator's).
	CPUProfile io.Writer
}

// IngestReport is what an ingest benchmark measured.
type IngestReport struct {
	Cores         int
	Transport     string // HTTP or MQTT
	Vehicles      int
	Records       int
	RecoverPerSec float64
	RecordsPerSec float64 // verified and durable (acknowledged)
	// FloorPerSec is the rate of a server that only reads the same requests from the same clients and
	// recovers one signature per record (HTTP only): the ceiling the round trips and recoveries allow.
	FloorPerSec      float64
	Ratio            float64 // RecordsPerSec / RecoverPerSec: one signature per record
	P50, P99         time.Duration
	IndexedPerSec    float64 // derived signal rows: records indexed per second after the ingest
	LagAtEnd         int64   // records not yet indexed when the last was acknowledged (in-process)
	IndexedTooPerSec float64 // records acknowledged and indexed per second: until the indexer caught up (in-process)
	BytesPerRecord   float64 // telemetry.db (and its WAL) per stored record, indexes included
	PeakRSSBytes     int64   // the node process's peak resident memory (child process only)
	WriterBatchSize  float64 // records per durable write (in-process only)
	// NodeCPU is the node process's CPU time (user and system) during the ingest phase per record, and
	// LoadCPU this process's, the load generator (with the node in it when in-process; NodeCPU is then
	// zero). Indexing left for after the phase is not in them.
	NodeCPU, LoadCPU time.Duration
}

func (o *IngestOptions) defaults() {
	if o.Vehicles == 0 {
		o.Vehicles = 1000
	}
	if o.Records == 0 {
		o.Records = 100000
	}
	if o.PerRequest == 0 {
		o.PerRequest = 100
	}
	if o.Clients == 0 {
		o.Clients = 32
	}
	if o.RecoverDuration == 0 {
		o.RecoverDuration = 3 * time.Second
	}
}

func (o *IngestOptions) logf(format string, args ...any) { logTo(o.Progress, format, args...) }

// benchNode is a node under test, in this process or a child.
type benchNode struct {
	url   string
	mqtt  string // broker address
	dir   string
	pid   int
	debug string // the child process's runtime profiles (serve --debug): http://host:port
	local *node.Node
	stop  func()
}

// unlimited are the flags of `glovebox serve` that lift a public node's limits per caller and per client
// address: a benchmark's load generator is one address (loopback) making the requests of a whole fleet.
var unlimited = []string{"--rate-limit", "0", "--address-rate-limit", "0", "--tx-rate-limit", "0", "--event-rate-limit", "0",
	"--max-conns-per-address", "0", "--max-conns", "0", "--mqtt-max-conns", "0", "--memory-per-address", "0"}

func startBenchNode(ctx context.Context, binary string) (*benchNode, error) {
	dir, err := os.MkdirTemp("", "glovebox-bench-")
	if err != nil {
		return nil, err
	}
	if binary != "" {
		cmd := exec.Command(binary, append([]string{"serve", "--data", dir, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0", "--log-level", "warn", "--debug", "127.0.0.1:0"}, unlimited...)...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(`listening on (http://\S+?)/? `)
		reMQTT := regexp.MustCompile(`MQTT for devices on (\S+)`)
		reDebug := regexp.MustCompile(`Runtime profiles on (http://\S+?)/debug/pprof/`)
		bn := &benchNode{dir: dir, pid: cmd.Process.Pid, stop: func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
			os.RemoveAll(dir)
		}}
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				bn.url = m[1]
			}
			if m := reDebug.FindStringSubmatch(sc.Text()); m != nil {
				bn.debug = m[1]
			}
			if m := reMQTT.FindStringSubmatch(sc.Text()); m != nil {
				bn.mqtt = m[1]
				go io.Copy(io.Discard, out)
				return bn, nil
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("the node exited before listening")
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Open(ctx, node.Config{DataDir: dir, Logger: quiet})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(runCtx); close(done) }()
	srv := &http.Server{Handler: n.API}
	go srv.Serve(ln)
	broker, err := mqtt.New(mqtt.Config{Addr: "127.0.0.1:0", Ingester: n.Ingester, State: n.Sequencer.Read, Origin: n.Log.Origin(), Logger: quiet})
	if err != nil {
		srv.Close()
		cancel()
		<-done
		n.Close()
		return nil, err
	}
	go broker.Serve()
	return &benchNode{url: "http://" + ln.Addr().String(), mqtt: broker.Addr(), dir: dir, local: n, stop: func() {
		srv.Close()
		broker.Close()
		cancel()
		<-done
		n.Close()
		os.RemoveAll(dir)
	}}, nil
}

// fleet registers vehicles with paired hardware devices through signed batches and returns the device keys.
func fleet(ctx context.Context, c *client.Client, vehicles int) ([]*ecdsa.PrivateKey, []uint64, error) {
	devs, ids, _, err := fleetWithOwners(ctx, c, vehicles)
	return devs, ids, err
}

// fleetWithOwners is fleet, also returning the 16 owners (vehicle i belongs to owners[i%16]).
func fleetWithOwners(ctx context.Context, c *client.Client, vehicles int) ([]*ecdsa.PrivateKey, []uint64, []*ecdsa.PrivateKey, error) {
	d, err := c.Domain(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	owners := make([]*ecdsa.PrivateKey, 16)
	for i := range owners {
		owners[i], _ = crypto.GenerateKey()
	}
	devs := make([]*ecdsa.PrivateKey, vehicles)
	ids := make([]uint64, vehicles)
	for i := range devs {
		devs[i], _ = crypto.GenerateKey()
	}
	submit := func(build func(i int) *ledger.Tx, result func(i int, rc *api.Receipt)) error {
		for start := 0; start < vehicles; start += api.MaxBatch {
			end := min(start+api.MaxBatch, vehicles)
			txs := make([]*ledger.Tx, end-start)
			parallel(len(txs), func(j int) { txs[j] = build(start + j) })
			items, err := c.SubmitBatch(ctx, txs)
			if err != nil {
				return err
			}
			for j, it := range items {
				if it.Error != nil {
					return fmt.Errorf("setup refused: %s: %s", it.Error.Code, it.Error.Message)
				}
				if result != nil {
					result(start+j, it.Receipt)
				}
			}
		}
		return nil
	}
	sign := func(tx *ledger.Tx, keys ...*ecdsa.PrivateKey) *ledger.Tx {
		client.Prepare(tx, time.Hour)
		for _, k := range keys {
			d.Sign(tx, k)
		}
		return tx
	}
	addr := func(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }
	if err := submit(func(i int) *ledger.Tx {
		o := owners[i%len(owners)]
		return sign(&ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: addr(o), Make: "Bench", Model: "Fleet", Year: 2024}, o)
	}, func(i int, rc *api.Receipt) { ids[i] = rc.Result.VehicleID }); err != nil {
		return nil, nil, nil, err
	}
	if err := submit(func(i int) *ledger.Tx {
		return sign(&ledger.Tx{Type: ledger.TypeRegisterDevice, Device: addr(devs[i]), Kind: ledger.KindHardware}, devs[i])
	}, nil); err != nil {
		return nil, nil, nil, err
	}
	if err := submit(func(i int) *ledger.Tx {
		tx := &ledger.Tx{Type: ledger.TypePairDevice, Device: addr(devs[i])}
		tx.VehicleID.SetUint64(ids[i])
		return sign(tx, owners[i%len(owners)], devs[i])
	}, nil); err != nil {
		return nil, nil, nil, err
	}
	return devs, ids, owners, nil
}

// parallel runs f(0..n-1) on all cores.
func parallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// Ingest runs a node, pairs a fleet, and measures verified, durable records per second over HTTP batches.
func Ingest(ctx context.Context, opts IngestOptions) (*IngestReport, error) {
	opts.defaults()
	rep := &IngestReport{Cores: runtime.NumCPU(), Vehicles: opts.Vehicles, Records: opts.Records}
	bn, err := startBenchNode(ctx, opts.Binary)
	if err != nil {
		return nil, err
	}
	defer bn.stop()
	c := client.New(bn.url)
	opts.logf("registering and pairing %d vehicles…", opts.Vehicles)
	devs, ids, err := fleet(ctx, c, opts.Vehicles)
	if err != nil {
		return nil, err
	}
	opts.logf("signing %d records of 10 signals…", opts.Records)
	start := time.Now().Add(time.Second) // after the pairings
	subs := make([]telemetry.Submission, opts.Records)
	var signErr atomic.Value
	parallel(opts.Records, func(i int) {
		v := i % opts.Vehicles
		seq := i / opts.Vehicles
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
	// For MQTT each device publishes its own records: group them per device, in messages of PerRequest.
	mqttBatches := make([][][]telemetry.Submission, opts.Vehicles)
	if opts.MQTT {
		per := make([][]telemetry.Submission, opts.Vehicles)
		for i, sub := range subs {
			per[i%opts.Vehicles] = append(per[i%opts.Vehicles], sub)
		}
		for v, list := range per {
			for i := 0; i < len(list); i += opts.PerRequest {
				mqttBatches[v] = append(mqttBatches[v], list[i:min(i+opts.PerRequest, len(list))])
			}
		}
	}
	var bodies [][]byte
	for i := 0; i < len(subs) && !opts.MQTT; i += opts.PerRequest {
		b, err := json.Marshal(subs[i:min(i+opts.PerRequest, len(subs))])
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, postRequest("/v1/events", b))
	}
	for time.Now().Before(start) {
		time.Sleep(10 * time.Millisecond)
	}
	opts.logf("measuring bare signature recovery on %d cores…", rep.Cores)
	rep.RecoverPerSec = RecoverRate(opts.RecoverDuration)
	if !opts.MQTT {
		opts.logf("the floor: a server that only recovers the signatures…")
		if rep.FloorPerSec, err = floorRate(ctx, bodies, opts.PerRequest, opts.Clients); err != nil {
			return nil, err
		}
	}
	var lat []time.Duration
	var dur time.Duration
	self0, node0 := cpuSeconds(os.Getpid()), cpuSeconds(bn.pid)
	if opts.CPUProfile != nil {
		if err := pprof.StartCPUProfile(opts.CPUProfile); err != nil {
			return nil, fmt.Errorf("couldn't start the CPU profile: %w", err)
		}
	}
	if opts.MQTT {
		rep.Transport = "MQTT"
		opts.logf("ingesting %d records over MQTT, %d per message, one connection per device…", opts.Records, opts.PerRequest)
		lat, dur, err = publishAll(ctx, bn, devs, mqttBatches, opts.Clients)
	} else {
		rep.Transport = "HTTP"
		opts.logf("ingesting %d records, %d per request, from %d connections…", opts.Records, opts.PerRequest, opts.Clients)
		addr := strings.TrimPrefix(bn.url, "http://")
		lat, dur, err = sendAll(ctx, addr, bodies, opts.Clients, func(body []byte) error {
			if strings.Count(string(body), `"status":"accepted"`) != strings.Count(string(body), `"status":`) {
				return fmt.Errorf("a record was not accepted: %.300s", body)
			}
			return nil
		})
	}
	if opts.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return nil, err
	}
	rep.LoadCPU = perItem(cpuSeconds(os.Getpid())-self0, opts.Records)
	if bn.pid != 0 {
		rep.NodeCPU = perItem(cpuSeconds(bn.pid)-node0, opts.Records)
	}
	if opts.MQTT {
		// A PUBACK acknowledges a message; check that every record in them was accepted and stored.
		ts, err := sqlite.OpenTelemetry(filepath.Join(bn.dir, "telemetry.db"), telemetry.DefaultCatalog)
		if err != nil {
			return nil, err
		}
		var stored int
		err = ts.DB().QueryRowContext(ctx, `SELECT count(*) FROM records`).Scan(&stored)
		ts.Close()
		if err != nil || stored != opts.Records {
			return nil, fmt.Errorf("%d of %d records stored over MQTT (%v)", stored, opts.Records, err)
		}
	}
	rep.RecordsPerSec = float64(opts.Records) / dur.Seconds()
	rep.Ratio = rep.RecordsPerSec / rep.RecoverPerSec
	rep.P50, rep.P99 = percentile(lat, 0.5), percentile(lat, 0.99)
	if bn.pid != 0 {
		rep.PeakRSSBytes = peakRSS(bn.pid)
	}
	if bn.local != nil {
		st := bn.local.Ingester.Stats()
		rep.WriterBatchSize = float64(st.Records) / float64(max(1, st.Batches))
		opts.logf("indexing what is left…")
		t0 := time.Now()
		lag, _ := bn.local.Telemetry.Lag(ctx)
		if _, err := bn.local.Telemetry.Index(ctx); err != nil {
			return nil, err
		}
		if lag > 0 {
			rep.IndexedPerSec = float64(lag) / time.Since(t0).Seconds()
		}
		// An indexer that falls behind does part of its work after the records/s above were measured.
		rep.LagAtEnd = lag
		rep.IndexedTooPerSec = float64(opts.Records) / (dur + time.Since(t0)).Seconds()
		for _, db := range []*sql.DB{bn.local.Telemetry.DB(), bn.local.Telemetry.SignalsDB()} {
			if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				return nil, err
			}
		}
	} else {
		time.Sleep(2 * time.Second) // let the child's indexer catch up before the sizes are read
	}
	var size int64
	for _, f := range []string{"telemetry.db", "telemetry.db-wal", "signals.db", "signals.db-wal"} {
		if st, err := os.Stat(filepath.Join(bn.dir, f)); err == nil {
			size += st.Size()
		}
	}
	rep.BytesPerRecord = float64(size) / float64(opts.Records)
	return rep, nil
}

// sendAll posts prebuilt requests from clients connections; check inspects each answer's body.
func sendAll(ctx context.Context, addr string, reqs [][]byte, clients int, check func([]byte) error) ([]time.Duration, time.Duration, error) {
	var next atomic.Int64
	lat := make([]time.Duration, len(reqs))
	errs := make(chan error, clients)
	t0 := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := dialRaw(addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			var buf []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) || ctx.Err() != nil {
					return
				}
				s := time.Now()
				status, body, err := conn.do(reqs[i], buf)
				lat[i] = time.Since(s)
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("HTTP %d: %.300s", status, body)
				}
				if err == nil {
					err = check(body)
				}
				if err != nil {
					errs <- err
					return
				}
				buf = body
			}
		}()
	}
	wg.Wait()
	dur := time.Since(t0)
	close(errs)
	if err := <-errs; err != nil {
		return nil, 0, err
	}
	return lat, dur, nil
}

// peakRSS reads a process's peak resident set (VmHWM) from /proc.
func peakRSS(pid int) int64 { return procMemory(pid, "VmHWM:") }

// procMemory returns the memory figure key (as "VmRSS:") of /proc/PID/status in bytes; 0 if unknown.
func procMemory(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// perItem divides CPU seconds among n items.
func perItem(seconds float64, n int) time.Duration {
	return time.Duration(seconds / float64(max(1, n)) * float64(time.Second))
}

// cpuSeconds returns the CPU time (user and system) process pid has used so far; 0 if unknown.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command (which may hold spaces) in parentheses; utime and stime are the 14th and
	// 15th of the line, in clock ticks (USER_HZ, 100 on Linux).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// Print writes the report as the README's table rows.
func (r *IngestReport) Print(w io.Writer) {
	fmt.Fprintf(w, "cores: %d; bare signature recovery (all cores): %.0f/s\n", r.Cores, r.RecoverPerSec)
	fmt.Fprintf(w, "| measure | value |\n|---|---|\n")
	fmt.Fprintf(w, "| verified, durable records/s over %s (%d records of 10 signals, %d vehicles) | %.0f/s, ratio %.2f (p50 %s, p99 %s per request) |\n",
		r.Transport, r.Records, r.Vehicles, r.RecordsPerSec, r.Ratio, r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond))
	if r.FloorPerSec > 0 {
		fmt.Fprintf(w, "| the floor: the same requests to a server that only recovers the signatures | %.0f/s, ratio %.2f |\n", r.FloorPerSec, r.FloorPerSec/r.RecoverPerSec)
	}
	if r.WriterBatchSize > 0 {
		fmt.Fprintf(w, "| records per durable write | %.0f |\n", r.WriterBatchSize)
	}
	if r.IndexedTooPerSec > 0 {
		fmt.Fprintf(w, "| records not yet indexed when the last was acknowledged | %d |\n", r.LagAtEnd)
		fmt.Fprintf(w, "| acknowledged and indexed, records/s (until the indexer caught up) | %.0f/s, ratio %.2f |\n",
			r.IndexedTooPerSec, r.IndexedTooPerSec/r.RecoverPerSec)
	}
	if r.IndexedPerSec > 0 {
		fmt.Fprintf(w, "| indexing (signal and latest rows), records/s | %.0f/s |\n", r.IndexedPerSec)
	}
	recovery := time.Duration(float64(r.Cores) * float64(time.Second) / r.RecoverPerSec).Round(100 * time.Nanosecond)
	if r.NodeCPU > 0 {
		fmt.Fprintf(w, "| CPU per record during the ingest: node / load generator / a bare recovery | %s / %s / %s |\n",
			r.NodeCPU.Round(100*time.Nanosecond), r.LoadCPU.Round(100*time.Nanosecond), recovery)
	} else {
		fmt.Fprintf(w, "| CPU per record during the ingest: node and load generator / a bare recovery | %s / %s |\n",
			r.LoadCPU.Round(100*time.Nanosecond), recovery)
	}
	fmt.Fprintf(w, "| bytes on disk per record (raw + indexes) | %.0f B |\n", r.BytesPerRecord)
	if r.PeakRSSBytes > 0 {
		fmt.Fprintf(w, "| node peak RSS | %.0f MB |\n", float64(r.PeakRSSBytes)/1e6)
	}
}

// publishAll publishes every device's messages over MQTT (QoS 1, waiting for each PUBACK, which the node
// sends once the records are durable) from up to clients devices at a time, then checks every record was
// stored.
func publishAll(ctx context.Context, bn *benchNode, devs []*ecdsa.PrivateKey, batches [][][]telemetry.Submission, clients int) ([]time.Duration, time.Duration, error) {
	info, err := client.New(bn.url).Node(ctx)
	if err != nil {
		return nil, 0, err
	}
	pubs := make([]*mqtt.Publisher, len(devs))
	for i, k := range devs {
		if pubs[i], err = mqtt.NewPublisher(mqtt.PublisherOptions{Addr: bn.mqtt, Key: k, Origin: info.Origin}); err != nil {
			return nil, 0, err
		}
		defer pubs[i].Close()
	}
	// Connect every device before the clock starts.
	var connErr atomic.Value
	parallel(len(pubs), func(i int) {
		if err := pubs[i].Connect(ctx); err != nil {
			connErr.Store(err)
		}
	})
	if err, ok := connErr.Load().(error); ok {
		return nil, 0, err
	}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	errs := make(chan error, clients)
	t0 := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v := int(next.Add(1) - 1)
				if v >= len(pubs) {
					return
				}
				for _, b := range batches[v] {
					s := time.Now()
					if err := pubs[v].Publish(ctx, b); err != nil {
						errs <- err
						return
					}
					d := time.Since(s)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	dur := time.Since(t0)
	close(errs)
	if err := <-errs; err != nil {
		return nil, 0, err
	}
	return lat, dur, nil
}
