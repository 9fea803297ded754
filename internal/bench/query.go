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
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/telemetry"
)

// QueryOptions sizes a query benchmark; zero fields take the defaults.
type QueryOptions struct {
	Vehicles   int           // vehicles of one owner, each with a paired device (default 25)
	History    time.Duration // telemetry per vehicle, ending about a minute before the measurements (default 2 h)
	Interval   time.Duration // between two records of a vehicle, 10 signals each (default 1 s)
	PerRequest int           // records per POST /v1/events while loading (default 1,000)

	Clients       []int         // concurrent clients of the fixed-rate runs, one connection each (default 1, 50, 200)
	PerClientRate float64       // requests per second each client sends, on a fixed schedule (default 10)
	StepDuration  time.Duration // each run at one rate (default 3 s)

	// The search for the highest rate with p99 under TargetP99: RampClients connections, starting at
	// RampStart requests/s and multiplying by RampFactor until a run fails (p99 ≥ TargetP99, an error, or
	// under 95% of the rate achieved), then bisecting RampRefine times. MaxRate ends the search.
	TargetP99   time.Duration // default 50 ms
	RampClients int           // default 200
	RampStart   float64       // default 2,000/s
	RampFactor  float64       // default 1.5
	RampRefine  int           // default 2
	MaxRate     float64       // default 200,000/s

	StoreDuration time.Duration // the bare store query, measured for this long on one goroutine (default 2 s)

	// The long history, for the signals (history) query: HistoryVehicles of the vehicles (default 5;
	// negative: none) measure 10 signals every HistoryInterval (default 1 s) over HistoryDays (default
	// 30) ending where the short history starts, HistoryPerRecord samples (default 30) to a record, as a
	// dongle that uploads every half minute does; signed by their devices and written through the
	// node's Ingester (which verifies each signature and pairing) in batches of 1,000, then indexed and
	// rolled up. A signals query over those days in SignalsBucket buckets (default 5 minutes) with three
	// aggregations of two signals is then measured SignalsRuns times (default 20) over HTTP, one after
	// the other, and the same SQL as many times on the bare store; SignalsTarget is its goal (default 50 ms).
	HistoryVehicles  int
	HistoryDays      int
	HistoryInterval  time.Duration
	HistoryPerRecord int
	// HistoryDirect writes the long history straight into the store (telemetry.Store.Write) instead of
	// through the Ingester: the records are signed by the paired devices and stored with their pairing
	// as ingest would store them (anyone can verify them later, rawRecords hands out the proofs), but the
	// node does not recover each signature again while loading. For data sets too large to verify in a
	// benchmark run (25 vehicles × 30 days at 1 Hz: 2.16 M records of 300 values).
	HistoryDirect bool
	// HistorySignals, if set, makes the samples of the long history instead of sim.TenSignals (the i-th
	// sample of a vehicle, at t).
	HistorySignals func(t time.Time, i int) []telemetry.EventSignal
	SignalsBucket  time.Duration
	SignalsRuns    int
	SignalsTarget  time.Duration
	SignalsProfile io.Writer // if set, a CPU profile of the node during the HTTP signals queries
	LatestProfile  io.Writer // if set, a CPU profile of the fixed-rate signalsLatest runs

	Progress io.Writer
}

func (o *QueryOptions) defaults() {
	if o.Vehicles == 0 {
		o.Vehicles = 25
	}
	if o.History == 0 {
		o.History = 2 * time.Hour
	}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.PerRequest == 0 {
		o.PerRequest = 1000
	}
	if o.Clients == nil {
		o.Clients = []int{1, 50, 200}
	}
	if o.PerClientRate == 0 {
		o.PerClientRate = 10
	}
	if o.StepDuration == 0 {
		o.StepDuration = 3 * time.Second
	}
	if o.TargetP99 == 0 {
		o.TargetP99 = 50 * time.Millisecond
	}
	if o.RampClients == 0 {
		o.RampClients = 200
	}
	if o.RampStart == 0 {
		o.RampStart = 2000
	}
	if o.RampFactor <= 1 {
		o.RampFactor = 1.5
	}
	if o.RampRefine == 0 {
		o.RampRefine = 2
	}
	if o.MaxRate == 0 {
		o.MaxRate = 200000
	}
	if o.StoreDuration == 0 {
		o.StoreDuration = 2 * time.Second
	}
	if o.HistoryVehicles == 0 {
		o.HistoryVehicles = 5
	}
	o.HistoryVehicles = max(0, min(o.HistoryVehicles, o.Vehicles))
	if o.HistoryDays == 0 {
		o.HistoryDays = 30
	}
	if o.HistoryInterval == 0 {
		o.HistoryInterval = time.Second
	}
	if o.HistoryPerRecord == 0 {
		o.HistoryPerRecord = 30
	}
	if o.SignalsBucket == 0 {
		o.SignalsBucket = 5 * time.Minute
	}
	if o.SignalsRuns == 0 {
		o.SignalsRuns = 20
	}
	if o.SignalsTarget == 0 {
		o.SignalsTarget = 50 * time.Millisecond
	}
}

func (o *QueryOptions) logf(format string, args ...any) { logTo(o.Progress, format, args...) }

// QueryLevel is one open-loop run at a fixed request rate.
type QueryLevel struct {
	Clients  int
	Rate     float64 // requests/s scheduled
	Achieved float64 // answers/s received
	Sent     int
	Errors   int // transport errors, non-200 answers and answers with GraphQL errors
	P50, P99 time.Duration
}

