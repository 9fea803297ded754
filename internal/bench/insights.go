package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/telemetry"
)

// InsightsOptions configures Insights.
type InsightsOptions struct {
	Days      int // of telemetry of the one car (default 31)
	PerRecord int // one-second samples of 10 signals to a record (default 30)
	Runs      int // of each query (default 20)
	Progress  io.Writer
	Profile   io.Writer // if set, a CPU profile of the measured runs (not of the load)
	// CacheDir, if set, keeps the loaded node in a directory under it named after Days and PerRecord
	// (and insightsCacheVersion), and a later run with the same parameters opens that node instead of
	// loading the history again. The node is reused in place: the measured queries add to its access
	// log. A directory left by an interrupted load (without its insights.json) is loaded again.
	CacheDir string
}

// insightsCacheVersion names the shape of a cached insights node; it changes when the history
// Insights loads changes, so that an old cache is not measured as the new one.
const insightsCacheVersion = 1

// insightsCache is what a cached node needs besides its data directory (insights.json).
type insightsCache struct {
	Owner           string // hex private key
	Car             uint64
	End             time.Time
	Records, Values int
	Load            time.Duration
}

// InsightsQuery is one query's measurement.
type InsightsQuery struct {
	Name     string
	Answer   string // what it answered, in short
	P50, P99 time.Duration
}

// InsightsReport is what Insights measured.
type InsightsReport struct {
	Cores           int
	Days, PerRecord int
	Records, Values int
	Trips           int           // trips the car drove in the range
	Load            time.Duration // signing, storing, indexing and rolling up the history
	Cached          bool          // the node was reopened from InsightsOptions.CacheDir (Load is the first run's)
	Queries         []InsightsQuery
}

// The daily trips of the insights car (UTC hours and minutes, start and end).
var insightsTrips = [][2]int{{7*60 + 30, 8*60 + 15}, {12*60 + 10, 12*60 + 40}, {17*60 + 20, 18*60 + 30}}

// insightsSignals is the car of Insights at t: ten signals measured every second, the ignition on and
// the car moving during its three daily trips, with a hard braking (from 60 to 30 km/h in two seconds) in
// the middle of each.
func insightsSignals(t time.Time, i int) []telemetry.EventSignal {
	day := t.UTC().Truncate(24 * time.Hour)
	minute := int(t.Sub(day) / time.Minute)
	sec := int(t.Sub(day) / time.Second)
	on, kph := false, 0.0
	for _, tr := range insightsTrips {
		if minute >= tr[0] && minute < tr[1] {
			on = true
			into, mid := sec-tr[0]*60, (tr[1]-tr[0])*30
			switch {
			case into < 20:
				kph = 3 * float64(into)
			case into >= mid && into <= mid+2:
				kph = 60 - 15*float64(into-mid)
			case into > mid+2 && into < mid+20:
				kph = 30 + 1.5*float64(into-mid-2)
			default:
				kph = 55 + 5*math.Sin(float64(into)/60)
			}
		}
	}
	rpm, ect := 0.0, 20.0
	if on {
		rpm, ect = math.Round(900+kph*25), 90
	}
	f := float64(i % 100)
	return []telemetry.EventSignal{
		{Name: "speed", Timestamp: t, Value: math.Round(kph*10) / 10},
		{Name: "currentLocationCoordinates", Timestamp: t, Value: telemetry.Location{Latitude: 52.52 + f/1e4, Longitude: 13.405 + f/1e4, HDOP: 0.8}},
		{Name: "currentLocationHeading", Timestamp: t, Value: float64(i % 360)},
		{Name: "powertrainTransmissionTravelledDistance", Timestamp: t, Value: 12000 + float64(i)/1000},
		{Name: "powertrainFuelSystemRelativeLevel", Timestamp: t, Value: float64(80 - (i/3600)%50)},
		{Name: "powertrainCombustionEngineSpeed", Timestamp: t, Value: rpm},
		{Name: "powertrainCombustionEngineECT", Timestamp: t, Value: ect},
		{Name: "exteriorAirTemperature", Timestamp: t, Value: 14.5},
		{Name: "lowVoltageBatteryCurrentVoltage", Timestamp: t, Value: 12.6},
		{Name: "isIgnitionOn", Timestamp: t, Value: on},
	}
}

