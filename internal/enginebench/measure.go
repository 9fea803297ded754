package enginebench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/glovebox/glovebox/telemetry"
)

// Result is what Measure found for one engine.
type Result struct {
	Engine        string
	Values        int
	WriteSeconds  float64
	ValuesPerSec  float64
	Bytes         int64
	BytesPerValue float64
	// Queries are the latencies of each timed query, by name (Queries' names).
	Queries []QueryResult
	// Lossless tells whether every stored value read back bit for bit; Mismatch gives the first that did not.
	Lossless bool
	Mismatch string
	// RSSGrowthMB is the peak resident memory during Write and Checkpoint less the resident memory before
	// them, where the platform tells (Linux); -1 otherwise. It includes the Go collector's headroom, which
	// grows with the live heap (the dataset, the same for every engine).
	RSSGrowthMB float64
}

// QueryResult is the latency and the correctness of one query.
type QueryResult struct {
	Name     string
	Runs     int
	P50, P99 time.Duration
	// Differ counts the answer's values that are not byte-identical to the reference (telemetry.FoldHistory
	// over the dataset for aggregations, ReferenceExact for an ExactMean engine, the dataset's newest
	// values for Latest); Example shows one.
	Differ  int
	Example string
}

// Query is one timed read.
type Query struct {
	Name string
	Agg  *telemetry.Aggregation // nil: Latest
}

// Queries are the reads Measure times over d: hourly and daily FIRST, LAST, AVG, MIN, MAX and COUNT of
// speed over the whole period (30 days by default), the same of the odometer by hour, and the latest
// value of every signal.
func Queries(d *Dataset) []Query {
	aggs := []string{telemetry.AggAvg, telemetry.AggMax, telemetry.AggMin, telemetry.AggFirst, telemetry.AggLast, telemetry.AggCount}
	agg := func(signal string, step int64) *telemetry.Aggregation {
		return &telemetry.Aggregation{Vehicle: d.Vehicle, Signal: signal, Kind: telemetry.KindNumber, From: d.Lo, Step: step,
			Lo: d.Lo, Hi: d.Hi, Aggs: aggs}
	}
	return []Query{
		{Name: "speed by hour", Agg: agg("speed", 3_600_000)},
		{Name: "speed by day", Agg: agg("speed", 86_400_000)},
		{Name: "odometer by hour", Agg: agg("powertrainTransmissionTravelledDistance", 3_600_000)},
		{Name: "latest"},
	}
}

// Measure opens an engine in dir (empty), writes d, checkpoints, checks the round trip, and times each of
// Queries runs times.
func Measure(ctx context.Context, open Opener, dir string, d *Dataset, runs int) (*Result, error) {
	e, err := open(dir)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	res := &Result{Engine: e.Name(), Values: d.Values(), RSSGrowthMB: -1}
	runtime.GC()
	debug.FreeOSMemory()
	rss0, rssOK := resetPeakRSS()

	start := time.Now()
	if err := e.Write(ctx, d); err != nil {
		return nil, fmt.Errorf("%s: %w", e.Name(), err)
	}
	res.WriteSeconds = time.Since(start).Seconds()
	res.ValuesPerSec = float64(res.Values) / res.WriteSeconds
	if err := e.Checkpoint(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", e.Name(), err)
	}
	if res.Bytes, err = e.Size(); err != nil {
		return nil, fmt.Errorf("%s: %w", e.Name(), err)
	}
	res.BytesPerValue = float64(res.Bytes) / float64(res.Values)
	if rssOK {
		if peak, ok := peakRSS(); ok {
			res.RSSGrowthMB = float64(peak-rss0) / (1 << 20)
		}
	}

	for _, q := range Queries(d) {
		qr := QueryResult{Name: q.Name}
		var lat []time.Duration
		for i := 0; i < runs; i++ {
			t0 := time.Now()
			if q.Agg == nil {
				got, err := e.Latest(ctx, d.Vehicle)
				if err != nil {
					return nil, fmt.Errorf("%s: %s: %w", e.Name(), q.Name, err)
				}
				lat = append(lat, time.Since(t0))
				if i == 0 {
					qr.Differ, qr.Example = diffLatest(ReferenceLatest(d), got)
				}
				continue
			}
			got := Answer{}
			if err := e.Aggregate(ctx, *q.Agg, got.Put); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", e.Name(), q.Name, err)
			}
			lat = append(lat, time.Since(t0))
			if i == 0 {
				ref := Reference
				if x, ok := e.(ExactMean); ok && x.ExactMean() {
					ref = ReferenceExact
				}
				want, err := ref(d, *q.Agg)
				if err != nil {
					return nil, err
				}
				qr.Differ, qr.Example = Diff(want, got)
			}
		}
		slices.Sort(lat)
		qr.Runs = len(lat)
		qr.P50 = lat[len(lat)/2]
		qr.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
		res.Queries = append(res.Queries, qr)
	}
	res.Lossless = true
	for i := range d.Series {
		s := &d.Series[i]
		j := 0
		err := e.Scan(ctx, d.Vehicle, s, func(t int64, v any) error {
			if j >= s.Len() || t != s.Times[j] || !SameValue(s.Value(j), v) {
				return fmt.Errorf("%s value %d: stored %d %v", s.Name, j, t, v)
			}
			j++
			return nil
		})
		if err == nil && j != s.Len() {
			err = fmt.Errorf("%s: %d of %d values read back", s.Name, j, s.Len())
		}
		if err != nil {
			res.Lossless, res.Mismatch = false, err.Error()
			break
		}
	}
	return res, nil
}

func diffLatest(want, got []telemetry.LatestRow) (int, string) {
	n := 0
	example := ""
	for i := 0; i < max(len(want), len(got)); i++ {
		if i < len(want) && i < len(got) && want[i].Name == got[i].Name && want[i].Time == got[i].Time && SameValue(want[i].Val, got[i].Val) {
			continue
		}
		n++
		if example == "" {
			example = fmt.Sprintf("row %d: want %v, got %v", i, at(want, i), at(got, i))
		}
	}
	return n, example
}

func at(rows []telemetry.LatestRow, i int) any {
	if i < len(rows) {
		return rows[i]
	}
	return nil
}

// resetPeakRSS resets the kernel's peak resident set size of this process (Linux) and returns the
// current resident size in bytes.
func resetPeakRSS() (int64, bool) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return 0, false
	}
	return procStatus("VmRSS:")
}

// peakRSS is the peak resident set size in bytes since the last reset (Linux).
func peakRSS() (int64, bool) { return procStatus("VmHWM:") }

func procStatus(key string) (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err == nil
			}
		}
	}
	return 0, false
}
