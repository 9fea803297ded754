// Package bench measures a real node on this machine: durable transactions per second over HTTP on
// loopback, as a ratio of the bare signature-recovery rate measured in the same run, replay-verify time and
// tile serving throughput. `glovebox bench ledger` prints its report; the Go benchmarks call it too.
//
// It owns the benchmarks of the performance table and may import any package it measures (node, api,
// the stores, sim); nothing but cmd/glovebox may import it.
package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/tlog"
)

// logTo writes one progress line to w, if there is a w.
func logTo(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// RecoverRate measures bare secp256k1 public-key recoveries (go-ethereum crypto.Ecrecover, the same call
// the ledger makes) per second on all cores, one goroutine a core, for about d: the denominator of every
// ratio the benchmarks report. (More goroutines than cores get 7–12 % more out of two cores, since
// one of them runs while another returns from C and waits for the scheduler; BenchmarkRecoverWorkers.)
func RecoverRate(d time.Duration) float64 { return recoverRate(d, runtime.GOMAXPROCS(0)) }

// recoverRate is RecoverRate with workers goroutines.
func recoverRate(d time.Duration, workers int) float64 {
	hashes, sigs := recoverySet()
	var total atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			for i := 0; time.Now().Before(deadline); i++ {
				for j := 0; j < 64; j++ {
					if _, err := crypto.Ecrecover(hashes[(i+j)%len(hashes)], sigs[(i+j)%len(hashes)]); err != nil {
						panic(err)
					}
				}
				n += 64
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds()
}

// recoverySet returns 64 message hashes and their signatures: what RecoverRate and the floor servers
// recover, cycling through them (the time of one recovery varies a little with the signature).
func recoverySet() (hashes, sigs [][]byte) {
	key, _ := crypto.GenerateKey()
	for i := range 64 {
		h := crypto.Keccak256([]byte{byte(i)})
		sig, _ := crypto.Sign(h, key)
		hashes, sigs = append(hashes, h), append(sigs, sig)
	}
	return hashes, sigs
}

// LedgerOptions sizes a ledger benchmark; zero fields take the defaults.
type LedgerOptions struct {
	Clients       int           // concurrent submitters, one connection each (default 128)
	SingleTxs     int           // transactions submitted one per request (default 60,000)
	BatchTxs      int           // transactions submitted in batches (default 150,000)
	BatchSize     int           // transactions per batch request (default 1,000)
	ReplayEntries int           // entries to replay-verify (default 100,000; at most what was written)
	TileDuration  time.Duration // how long to measure tile serving (default 3 s)
	// RecoverDuration is how long each bare recovery measurement runs (default 3 s).
	RecoverDuration time.Duration
	Progress        io.Writer // progress lines; nil for none
	// Profile, when set, is called at the start of the submissions of ProfilePhase ("single" or
	// "batch") and its result when they end: a CPU profile of that phase alone.
	Profile      func() (stop func())
	ProfilePhase string
}

// LedgerReport is what a ledger benchmark measured.
type LedgerReport struct {
	Cores               int
	RecoverPerSec       float64 // bare recoveries/s on all cores, measured before the single phase
	RecoverPerSecBatch  float64 // … before the batch phase
	RecoverPerSecReplay float64 // … after the replay
	SingleTxs           int
	SingleTxPerSec      float64
	SingleRatio         float64 // SingleTxPerSec / RecoverPerSec (one signature per transaction)
	SingleP50           time.Duration
	SingleP99           time.Duration
	// ReadP50, ReadP99 and ReadMax are how long a reader of the ledger state (Sequencer.Read, as every
	// permission check, pairing check and account lookup does) waited during the single phase, probed
	// ReadProbesPerSec times a second.
	ReadP50, ReadP99, ReadMax time.Duration
	// SingleFloorPerSec and BatchFloorPerSec are the rates of a server that only reads each request and
	// recovers one signature per transaction in it — nothing parsed, checked or stored — from the same
	// clients with the same requests: what the HTTP round trips and the recoveries alone allow on these
	// cores, the ceiling of any node.
	SingleFloorPerSec float64
	BatchFloorPerSec  float64
	BatchTxs          int
	BatchTxPerSec     float64
	BatchRatio        float64
	// SingleCPU and BatchCPU are the CPU time (user and system) of the whole process — node and load
	// generator — during each phase, per transaction: steadier than the rates on a shared machine, and the
	// figure a change to the path must lower. A bare recovery costs Cores / RecoverPerSec of it.
	SingleCPU, BatchCPU time.Duration
	ReplayEntries       int64
	ReplayDuration      time.Duration
	TilesPerSec         float64
	TileMBPerSec        float64
	BytesPerEntry       float64
}

func (o *LedgerOptions) defaults() {
	if o.Clients == 0 {
		o.Clients = 128
	}
	if o.SingleTxs == 0 {
		o.SingleTxs = 60000
	}
	if o.BatchTxs == 0 {
		o.BatchTxs = 150000
	}
	if o.BatchSize == 0 {
		o.BatchSize = 1000
	}
	if o.ReplayEntries == 0 {
		o.ReplayEntries = 100000
	}
	if o.RecoverDuration == 0 {
		o.RecoverDuration = 3 * time.Second
	}
	if o.TileDuration == 0 {
		o.TileDuration = 3 * time.Second
	}
}

// profile starts the profile of phase if it is the one asked for, and returns what stops it.
func (o *LedgerOptions) profile(phase string) (stop func()) {
	if o.Profile == nil || o.ProfilePhase != phase {
		return func() {}
	}
	return o.Profile()
}

func (o *LedgerOptions) logf(format string, args ...any) { logTo(o.Progress, format, args...) }

// Ledger runs a real node in a temporary directory, serves it over loopback TCP and measures it.
func Ledger(ctx context.Context, opts LedgerOptions) (*LedgerReport, error) {
	opts.defaults()
	rep := &LedgerReport{Cores: runtime.GOMAXPROCS(0)}
	dir, err := os.MkdirTemp("", "glovebox-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Open(ctx, node.Config{DataDir: dir, Logger: quiet})
	if err != nil {
		return nil, err
	}
	defer n.Close()
	runCtx, stop := context.WithCancel(ctx)
	seqDone := make(chan error, 1)
	go func() { seqDone <- n.Run(runCtx) }()
	defer func() { stop(); <-seqDone }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: n.API}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: opts.Clients * 2, MaxConnsPerHost: opts.Clients * 2}}

	opts.logf("signing %d transactions…", opts.SingleTxs+opts.BatchTxs)
	d := n.Sequencer.Domain()
	single, err := signedBodies(d, opts.SingleTxs, 1)
	if err != nil {
		return nil, err
	}
	batches, err := signedBodies(d, opts.BatchTxs, opts.BatchSize)
	if err != nil {
		return nil, err
	}

	// The bare rate drifts on a shared machine: each phase is compared with a measurement taken just before it.
	opts.logf("measuring bare signature recovery on %d cores…", rep.Cores)
	rep.RecoverPerSec = RecoverRate(opts.RecoverDuration)

	opts.logf("the floor: a server that only recovers the signatures, one per request…")
	if rep.SingleFloorPerSec, err = floorRate(ctx, postRequests("/v1/transactions", single), 1, opts.Clients); err != nil {
		return nil, err
	}

	opts.logf("submitting %d transactions one per request from %d clients…", opts.SingleTxs, opts.Clients)
	cpu0 := cpuSeconds(os.Getpid())
	endProfile := opts.profile("single")
	probeDone := make(chan []time.Duration)
	probeStop := make(chan struct{})
	go func() { probeDone <- probeReads(n.Sequencer, probeStop) }()
	lat, dur, err := submitAll(ctx, ln.Addr().String(), single, opts.Clients)
	close(probeStop)
	reads := <-probeDone
	endProfile()
	if err != nil {
		return nil, err
	}
	rep.SingleCPU = perItem(cpuSeconds(os.Getpid())-cpu0, opts.SingleTxs)
	rep.SingleTxs = opts.SingleTxs
	rep.SingleTxPerSec = float64(opts.SingleTxs) / dur.Seconds()
	rep.SingleRatio = rep.SingleTxPerSec / rep.RecoverPerSec
	rep.RecoverPerSecBatch = RecoverRate(opts.RecoverDuration)
	rep.SingleP50, rep.SingleP99 = percentile(lat, 0.50), percentile(lat, 0.99)
	rep.ReadP50, rep.ReadP99, rep.ReadMax = percentile(reads, 0.50), percentile(reads, 0.99), percentile(reads, 1)
	st := n.Sequencer.Stats()
	opts.logf("  %d group commits, %.1f entries each, %s per append", st.Batches, float64(st.Entries)/float64(st.Batches), st.AppendIn/time.Duration(max(1, st.Batches)))

	opts.logf("the floor: a server that only recovers the signatures, in batches of %d…", opts.BatchSize)
	if rep.BatchFloorPerSec, err = floorRate(ctx, postRequests("/v1/transactions", batches), opts.BatchSize, min(opts.Clients, max(1, len(batches)))); err != nil {
		return nil, err
	}
	opts.logf("submitting %d transactions in batches of %d…", opts.BatchTxs, opts.BatchSize)
	cpu0 = cpuSeconds(os.Getpid())
	endProfile = opts.profile("batch")
	_, dur, err = submitAll(ctx, ln.Addr().String(), batches, min(opts.Clients, max(1, len(batches))))
	endProfile()
	if err != nil {
		return nil, err
	}
	rep.BatchCPU = perItem(cpuSeconds(os.Getpid())-cpu0, opts.BatchTxs)
	rep.BatchTxs = opts.BatchTxs
	rep.BatchTxPerSec = float64(opts.BatchTxs) / dur.Seconds()
	rep.BatchRatio = rep.BatchTxPerSec / rep.RecoverPerSecBatch

	size, _ := n.Log.Latest()
	if size > 0 {
		// The entries file holds zeros written ahead of the data while the log is open: count the entries.
		logBytes, err := entryBytes(n.Log, size)
		if err != nil {
			return nil, err
		}
		rep.BytesPerEntry = float64(logBytes) / float64(size)
	}
	rep.ReplayEntries = min(int64(opts.ReplayEntries), size)
	opts.logf("replay-verifying %d entries…", rep.ReplayEntries)
	start := time.Now()
	if err := ledger.Replay(ctx, d, ledger.NewState(), rep.ReplayEntries, n.Entries, nil); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	rep.ReplayDuration = time.Since(start)
	rep.RecoverPerSecReplay = RecoverRate(opts.RecoverDuration)

	opts.logf("serving tiles for %s…", opts.TileDuration)
	rep.TilesPerSec, rep.TileMBPerSec, err = serveTiles(ctx, hc, base, size, opts.Clients, opts.TileDuration)
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// ReadProbesPerSec is how often the ledger benchmark reads the state during the single phase.
const ReadProbesPerSec = 200

// probeReads reads q's state ReadProbesPerSec times a second until stop is closed, and returns how long
// each read took, waiting for the lock included.
func probeReads(q *ledger.Sequencer, stop <-chan struct{}) []time.Duration {
	tick := time.NewTicker(time.Second / ReadProbesPerSec)
	defer tick.Stop()
	var out []time.Duration
	for {
		select {
		case <-stop:
			return out
		case <-tick.C:
		}
		t0 := time.Now()
		q.Read(func(st *ledger.State) { st.Vehicle(1) })
		out = append(out, time.Since(t0))
	}
}

// entryBytes returns the bytes the first size entries of l take in its entries file, with their length
// prefixes.
func entryBytes(l *tlog.Log, size int64) (int64, error) {
	var total int64
	for from := int64(0); from < size; from += 4096 {
		es, err := l.Entries(from, min(4096, size-from))
		if err != nil {
			return 0, fmt.Errorf("reading entries: %w", err)
		}
		for _, e := range es {
			total += 2 + int64(len(e))
		}
	}
	return total, nil
}

// floorRate sends reqs (whole HTTP requests of per signed items each: transactions or records) to a
// server that reads each request and recovers per signatures (recoverySet's, as RecoverRate does;
// nothing is parsed), answering a receipt-sized body, and returns the items/s the clients reach: the
// cost of the round trips and recoveries alone on the machine the node runs on.
func floorRate(ctx context.Context, reqs [][]byte, per, clients int) (float64, error) {
	hashes, sigs := recoverySet()
	var next atomic.Int64
	receipt := []byte(`{"index":123456,"hash":"0x` + strings.Repeat("ab", 32) + `","size":123457}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for range per {
			i := int(next.Add(1)) % len(hashes)
			if _, err := crypto.Ecrecover(hashes[i], sigs[i]); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(receipt)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	_, dur, err := sendAll(ctx, ln.Addr().String(), reqs, clients, func([]byte) error { return nil })
	if err != nil {
		return 0, fmt.Errorf("the floor server: %w", err)
	}
	return float64(len(reqs)*per) / dur.Seconds(), nil
}

// signedBodies signs count RegisterVehicle transactions from a pool of owner keys, in parallel, and
// encodes them as request bodies of per transactions each (per == 1: a single object).
func signedBodies(d *ledger.Domain, count, per int) ([][]byte, error) {
	keys := make([]*ecdsa.PrivateKey, 256)
	for i := range keys {
		keys[i], _ = crypto.GenerateKey()
	}
	txs := make([]*ledger.Tx, count)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < count; i += workers {
				key := keys[i%len(keys)]
				tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: crypto.PubkeyToAddress(key.PublicKey),
					Make: "Benchmark", Model: fmt.Sprintf("Model %d", i%97), Year: 2024}
				client.Prepare(tx, client.DefaultTTL)
				if err := d.Sign(tx, key); err != nil {
					firstErr.Store(err)
					return
				}
				txs[i] = tx
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return nil, err
	}
	var bodies [][]byte
	for i := 0; i < count; i += per {
		var v any = txs[i]
		if per > 1 {
			v = txs[i:min(i+per, count)]
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, b)
	}
	return bodies, nil
}

// submitAll posts every transaction body from clients connections and checks that every transaction
// was accepted.
func submitAll(ctx context.Context, addr string, bodies [][]byte, clients int) ([]time.Duration, time.Duration, error) {
	return sendAll(ctx, addr, postRequests("/v1/transactions", bodies), clients, func(body []byte) error {
		if bytes.Contains(body, []byte(`"error":`)) {
			return fmt.Errorf("refused: %.300s", body)
		}
		return nil
	})
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// serveTiles fetches full level-0 hash tiles and entry bundles from clients goroutines for d.
func serveTiles(ctx context.Context, hc *http.Client, base string, size int64, clients int, d time.Duration) (perSec, mbPerSec float64, err error) {
	full := size / 256
	if full == 0 {
		return 0, 0, fmt.Errorf("the log has no full tile")
	}
	var count, bytesRead atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(c); time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				t := tlogTile(i%full, i%2 == 0)
				resp, err := hc.Get(base + "/log/" + t)
				if err != nil {
					failed.Store(err)
					return
				}
				nb, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Store(fmt.Errorf("GET %s: HTTP %d", t, resp.StatusCode))
					return
				}
				count.Add(1)
				bytesRead.Add(nb)
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return 0, 0, err
	}
	secs := time.Since(start).Seconds()
	return float64(count.Load()) / secs, float64(bytesRead.Load()) / secs / 1e6, nil
}

// tlogTile names the n-th full level-0 hash tile, or entry bundle.
func tlogTile(n int64, entries bool) string {
	l := 0
	if entries {
		l = -1
	}
	return tlog.TilePath(tileOf(l, n))
}

func tileOf(level int, n int64) xtlog.Tile { return xtlog.Tile{H: 8, L: level, N: n, W: 256} }

// Print writes the report as the README's performance table rows.
func (r *LedgerReport) Print(w io.Writer) {
	fmt.Fprintf(w, "cores: %d\n", r.Cores)
	fmt.Fprintf(w, "bare signature recovery (all cores): %.0f/s before the single phase, %.0f/s before the batch phase, %.0f/s after the replay\n",
		r.RecoverPerSec, r.RecoverPerSecBatch, r.RecoverPerSecReplay)
	fmt.Fprintf(w, "| measure | value | ratio to recovery |\n|---|---|---|\n")
	fmt.Fprintf(w, "| durable transactions/s, one per request (%d txs) | %.0f/s (p50 %s, p99 %s) | %.2f |\n",
		r.SingleTxs, r.SingleTxPerSec, r.SingleP50.Round(10*time.Microsecond), r.SingleP99.Round(10*time.Microsecond), r.SingleRatio)
	fmt.Fprintf(w, "| a read of the ledger state meanwhile (%d/s): p50 / p99 / max | %s / %s / %s | |\n", ReadProbesPerSec,
		r.ReadP50.Round(time.Microsecond), r.ReadP99.Round(time.Microsecond), r.ReadMax.Round(time.Microsecond))
	fmt.Fprintf(w, "| the floor, one per request: HTTP + one recovery, nothing stored | %.0f/s | %.2f |\n", r.SingleFloorPerSec, r.SingleFloorPerSec/r.RecoverPerSec)
	fmt.Fprintf(w, "| durable transactions/s, batches (%d txs) | %.0f/s | %.2f |\n", r.BatchTxs, r.BatchTxPerSec, r.BatchRatio)
	fmt.Fprintf(w, "| the floor, batches: HTTP + recoveries, nothing stored | %.0f/s | %.2f |\n", r.BatchFloorPerSec, r.BatchFloorPerSec/r.RecoverPerSecBatch)
	fmt.Fprintf(w, "| CPU per transaction (node and load generator), one per request / batches / a bare recovery | %s / %s / %s | |\n",
		r.SingleCPU.Round(100*time.Nanosecond), r.BatchCPU.Round(100*time.Nanosecond),
		(time.Duration(float64(r.Cores) * float64(time.Second) / r.RecoverPerSec)).Round(100*time.Nanosecond))
	fmt.Fprintf(w, "| replay-verify %d entries | %s (%.0f entries/s) | %.2f |\n", r.ReplayEntries, r.ReplayDuration.Round(time.Millisecond),
		float64(r.ReplayEntries)/r.ReplayDuration.Seconds(), float64(r.ReplayEntries)/r.ReplayDuration.Seconds()/r.RecoverPerSecReplay)
	fmt.Fprintf(w, "| /log/ tile serving (full tiles and bundles) | %.0f tiles/s, %.0f MB/s | |\n", r.TilesPerSec, r.TileMBPerSec)
	fmt.Fprintf(w, "| log bytes per entry | %.0f B | |\n", r.BytesPerEntry)
}