// Insights runs a node in this process, loads Days of one car recording 10 signals every second
// (signed by its device, written straight into the store, then indexed and rolled up; three trips a
// day, each with a hard braking), and measures, as its owner over HTTP, segments (ignitionDetection and
// frequencyAnalysis, changePointDetection, idling, refuel and recharge) and dailyActivity over the
// whole range, and events over it, Runs times each one after the other on the warm node.
func Insights(ctx context.Context, opts InsightsOptions) (*InsightsReport, error) {
	if opts.Days == 0 {
		opts.Days = 31
	}
	if opts.PerRecord == 0 {
		opts.PerRecord = 30
	}
	if opts.Runs == 0 {
		opts.Runs = 20
	}
	logf := func(format string, args ...any) { logTo(opts.Progress, format, args...) }
	// The history ends at the last midnight UTC, so that its days are whole days.
	end := time.Now().UTC().Truncate(24 * time.Hour)
	qo := &QueryOptions{HistoryDays: opts.Days, HistoryInterval: time.Second, HistoryPerRecord: opts.PerRecord, HistoryDirect: true,
		HistorySignals: insightsSignals, Progress: opts.Progress}
	car, end, err := insightsCar(ctx, opts, end, qo)
	if err != nil {
		return nil, err
	}
	defer car.qn.stop()
	start := end.Add(-time.Duration(opts.Days) * 24 * time.Hour)
	qn, c, owner, ids, qr := car.qn, car.c, car.owner, []uint64{car.id}, car.hist
	rep := &InsightsReport{Cores: runtime.NumCPU(), Days: opts.Days, PerRecord: opts.PerRecord, Records: qr.HistoryRecords,
		Values: qr.HistoryValues, Trips: opts.Days * len(insightsTrips), Load: car.load, Cached: car.cached}
	token, err := SignIn(ctx, qn.url, owner)
	if err != nil {
		return nil, err
	}
	from, to := start.Format(time.RFC3339), end.Format(time.RFC3339)
	queries := []struct{ name, q, field string }{
		{"segments (ignitionDetection)", `segments(tokenId: %d, from: %q, to: %q, mechanism: ignitionDetection, limit: 200) { id start { timestamp value { latitude longitude } } end { timestamp } duration signals { name agg value } }`, "segments"},
		{"segments (frequencyAnalysis)", `segments(tokenId: %d, from: %q, to: %q, mechanism: frequencyAnalysis, limit: 200) { id start { timestamp } end { timestamp } duration }`, "segments"},
		{"segments (changePointDetection)", `segments(tokenId: %d, from: %q, to: %q, mechanism: changePointDetection, limit: 200) { id start { timestamp } end { timestamp } duration }`, "segments"},
		{"segments (idling)", `segments(tokenId: %d, from: %q, to: %q, mechanism: idling, limit: 200) { id start { timestamp } end { timestamp } duration }`, "segments"},
		{"segments (refuel)", `segments(tokenId: %d, from: %q, to: %q, mechanism: refuel, limit: 200) { id start { timestamp } end { timestamp } duration signals { name agg value } }`, "segments"},
		{"segments (recharge)", `segments(tokenId: %d, from: %q, to: %q, mechanism: recharge, limit: 200) { id start { timestamp } end { timestamp } duration }`, "segments"},
		{"dailyActivity (ignitionDetection)", `dailyActivity(tokenId: %d, from: %q, to: %q, mechanism: ignitionDetection) { segmentCount duration signals { name agg value } eventCounts { name count } }`, "dailyActivity"},
		{"dailyActivity (frequencyAnalysis)", `dailyActivity(tokenId: %d, from: %q, to: %q, mechanism: frequencyAnalysis) { segmentCount duration signals { name agg value } eventCounts { name count } }`, "dailyActivity"},
		{"events", `events(tokenId: %d, from: %q, to: %q) { timestamp name source durationNs metadata }`, "events"},
	}
	if opts.Profile != nil {
		if err := pprof.StartCPUProfile(opts.Profile); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	for _, q := range queries {
		body := fmt.Sprintf("{ "+q.q+" }", ids[0], from, to)
		var ds []time.Duration
		var answer string
		for i := -1; i < opts.Runs; i++ { // one unmeasured run warms the caches and checks the answer
			t1 := time.Now()
			r, err := c.GraphQL(ctx, token, body, nil)
			d := time.Since(t1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", q.name, err)
			}
			if len(r.Errors) > 0 {
				return nil, fmt.Errorf("%s: %s", q.name, r.Errors[0].Message)
			}
			if i < 0 {
				var out map[string][]json.RawMessage
				if err := json.Unmarshal(r.Data, &out); err != nil {
					return nil, err
				}
				sum := sha256.Sum256(r.Data) // to compare answers across versions
				answer = fmt.Sprintf("%d items, %d bytes, sha256 %x", len(out[q.field]), len(r.Data), sum[:4])
				logf("%s: %s; %d runs…", q.name, answer, opts.Runs)
				continue
			}
			ds = append(ds, d)
		}
		rep.Queries = append(rep.Queries, InsightsQuery{Name: q.name, Answer: answer, P50: percentile(ds, 0.5), P99: percentile(ds, 0.99)})
	}
	return rep, nil
}

// insightsCar loads the history of the insights car ending at end, or reopens the node a former run
// kept under opts.CacheDir, whose history ends when that run's did (returned).
func insightsCar(ctx context.Context, opts InsightsOptions, end time.Time, qo *QueryOptions) (*oneCar, time.Time, error) {
	if opts.CacheDir == "" {
		car, err := loadOneCar(ctx, end, qo)
		return car, end, err
	}
	dir := filepath.Join(opts.CacheDir, fmt.Sprintf("insights-v%d-%dd-%dper", insightsCacheVersion, opts.Days, opts.PerRecord))
	metaFile, nodeDir := filepath.Join(dir, "insights.json"), filepath.Join(dir, "node")
	if raw, err := os.ReadFile(metaFile); err == nil {
		var meta insightsCache
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, end, fmt.Errorf("bench: cached insights node %s: %w", metaFile, err)
		}
		owner, err := crypto.HexToECDSA(meta.Owner)
		if err != nil {
			return nil, end, fmt.Errorf("bench: cached insights node %s: %w", metaFile, err)
		}
		logTo(opts.Progress, "reopening the node loaded in %s from %s…", meta.Load.Round(time.Second), dir)
		qn, err := startQueryNodeIn(ctx, nodeDir, false, time.Now)
		if err != nil {
			return nil, end, fmt.Errorf("bench: reopening the cached insights node: %w", err)
		}
		car := &oneCar{qn: qn, c: client.New(qn.url), owner: owner, id: meta.Car, clock: time.Now, load: meta.Load, cached: true}
		car.hist.HistoryRecords, car.hist.HistoryValues = meta.Records, meta.Values
		return car, meta.End, nil
	}
	if err := os.RemoveAll(dir); err != nil { // what an interrupted load left
		return nil, end, fmt.Errorf("bench: insights cache: %w", err)
	}
	if err := os.MkdirAll(nodeDir, 0o755); err != nil {
		return nil, end, fmt.Errorf("bench: insights cache: %w", err)
	}
	car, err := loadOneCarIn(ctx, nodeDir, end, qo)
	if err != nil {
		return nil, end, err
	}
	raw, err := json.Marshal(insightsCache{Owner: hex.EncodeToString(crypto.FromECDSA(car.owner)), Car: car.id, End: end,
		Records: car.hist.HistoryRecords, Values: car.hist.HistoryValues, Load: car.load})
	if err == nil {
		err = os.WriteFile(metaFile, raw, 0o600)
	}
	if err != nil {
		car.qn.stop()
		return nil, end, fmt.Errorf("bench: insights cache: %w", err)
	}
	return car, end, nil
}

// Print writes the report.
func (r *InsightsReport) Print(w io.Writer) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
	cached := ""
	if r.Cached {
		cached = ", reopened from the cache"
	}
	fmt.Fprintf(w, "cores: %d; one car, %d days of 10 signals every second (%d samples to a record): %d records, %d values, %d trips (loaded in %s%s)\n",
		r.Cores, r.Days, r.PerRecord, r.Records, r.Values, r.Trips, r.Load.Round(time.Second), cached)
	fmt.Fprintf(w, "| query over the %d days, as the owner over HTTP | answer | p50 | p99 |\n|---|---|---|---|\n", r.Days)
	for _, q := range r.Queries {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", q.Name, q.Answer, ms(q.P50), ms(q.P99))
	}
}