// ok says whether the run met the target: no errors, p99 under target, 95% of the rate achieved.
func (l QueryLevel) ok(target time.Duration) bool {
	return l.Errors == 0 && l.P99 < target && l.Achieved >= 0.95*l.Rate
}

// QueryReport is what a query benchmark measured.
type QueryReport struct {
	Cores         int
	Vehicles      int
	History       time.Duration
	Interval      time.Duration
	Records       int // records stored, 10 signals each
	LatestRows    int // latest values (one per vehicle and signal)
	IngestPerSec  float64
	IndexDuration time.Duration
	Fields        int // signal fields asked by the query
	Levels        []QueryLevel
	TargetP99     time.Duration
	Ramp          []QueryLevel
	MaxRate       float64 // the highest rate run with p99 < TargetP99 (0 if none)
	MaxRateLevel  QueryLevel
	StoreQueries  int
	StoreP50      time.Duration
	StoreP99      time.Duration
	StorePerSec   float64 // the bare query on every core

	// The long history and the signals query (zero when HistoryVehicles is 0).
	HistoryVehicles                    int
	HistoryDays                        int
	HistoryInterval                    time.Duration
	HistoryFrom                        time.Time
	HistoryTo                          time.Time
	HistoryRecords                     int           // records of the long history
	HistoryPerRecord                   int           // samples of 10 signals per record
	HistoryValues                      int           // signal values of the long history
	HistoryBytes                       int64         // event bytes of the long history
	HistoryRoll                        time.Duration // sealing the open hours into chunks
	RollupRows                         int           // chunks (chunk_sums rows) in the end
	HistorySignPerSec                  float64
	HistoryIngestPerSec                float64 // verified and written through the Ingester (or written straight into the store)
	HistoryDirect                      bool
	HistoryIndex                       time.Duration
	SignalRows                         int // values in the end (rows of the signals table and in chunks)
	SignalsBucket                      time.Duration
	SignalsFrom, SignalsTo             time.Time // the window of the signals query: the history's, aligned to the buckets
	SignalsBuckets                     int       // buckets of the query's window
	SignalsAnswered                    int       // buckets in an answer (those with data)
	SignalsAnswerBytes                 int
	SignalsTarget                      time.Duration
	Signals                            []time.Duration // over HTTP, one after the other
	SignalsStore                       []time.Duration // the same aggregations on the bare store (History.Aggregate)
	SignalsValues                      []time.Duration // the same on the bare store from the values alone, no roll-ups
	SignalsP50, SignalsP99             time.Duration
	SignalsStoreP50, SignalsStoreP99   time.Duration
	SignalsValuesP50, SignalsValuesP99 time.Duration
}

// latestQueryFields are the ten signals sim.TenSignals writes, as signalsLatest selections.
var latestQueryFields = []string{
	"speed { timestamp value }",
	"currentLocationCoordinates { timestamp value { latitude longitude hdop } }",
	"currentLocationHeading { timestamp value }",
	"powertrainTransmissionTravelledDistance { timestamp value }",
	"powertrainFuelSystemRelativeLevel { timestamp value }",
	"powertrainCombustionEngineSpeed { timestamp value }",
	"powertrainCombustionEngineECT { timestamp value }",
	"exteriorAirTemperature { timestamp value }",
	"lowVoltageBatteryCurrentVoltage { timestamp value }",
	"isIgnitionOn { timestamp value }",
}

// Query runs a node, loads a fleet's telemetry through signed records, signs the owner in over HTTP and
// measures signalsLatest over HTTP (open loop: each client sends on a fixed schedule and latency runs from
// the scheduled time, so a slow answer delays the next request's clock too), then the same SQL against
// the bare store.
func Query(ctx context.Context, opts QueryOptions) (*QueryReport, error) {
	opts.defaults()
	perVehicle := int(opts.History / opts.Interval)
	if perVehicle < 1 || opts.PerRequest > 1000 {
		return nil, fmt.Errorf("bench: history %s at %s gives no record, or more than 1,000 records per request", opts.History, opts.Interval)
	}
	rep := &QueryReport{Cores: runtime.NumCPU(), Vehicles: opts.Vehicles, History: opts.History, Interval: opts.Interval,
		Fields: len(latestQueryFields), TargetP99: opts.TargetP99}

	// The sequencer's clock starts History and the long history's days (and a margin) in the past, so
	// that the devices are paired before the first record; it then jumps to the present, before any
	// record is sent.
	days := time.Duration(opts.HistoryDays) * 24 * time.Hour
	if opts.HistoryVehicles == 0 {
		days = 0
	}
	var behind atomic.Int64
	behind.Store(int64(days + opts.History + 3*time.Minute))
	clock := func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }
	qn, err := startQueryNode(ctx, clock)
	if err != nil {
		return nil, err
	}
	defer qn.stop()
	c := client.New(qn.url)
	opts.logf("registering and pairing %d vehicles of one owner…", opts.Vehicles)
	owner, _ := crypto.GenerateKey()
	devs, ids, err := ownedFleet(ctx, c, owner, opts.Vehicles, clock)
	if err != nil {
		return nil, err
	}
	behind.Store(0)
	first := time.Now().Add(-opts.History - 2*time.Minute).Truncate(time.Second)
	if opts.HistoryVehicles > 0 {
		if err := loadHistory(ctx, qn.n, devs[:opts.HistoryVehicles], ids[:opts.HistoryVehicles], first, &opts, rep); err != nil {
			return nil, err
		}
	}

	n := opts.Vehicles * perVehicle
	rep.Records = n
	opts.logf("signing %d records of 10 signals (%s at %s for each vehicle)…", n, opts.History, opts.Interval)
	subs := make([]telemetry.Submission, n)
	var signErr atomic.Value
	parallel(n, func(i int) {
		v, seq := i%opts.Vehicles, i/opts.Vehicles
		at := first.Add(time.Duration(seq) * opts.Interval)
		ev, err := telemetry.NewEvent(crypto.PubkeyToAddress(devs[v].PublicKey), ids[v], strconv.Itoa(seq), at, sim.TenSignals(at, seq))
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
	for i := 0; i < n; i += opts.PerRequest {
		b, err := json.Marshal(subs[i:min(i+opts.PerRequest, n)])
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, postRequest("/v1/events", b))
	}
	subs = nil
	opts.logf("ingesting them through POST /v1/events…")
	addr := strings.TrimPrefix(qn.url, "http://")
	_, dur, err := sendAll(ctx, addr, bodies, 16, func(body []byte) error {
		if strings.Count(string(body), `"status":"accepted"`) != strings.Count(string(body), `"status":`) {
			return fmt.Errorf("a record was not accepted: %.300s", body)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	bodies = nil
	rep.IngestPerSec = float64(n) / dur.Seconds()
	opts.logf("indexing and sealing…")
	t0 := time.Now()
	if _, err := qn.n.Telemetry.Index(ctx); err != nil {
		return nil, err
	}
	// Rolled up now, as the node's indexer would have within 30 s: the first roll of a fresh backlog
	// is not what a steady-state query competes with.
	if _, err := qn.n.Telemetry.Seal(ctx); err != nil {
		return nil, err
	}
	rep.IndexDuration = time.Since(t0)
	db := qn.n.Telemetry.SignalsDB()
	for _, id := range ids {
		rows, err := sqlite.QueryLatest(ctx, db, id)
		if err != nil {
			return nil, err
		}
		rep.LatestRows += len(rows)
	}

	opts.logf("signing the owner in over HTTP…")
	token, err := siweSignIn(ctx, qn.url, owner)
	if err != nil {
		return nil, err
	}
	reqs := make([][]byte, len(ids))
	for i, id := range ids {
		q := fmt.Sprintf("{ signalsLatest(tokenId: %d) { lastSeen %s } }", id, strings.Join(latestQueryFields, " "))
		body, _ := json.Marshal(map[string]string{"query": q})
		reqs[i] = graphQLRequest(token, body)
	}
	if err := checkLatestAnswers(addr, reqs); err != nil {
		return nil, err
	}

	if opts.LatestProfile != nil {
		if err := pprof.StartCPUProfile(opts.LatestProfile); err != nil {
			return nil, err
		}
	}
	for _, clients := range opts.Clients {
		opts.logf("signalsLatest: %d clients × %.0f/s for %s…", clients, opts.PerClientRate, opts.StepDuration)
		lv, err := openLoop(ctx, addr, reqs, clients, float64(clients)*opts.PerClientRate, opts.StepDuration)
		if err != nil {
			return nil, err
		}
		rep.Levels = append(rep.Levels, lv)
	}
	if opts.LatestProfile != nil {
		pprof.StopCPUProfile()
	}

	run := func(rate float64) (QueryLevel, error) {
		clients := max(1, min(opts.RampClients, int(rate/opts.PerClientRate)))
		opts.logf("signalsLatest: %.0f/s from %d clients for %s…", rate, clients, opts.StepDuration)
		lv, err := openLoop(ctx, addr, reqs, clients, rate, opts.StepDuration)
		if err == nil {
			rep.Ramp = append(rep.Ramp, lv)
			if lv.ok(opts.TargetP99) && lv.Rate > rep.MaxRate {
				rep.MaxRate, rep.MaxRateLevel = lv.Rate, lv
			}
		}
		return lv, err
	}
	lo, hi := 0.0, 0.0
	for rate := opts.RampStart; rate <= opts.MaxRate; rate *= opts.RampFactor {
		lv, err := run(rate)
		if err != nil {
			return nil, err
		}
		if !lv.ok(opts.TargetP99) {
			hi = rate
			break
		}
		lo = rate
	}
	for i := 0; i < opts.RampRefine && hi > 0 && lo > 0; i++ {
		mid := (lo + hi) / 2
		lv, err := run(mid)
		if err != nil {
			return nil, err
		}
		if lv.ok(opts.TargetP99) {
			lo = mid
		} else {
			hi = mid
		}
	}

	opts.logf("the same query on the bare store…")
	if err := measureStore(ctx, qn.n, ids, opts.StoreDuration, rep); err != nil {
		return nil, err
	}
	if opts.HistoryVehicles > 0 {
		if err := measureSignals(ctx, qn.n, addr, token, ids[:opts.HistoryVehicles], &opts, rep); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// loadHistory signs the long history of the vehicles of devs (HistoryPerRecord samples of 10 signals,
// one per HistoryInterval, to a record, over HistoryDays ending at end), writes it through the node's
// Ingester in batches of 1,000, then indexes and rolls it up.
func loadHistory(ctx context.Context, n *node.Node, devs []*ecdsa.PrivateKey, ids []uint64, end time.Time, opts *QueryOptions, rep *QueryReport) error {
	span := time.Duration(opts.HistoryDays) * 24 * time.Hour
	per := opts.HistoryPerRecord
	perVehicle := int(span / (opts.HistoryInterval * time.Duration(per)))
	if perVehicle < 1 {
		return fmt.Errorf("bench: %d days at %s, %d samples a record, give no record", opts.HistoryDays, opts.HistoryInterval, per)
	}
	start := end.Add(-span)
	total := len(devs) * perVehicle
	rep.HistoryVehicles, rep.HistoryDays, rep.HistoryInterval = len(devs), opts.HistoryDays, opts.HistoryInterval
	rep.HistoryFrom, rep.HistoryTo, rep.HistoryRecords = start.UTC(), end.UTC(), total
	rep.HistoryPerRecord, rep.HistoryValues, rep.HistoryDirect = per, total*per*10, opts.HistoryDirect
	how := "written through the Ingester"
	if opts.HistoryDirect {
		how = "written straight into the store"
	}
	opts.logf("long history: %d vehicles × %d records of %d samples (%d days at %s), signed and %s…",
		len(devs), perVehicle, per, opts.HistoryDays, opts.HistoryInterval, how)
	const batch = 1000
	subs := make([]telemetry.Submission, batch)
	var signing, ingesting time.Duration
	var bytes atomic.Int64
	for from := 0; from < total; from += batch {
		k := min(batch, total-from)
		t0 := time.Now()
		var signErr atomic.Value
		parallel(k, func(j int) {
			i := from + j
			v, seq := i%len(devs), i/len(devs)
			at := start.Add(time.Duration(seq*per) * opts.HistoryInterval)
			sigs := make([]telemetry.EventSignal, 0, 10*per)
			gen := sim.TenSignals
			if opts.HistorySignals != nil {
				gen = opts.HistorySignals
			}
			for s := range per {
				sigs = append(sigs, gen(at.Add(time.Duration(s)*opts.HistoryInterval), seq*per+s)...)
			}
			ev, err := telemetry.NewEvent(crypto.PubkeyToAddress(devs[v].PublicKey), ids[v], "h"+strconv.Itoa(seq), at, sigs)
			if err == nil {
				bytes.Add(int64(len(ev)))
				subs[j], err = telemetry.Sign(ev, devs[v])
			}
			if err != nil {
				signErr.Store(err)
			}
		})
		if err, ok := signErr.Load().(error); ok {
			return err
		}
		t1 := time.Now()
		if opts.HistoryDirect {
			if err := writeDirect(ctx, n, subs[:k]); err != nil {
				return err
			}
		} else {
			for _, r := range n.Ingester.Ingest(ctx, subs[:k]) {
				if r.Status != telemetry.StatusAccepted {
					return fmt.Errorf("a history record was not accepted: %s: %s", r.Status, r.Message)
				}
			}
		}
		signing += t1.Sub(t0)
		ingesting += time.Since(t1)
		if opts.Progress != nil && (from/batch)%20 == 19 {
			opts.logf("  %d of %d…", from+k, total)
		}
	}
	rep.HistoryBytes = bytes.Load()
	rep.HistorySignPerSec = float64(total) / signing.Seconds()
	rep.HistoryIngestPerSec = float64(total) / ingesting.Seconds()
	opts.logf("indexing the long history…")
	t0 := time.Now()
	if _, err := n.Telemetry.Index(ctx); err != nil {
		return err
	}
	rep.HistoryIndex = time.Since(t0)
	opts.logf("sealing it into chunks…")
	t0 = time.Now()
	if _, err := n.Telemetry.Seal(ctx); err != nil {
		return err
	}
	rep.HistoryRoll = time.Since(t0)
	return n.Telemetry.SignalsDB().QueryRowContext(ctx, `SELECT count(*) FROM chunk_sums`).Scan(&rep.RollupRows)
}

// writeDirect stores signed submissions as the Ingester would — parsed, with the pairing in force at
// their time — but without recovering their signatures again (the bench signed them a moment ago).
func writeDirect(ctx context.Context, n *node.Node, subs []telemetry.Submission) error {
	recs := make([]*telemetry.Record, len(subs))
	var parseErr atomic.Value
	now := time.Now().Add(time.Minute).UnixMilli()
	parallel(len(subs), func(i int) {
		r, err := telemetry.DefaultCatalog.Parse(&subs[i], now)
		if err != nil {
			parseErr.Store(err)
			return
		}
		copy(r.Signature[:], subs[i].Signature)
		recs[i] = r
	})
	if err, ok := parseErr.Load().(error); ok {
		return fmt.Errorf("a history record does not parse: %w", err)
	}
	var missing *telemetry.Record
	n.Sequencer.Read(func(st *ledger.State) {
		for _, r := range recs {
			p, ok := st.PairingAt(r.Source, r.VehicleID, r.Time)
			if !ok {
				missing = r
				return
			}
			r.Pairing, r.Received = p, time.Now().UnixMilli()
		}
	})
	if missing != nil {
		return fmt.Errorf("history record %s of %s: no pairing at its time", missing.ID, missing.Source.Hex())
	}
	st, err := n.Telemetry.Write(ctx, recs)
	if err != nil {
		return err
	}
	for i, s := range st {
		if s != telemetry.StatusAccepted {
			return fmt.Errorf("history record %s: %s", recs[i].ID, s)
		}
	}
	return nil
}

// The aggregations of the signals query: three of speed and three of the odometer.
var historyAggregations = []struct{ alias, signal, agg string }{
	{"avgSpeed", "speed", "AVG"},
	{"maxSpeed", "speed", "MAX"},
	{"minSpeed", "speed", "MIN"},
	{"firstDistance", "powertrainTransmissionTravelledDistance", "FIRST"},
	{"lastDistance", "powertrainTransmissionTravelledDistance", "LAST"},
	{"maxDistance", "powertrainTransmissionTravelledDistance", "MAX"},
}

// measureSignals asks the signals query over the long history SignalsRuns times over HTTP as the owner,
// one after the other, then runs the resolver's SQL as many times against the bare store.
func measureSignals(ctx context.Context, n *node.Node, addr, token string, ids []uint64, opts *QueryOptions, rep *QueryReport) error {
	// The window is aligned to the buckets, as a chart asks: bucket boundaries then fall on roll-up
	// units, which is what lets the store answer from the roll-ups (unaligned windows read the values).
	step := opts.SignalsBucket
	from, to := rep.HistoryFrom.Truncate(step), rep.HistoryTo.Truncate(step)
	rep.SignalsFrom, rep.SignalsTo = from, to
	rep.SignalsBucket, rep.SignalsTarget = step, opts.SignalsTarget
	rep.SignalsBuckets = int((to.Sub(from) + step - 1) / step)
	var fields []string
	for _, a := range historyAggregations {
		fields = append(fields, fmt.Sprintf("%s: %s(agg: %s)", a.alias, a.signal, a.agg))
	}
	reqs := make([][]byte, len(ids))
	for i, id := range ids {
		q := fmt.Sprintf(`{ signals(tokenId: %d, interval: %q, from: %q, to: %q) { timestamp %s } }`, id, step.String(),
			from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), strings.Join(fields, " "))
		body, _ := json.Marshal(map[string]string{"query": q})
		reqs[i] = graphQLRequest(token, body)
	}
	conn, err := dialRaw(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// One unmeasured query per vehicle checks the answers (and warms the caches).
	for _, req := range reqs {
		status, body, err := conn.do(req, nil)
		if err == nil {
			err = answerError(status, body)
		}
		if err != nil {
			return fmt.Errorf("signals: %w", err)
		}
		var out struct {
			Data struct {
				Signals []map[string]any `json:"signals"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return err
		}
		if len(out.Data.Signals) == 0 {
			return fmt.Errorf("signals answered no bucket: %.300s", body)
		}
		for _, a := range historyAggregations {
			if out.Data.Signals[0][a.alias] == nil {
				return fmt.Errorf("signals has no %s in its first bucket: %.300s", a.alias, body)
			}
		}
		rep.SignalsAnswered, rep.SignalsAnswerBytes = len(out.Data.Signals), len(body)
	}
	opts.logf("signals over %s in %s buckets, %d times over HTTP…", to.Sub(from), step, opts.SignalsRuns)
	if opts.SignalsProfile != nil {
		if err := pprof.StartCPUProfile(opts.SignalsProfile); err != nil {
			return err
		}
	}
	var buf []byte
	for i := 0; i < opts.SignalsRuns; i++ {
		t0 := time.Now()
		status, body, err := conn.do(reqs[i%len(reqs)], buf)
		d := time.Since(t0)
		if err == nil {
			err = answerError(status, body)
		}
		if err != nil {
			if opts.SignalsProfile != nil {
				pprof.StopCPUProfile()
			}
			return fmt.Errorf("signals: %w", err)
		}
		buf = body
		rep.Signals = append(rep.Signals, d)
	}
	if opts.SignalsProfile != nil {
		pprof.StopCPUProfile()
	}
	rep.SignalsP50, rep.SignalsP99 = percentile(rep.Signals, 0.5), percentile(rep.Signals, 0.99)

	opts.logf("the same aggregations on the bare store, %d times with roll-ups and %d times from the values alone…", opts.SignalsRuns, opts.SignalsRuns)
	h := sqlite.NewHistory(n.Telemetry.SignalsDB())
	bare := func(vehicle uint64, noRollup bool) error {
		buckets := map[int64]bool{}
		for _, sig := range []string{"speed", "powertrainTransmissionTravelledDistance"} {
			var aggs []string
			for _, a := range historyAggregations {
				if a.signal == sig {
					aggs = append(aggs, a.agg)
				}
			}
			a := telemetry.Aggregation{Vehicle: vehicle, Signal: sig, Kind: telemetry.KindNumber, From: from.UnixMilli(),
				Step: step.Milliseconds(), Lo: from.UnixMilli(), Hi: to.UnixMilli(), Aggs: aggs, NoRollup: noRollup}
			if err := h.Aggregate(ctx, a, func(b int64, _ string, _ any) { buckets[b] = true }); err != nil {
				return fmt.Errorf("the bare signals aggregation: %w", err)
			}
		}
		if len(buckets) != rep.SignalsAnswered {
			return fmt.Errorf("the bare signals aggregation gave %d buckets, the query %d", len(buckets), rep.SignalsAnswered)
		}
		return nil
	}
	for i := 0; i < opts.SignalsRuns; i++ {
		t0 := time.Now()
		if err := bare(ids[i%len(ids)], false); err != nil {
			return err
		}
		rep.SignalsStore = append(rep.SignalsStore, time.Since(t0))
	}
	for i := 0; i < opts.SignalsRuns; i++ {
		t0 := time.Now()
		if err := bare(ids[i%len(ids)], true); err != nil {
			return err
		}
		rep.SignalsValues = append(rep.SignalsValues, time.Since(t0))
	}
	rep.SignalsStoreP50, rep.SignalsStoreP99 = percentile(rep.SignalsStore, 0.5), percentile(rep.SignalsStore, 0.99)
	rep.SignalsValuesP50, rep.SignalsValuesP99 = percentile(rep.SignalsValues, 0.5), percentile(rep.SignalsValues, 0.99)
	return n.Telemetry.SignalsDB().QueryRowContext(ctx, `SELECT (SELECT COALESCE(SUM(cnt), 0) FROM open_values) + (SELECT COALESCE(SUM(cnt), 0) FROM chunk_sums)`).Scan(&rep.SignalRows)
}

// queryNode is an in-process node with a settable clock.
type queryNode struct {
	url  string
	n    *node.Node
	stop func()
}

// startQueryNode opens a node in a new temporary directory, removed when it stops.
func startQueryNode(ctx context.Context, now func() time.Time) (*queryNode, error) {
	dir, err := os.MkdirTemp("", "glovebox-bench-query-")
	if err != nil {
		return nil, err
	}
	return startQueryNodeIn(ctx, dir, true, now)
}

// startQueryNodeIn opens a node on dir (new or holding a node's data), serving HTTP on a free local
// port; stop closes it and, if remove, removes dir.
func startQueryNodeIn(ctx context.Context, dir string, remove bool, now func() time.Time) (*queryNode, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if remove {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	url := "http://" + ln.Addr().String()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Open(ctx, node.Config{DataDir: dir, Logger: quiet, Now: now, PublicURL: url})
	if err != nil {
		ln.Close()
		if remove {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(runCtx); close(done) }()
	srv := &http.Server{Handler: n.API}
	go srv.Serve(ln)
	return &queryNode{url: url, n: n, stop: func() {
		srv.Close()
		cancel()
		<-done
		n.Close()
		if remove {
			os.RemoveAll(dir)
		}
	}}, nil
}

// ownedFleet registers vehicles owned by owner, each with a paired hardware device, through signed
// batches, with deadlines on the sequencer's clock now.
func ownedFleet(ctx context.Context, c *client.Client, owner *ecdsa.PrivateKey, vehicles int, now func() time.Time) ([]*ecdsa.PrivateKey, []uint64, error) {
	d, err := c.Domain(ctx)
	if err != nil {
		return nil, nil, err
	}
	addr := func(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }
	devs := make([]*ecdsa.PrivateKey, vehicles)
	for i := range devs {
		devs[i], _ = crypto.GenerateKey()
	}
	ids := make([]uint64, vehicles)
	sign := func(tx *ledger.Tx, keys ...*ecdsa.PrivateKey) *ledger.Tx {
		tx.Deadline.SetUint64(uint64(now().Add(time.Hour).Unix()))
		client.Prepare(tx, time.Hour)
		for _, k := range keys {
			d.Sign(tx, k)
		}
		return tx
	}
	step := func(build func(i int) *ledger.Tx, result func(i int, it uint64)) error {
		for start := 0; start < vehicles; start += 1000 {
			end := min(start+1000, vehicles)
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
					result(start+j, it.Result.VehicleID)
				}
			}
		}
		return nil
	}
	if err := step(func(i int) *ledger.Tx {
		return sign(&ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: addr(owner), Make: "Bench", Model: "Query", Year: 2024}, owner)
	}, func(i int, id uint64) { ids[i] = id }); err != nil {
		return nil, nil, err
	}
	if err := step(func(i int) *ledger.Tx {
		return sign(&ledger.Tx{Type: ledger.TypeRegisterDevice, Device: addr(devs[i]), Kind: ledger.KindHardware}, devs[i])
	}, nil); err != nil {
		return nil, nil, err
	}
	if err := step(func(i int) *ledger.Tx {
		tx := &ledger.Tx{Type: ledger.TypePairDevice, Device: addr(devs[i])}
		tx.VehicleID.SetUint64(ids[i])
		return sign(tx, owner, devs[i])
	}, nil); err != nil {
		return nil, nil, err
	}
	return devs, ids, nil
}

// SignIn signs key in at the node at base over HTTP (Sign-In with Ethereum) and returns the bearer token.
func SignIn(ctx context.Context, base string, key *ecdsa.PrivateKey) (string, error) {
	return siweSignIn(ctx, base, key)
}

// siweSignIn signs key in over HTTP: challenge, personal_sign of the exact message, token.
func siweSignIn(ctx context.Context, base string, key *ecdsa.PrivateKey) (string, error) {
	addr := crypto.PubkeyToAddress(key.PublicKey)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/auth/challenge?address="+addr.Hex(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	var ch struct{ Message string }
	err = json.NewDecoder(resp.Body).Decode(&ch)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("sign-in challenge: HTTP %d (%v)", resp.StatusCode, err)
	}
	h := ledger.PersonalHash([]byte(ch.Message))
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		return "", err
	}
	sig[64] += 27
	form := url.Values{"grant_type": {"urn:glovebox:params:oauth:grant-type:siwe"}, "message": {ch.Message},
		"signature": {"0x" + common.Bytes2Hex(sig)}}
	req, _ = http.NewRequestWithContext(ctx, "POST", base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("sign-in token: HTTP %d (%v)", resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// graphQLRequest builds the bytes of a POST /graphql request with a bearer token.
func graphQLRequest(token string, body []byte) []byte {
	head := fmt.Sprintf("POST /graphql HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		token, len(body))
	return append([]byte(head), body...)
}

// answerError says what is wrong with a signalsLatest answer, or nil.
func answerError(status int, body []byte) error {
	switch {
	case status == http.StatusTooManyRequests:
		return fmt.Errorf("HTTP 429: the node rate-limits the benchmark's caller; run it without rate limits")
	case status != http.StatusOK:
		return fmt.Errorf("HTTP %d: %.300s", status, body)
	case bytes.Contains(body, []byte(`"errors"`)):
		return fmt.Errorf("GraphQL errors: %.300s", body)
	}
	return nil
}

// checkLatestAnswers asks every vehicle once and checks that each of the ten signals is answered.
func checkLatestAnswers(addr string, reqs [][]byte) error {
	conn, err := dialRaw(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, req := range reqs {
		status, body, err := conn.do(req, nil)
		if err != nil {
			return err
		}
		if err := answerError(status, body); err != nil {
			return err
		}
		var out struct {
			Data struct {
				SignalsLatest map[string]any `json:"signalsLatest"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return err
		}
		for _, f := range latestQueryFields {
			name, _, _ := strings.Cut(f, " ")
			if out.Data.SignalsLatest[name] == nil {
				return fmt.Errorf("signalsLatest has no %s: %.300s", name, body)
			}
		}
	}
	return nil
}

// openLoop sends reqs (round robin) from clients connections at rate requests/s in total for d. Each
// client sends on its own fixed schedule, phase-shifted from the others; latency is measured from the
// scheduled time, so when the node falls behind, the queueing shows in the latencies instead of slowing
// the load down. Requests still unsent 5 s after the end are counted as errors.
func openLoop(ctx context.Context, addr string, reqs [][]byte, clients int, rate float64, d time.Duration) (QueryLevel, error) {
	lv := QueryLevel{Clients: clients, Rate: rate}
	period := time.Duration(float64(clients) / rate * float64(time.Second))
	perClient := int(d / period)
	if perClient < 1 {
		perClient = 1
	}
	conns := make([]*rawConn, clients)
	for i := range conns {
		c, err := dialRaw(addr)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return lv, err
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	lat := make([][]time.Duration, clients)
	var errs atomic.Int64
	var limited atomic.Bool
	var last atomic.Int64 // unix nanoseconds of the last answer
	start := time.Now().Add(50 * time.Millisecond)
	hardStop := start.Add(d + 5*time.Second)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := conns[c]
			phase := time.Duration(int64(period) * int64(c) / int64(clients))
			var buf []byte
			lat[c] = make([]time.Duration, 0, perClient)
			for k := 0; k < perClient; k++ {
				sched := start.Add(phase + time.Duration(k)*period)
				now := time.Now()
				if now.After(hardStop) || ctx.Err() != nil {
					errs.Add(int64(perClient - k))
					return
				}
				if wait := sched.Sub(now); wait > 0 {
					time.Sleep(wait)
				}
				status, body, err := conn.do(reqs[(c+k*clients)%len(reqs)], buf)
				done := time.Now()
				if err == nil {
					err = answerError(status, body)
				}
				if err != nil {
					errs.Add(int64(perClient - k))
					if status == http.StatusTooManyRequests {
						limited.Store(true)
					}
					return
				}
				buf = body
				lat[c] = append(lat[c], done.Sub(sched))
				for {
					l := last.Load()
					if done.UnixNano() <= l || last.CompareAndSwap(l, done.UnixNano()) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if limited.Load() {
		return lv, answerError(http.StatusTooManyRequests, nil)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	lv.Sent = len(all) + int(errs.Load())
	lv.Errors = int(errs.Load())
	if len(all) > 0 {
		lv.P50, lv.P99 = percentile(all, 0.5), percentile(all, 0.99)
		// The answers came between start and the last answer; the schedule spans at least d.
		span := max(time.Duration(perClient)*period, time.Unix(0, last.Load()).Sub(start))
		lv.Achieved = float64(len(all)) / span.Seconds()
	}
	return lv, nil
}

// measureStore reads the latest values as the resolver does (sqlite.QueryLatest) from the signals database: latencies on one goroutine, then
// throughput on every core.
func measureStore(ctx context.Context, n *node.Node, ids []uint64, d time.Duration, rep *QueryReport) error {
	db := n.Telemetry.SignalsDB()
	one := func(vehicle uint64) error {
		rows, err := sqlite.QueryLatest(ctx, db, vehicle)
		if err != nil {
			return err
		}
		count := len(rows)
		if count == 0 {
			return fmt.Errorf("vehicle %d has no latest values", vehicle)
		}
		return nil
	}
	var lat []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end); {
		s := time.Now()
		if err := one(ids[len(lat)%len(ids)]); err != nil {
			return err
		}
		lat = append(lat, time.Since(s))
	}
	rep.StoreQueries = len(lat)
	rep.StoreP50, rep.StoreP99 = percentile(lat, 0.5), percentile(lat, 0.99)
	var count atomic.Int64
	var failed atomic.Value
	end := time.Now().Add(d / 2)
	t0 := time.Now()
	parallel(runtime.NumCPU(), func(w int) {
		for i := w; time.Now().Before(end); i++ {
			if err := one(ids[i%len(ids)]); err != nil {
				failed.Store(err)
				return
			}
			count.Add(1)
		}
	})
	if err, ok := failed.Load().(error); ok {
		return err
	}
	rep.StorePerSec = float64(count.Load()) / time.Since(t0).Seconds()
	return nil
}

// Print writes the report as a table.
func (r *QueryReport) Print(w io.Writer) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
	fmt.Fprintf(w, "cores: %d; %d vehicles of one owner, %s of telemetry each at one record of 10 signals per %s (%d records, %d latest rows);\n",
		r.Cores, r.Vehicles, r.History, r.Interval, r.Records, r.LatestRows)
	fmt.Fprintf(w, "loaded at %.0f records/s through POST /v1/events, indexed and rolled up in %s. signalsLatest reads the latest values, a row\n",
		r.IngestPerSec, r.IndexDuration.Round(time.Millisecond))
	fmt.Fprintf(w, "per vehicle with a value per signal, whose size does not grow with the history (only the database files around it do).\n")
	fmt.Fprintf(w, "signalsLatest asks for %d signals (+ lastSeen) as the vehicles' owner (whose reads are not access-logged),\n", r.Fields)
	fmt.Fprintf(w, "over HTTP/1.1 keep-alive, open loop (latency from the scheduled send time).\n")
	fmt.Fprintf(w, "| clients | scheduled | achieved | p50 | p99 | errors |\n|---|---|---|---|---|---|\n")
	for _, l := range r.Levels {
		fmt.Fprintf(w, "| %d | %.0f/s | %.0f/s | %s | %s | %d |\n", l.Clients, l.Rate, l.Achieved, ms(l.P50), ms(l.P99), l.Errors)
	}
	fmt.Fprintf(w, "search for the highest rate with p99 < %s:\n", r.TargetP99)
	fmt.Fprintf(w, "| clients | scheduled | achieved | p50 | p99 | errors | met |\n|---|---|---|---|---|---|---|\n")
	for _, l := range r.Ramp {
		fmt.Fprintf(w, "| %d | %.0f/s | %.0f/s | %s | %s | %d | %v |\n", l.Clients, l.Rate, l.Achieved, ms(l.P50), ms(l.P99), l.Errors, l.ok(r.TargetP99))
	}
	if r.MaxRate > 0 {
		fmt.Fprintf(w, "highest rate sustained with p99 < %s: %.0f/s (achieved %.0f/s, p50 %s, p99 %s)\n",
			r.TargetP99, r.MaxRate, r.MaxRateLevel.Achieved, ms(r.MaxRateLevel.P50), ms(r.MaxRateLevel.P99))
	} else {
		fmt.Fprintf(w, "no rate tried kept p99 under %s\n", r.TargetP99)
	}
	fmt.Fprintf(w, "the resolver's SQL on the bare store: p50 %s, p99 %s (%d queries, one goroutine); %.0f/s on all cores\n",
		ms(r.StoreP50), ms(r.StoreP99), r.StoreQueries, r.StorePerSec)
	if r.HistoryRecords == 0 {
		return
	}
	fmt.Fprintf(w, "\nlong history: %d of the vehicles carry %d days (%s to %s) of 10 signals every %s, %d samples to a record:\n",
		r.HistoryVehicles, r.HistoryDays, r.HistoryFrom.Format(time.RFC3339), r.HistoryTo.Format(time.RFC3339), r.HistoryInterval, r.HistoryPerRecord)
	fmt.Fprintf(w, "%d records (%d signal values, %.1f GB of signed JSON), signed by the paired devices at %.0f records/s,\n",
		r.HistoryRecords, r.HistoryValues, float64(r.HistoryBytes)/1e9, r.HistorySignPerSec)
	if r.HistoryDirect {
		fmt.Fprintf(w, "and written straight into the store with their pairings (not verified again) in batches of 1,000 at %.0f records/s\n", r.HistoryIngestPerSec)
	} else {
		fmt.Fprintf(w, "verified (signature and pairing) and written through the node's Ingester in batches of 1,000 at %.0f records/s\n", r.HistoryIngestPerSec)
	}
	fmt.Fprintf(w, "(%.0f values/s), indexed in %s, sealed in %s; %d values, %d chunks.\n",
		r.HistoryIngestPerSec*float64(r.HistoryPerRecord*10), r.HistoryIndex.Round(time.Millisecond), r.HistoryRoll.Round(time.Millisecond), r.SignalRows, r.RollupRows)
	fmt.Fprintf(w, "signals from %s to %s in %s buckets (%d buckets, %d answered, %d bytes) with speed AVG, MAX, MIN and\n",
		r.SignalsFrom.Format(time.RFC3339), r.SignalsTo.Format(time.RFC3339), r.SignalsBucket, r.SignalsBuckets, r.SignalsAnswered, r.SignalsAnswerBytes)
	fmt.Fprintf(w, "powertrainTransmissionTravelledDistance FIRST, LAST, MAX, as the owner, %d times one after the other:\n", len(r.Signals))
	met := "met"
	if r.SignalsP99 >= r.SignalsTarget {
		met = "not met"
	}
	fmt.Fprintf(w, "| path | p50 | p99 |\n|---|---|---|\n")
	fmt.Fprintf(w, "| GraphQL over HTTP | %s | %s |\n", ms(r.SignalsP50), ms(r.SignalsP99))
	fmt.Fprintf(w, "| the same aggregations on the bare store (History.Aggregate) | %s | %s |\n", ms(r.SignalsStoreP50), ms(r.SignalsStoreP99))
	fmt.Fprintf(w, "| the same on the bare store from the values alone (no roll-ups) | %s | %s |\n", ms(r.SignalsValuesP50), ms(r.SignalsValuesP99))
	fmt.Fprintf(w, "goal: < %s over HTTP (p99): %s\n", r.SignalsTarget, met)
}
