package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glovebox/glovebox/sim"
)

// SoakOptions sizes the soak; zero fields take the defaults.
type SoakOptions struct {
	Binary   string        // the glovebox binary to run the node with (a child process: its RSS, goroutines, fds)
	Vehicles int           // the simulated fleet; default 1,000
	Duration time.Duration // how long the fleet runs once set up; default 30 minutes
	Every    time.Duration // the sampling interval; default 10 s
	// AppEvery is how often the demo insurer app reads each of its cars over GraphQL; default 1 s.
	AppEvery time.Duration
	Progress io.Writer
}

// SoakSample is the node process at one moment of the soak.
type SoakSample struct {
	At         time.Duration // since the fleet was ready
	RSSBytes   int64
	Goroutines int
	FDs        int
	Errors     int64 // warnings and errors the fleet and the app logged so far (deliveries that failed, records rejected, reads refused)
	// GoHeapBytes is the Go heap in use (runtime.MemStats.HeapInuse) and GoSysBytes all the Go runtime
	// holds from the system (Sys), from the node's /debug/vars.
	GoHeapBytes, GoSysBytes int64
	// SQLiteBytes is what the SQLite engine's allocator (the pure-Go driver's, outside Go's heap) has mapped,
	// and SQLiteAllocs its live allocations: zero unless the node was built with -tags memory.counters.
	SQLiteBytes, SQLiteAllocs int64
}

// SoakReport is what the soak measured.
type SoakReport struct {
	Cores, Vehicles int
	Duration        time.Duration
	Samples         []SoakSample
	Stats           sim.Stats // the fleet's records
	ErrorLines      []string  // the first warnings and errors logged, for the report
}

// Soak runs the simulated fleet (sim.Run, as serve --demo does, with its demo insurer reading its cars)
// against a node in a child process for o.Duration and samples the node's resident memory, goroutines
// (from its runtime profiles, serve --debug) and open file descriptors every o.Every.
func Soak(ctx context.Context, o SoakOptions) (*SoakReport, error) {
	if o.Binary == "" {
		return nil, errors.New("the soak runs the node as a child process: a binary is needed")
	}
	if o.Vehicles == 0 {
		o.Vehicles = 1000
	}
	if o.Duration == 0 {
		o.Duration = 30 * time.Minute
	}
	if o.Every == 0 {
		o.Every = 10 * time.Second
	}
	if o.AppEvery == 0 {
		o.AppEvery = time.Second
	}
	logf := func(format string, args ...any) { logTo(o.Progress, format, args...) }
	bn, err := startBenchNode(ctx, o.Binary)
	if err != nil {
		return nil, err
	}
	defer bn.stop()
	if bn.debug == "" {
		return nil, errors.New("the node did not report its runtime profiles' address (serve --debug)")
	}
	keys, err := os.MkdirTemp("", "glovebox-soak-keys-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(keys)

	rep := &SoakReport{Cores: runtime.NumCPU(), Vehicles: o.Vehicles, Duration: o.Duration}
	counter := &countingHandler{ready: make(chan struct{})}
	logf("setting up %d vehicles and the demo insurer…", o.Vehicles)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		st  sim.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := sim.Run(runCtx, sim.Options{Node: bn.url, Vehicles: o.Vehicles, KeysDir: keys, Seed: 1,
			Logger: slog.New(counter), StatusEvery: time.Hour, DemoApp: true, DemoAppEvery: o.AppEvery})
		done <- result{st, err}
	}()
	select {
	case <-counter.ready:
	case r := <-done:
		return nil, fmt.Errorf("the fleet stopped before it was ready: %w", r.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	logf("the fleet is running: %s, a sample every %s…", o.Duration, o.Every)
	start := time.Now()
	tick := time.NewTicker(o.Every)
	defer tick.Stop()
	for {
		s, err := sampleNode(ctx, bn, time.Since(start), counter.errors.Load())
		if err != nil {
			return nil, err
		}
		rep.Samples = append(rep.Samples, s)
		if len(rep.Samples)%30 == 1 {
			logf("  %s: RSS %.0f MB (Go heap %.0f, Go sys %.0f, SQLite mapped %.0f MB in %d allocations), %d goroutines, %d fds, %d errors",
				s.At.Round(time.Second), float64(s.RSSBytes)/1e6, float64(s.GoHeapBytes)/1e6, float64(s.GoSysBytes)/1e6,
				float64(s.SQLiteBytes)/1e6, s.SQLiteAllocs, s.Goroutines, s.FDs, s.Errors)
		}
		if s.At >= o.Duration {
			break
		}
		select {
		case <-tick.C:
		case r := <-done:
			return nil, fmt.Errorf("the fleet stopped: %w", r.err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cancel()
	r := <-done
	if r.err != nil {
		return nil, fmt.Errorf("the fleet: %w", r.err)
	}
	rep.Stats = r.st
	rep.ErrorLines = counter.lines()
	return rep, nil
}

// sampleNode reads the node process's figures.
func sampleNode(ctx context.Context, bn *benchNode, at time.Duration, errs int64) (SoakSample, error) {
	s := SoakSample{At: at, RSSBytes: procMemory(bn.pid, "VmRSS:"), Errors: errs}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", bn.pid))
	if err != nil {
		return s, fmt.Errorf("couldn't count the node's file descriptors: %w", err)
	}
	s.FDs = len(fds)
	if s.Goroutines, err = goroutines(ctx, bn.debug); err != nil {
		return s, fmt.Errorf("couldn't count the node's goroutines: %w", err)
	}
	if err := memoryVars(ctx, bn.debug, &s); err != nil {
		return s, fmt.Errorf("couldn't read the node's memory figures: %w", err)
	}
	return s, nil
}

// memoryVars reads Go's and SQLite's memory figures from a node's /debug/vars (serve --debug) into s.
func memoryVars(ctx context.Context, debug string, s *SoakSample) error {
	resp, err := debugGet(ctx, debug+"/debug/vars")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var vars struct {
		Memstats struct{ HeapInuse, Sys int64 }
		SQLite   struct{ Allocs, Bytes int64 } `json:"sqlite"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		return fmt.Errorf("couldn't decode /debug/vars: %w", err)
	}
	s.GoHeapBytes, s.GoSysBytes = vars.Memstats.HeapInuse, vars.Memstats.Sys
	s.SQLiteBytes, s.SQLiteAllocs = vars.SQLite.Bytes, vars.SQLite.Allocs
	return nil
}

// goroutines reads the number of goroutines from a node's runtime profiles at debug.
func goroutines(ctx context.Context, debug string) (int, error) {
	resp, err := debugGet(ctx, debug+"/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	// "goroutine profile: total 123"
	n, err := strconv.Atoi(strings.TrimSpace(line[strings.LastIndexByte(line, ' ')+1:]))
	if err != nil {
		return 0, fmt.Errorf("unexpected goroutine profile %q", line)
	}
	io.Copy(io.Discard, resp.Body)
	return n, nil
}

// countingHandler is the fleet's logger: it counts warnings and errors, keeps the first few, and closes
// ready at "fleet ready".
type countingHandler struct {
	errors atomic.Int64
	ready  chan struct{}
	once   sync.Once
	mu     sync.Mutex
	first  []string
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.errors.Add(1)
		h.mu.Lock()
		if len(h.first) < 10 {
			var b strings.Builder
			b.WriteString(r.Message)
			r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
			h.first = append(h.first, b.String())
		}
		h.mu.Unlock()
	}
	if r.Message == "fleet ready" {
		h.once.Do(func() { close(h.ready) })
	}
	return nil
}

func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.first...)
}

// Trend is a series' change over the soak: the means of its first and last fifth, and the slope of a
// least-squares line through it, per hour.
type Trend struct {
	First, Last, PerHour float64
}

// trend fits the samples' values from the warm-up (the first tenth) on.
func trend(samples []SoakSample, value func(SoakSample) float64) Trend {
	if len(samples) < 10 {
		return Trend{}
	}
	s := samples[len(samples)/10:]
	var sx, sy, sxx, sxy float64
	for _, p := range s {
		x, y := p.At.Hours(), value(p)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(s))
	var t Trend
	if d := n*sxx - sx*sx; d != 0 {
		t.PerHour = (n*sxy - sx*sy) / d
	}
	fifth := max(1, len(s)/5)
	for _, p := range s[:fifth] {
		t.First += value(p) / float64(fifth)
	}
	for _, p := range s[len(s)-fifth:] {
		t.Last += value(p) / float64(fifth)
	}
	return t
}

// Print writes the report as a Markdown table.
func (r *SoakReport) Print(w io.Writer) {
	fmt.Fprintf(w, "| soak: %d simulated vehicles and the demo insurer app for %s (%d cores) | first fifth | last fifth | trend per hour |\n|---|---|---|---|\n",
		r.Vehicles, r.Duration, r.Cores)
	rows := []struct {
		name  string
		unit  float64
		value func(SoakSample) float64
	}{
		{"node RSS (MB)", 1e6, func(s SoakSample) float64 { return float64(s.RSSBytes) }},
		{"Go heap in use (MB)", 1e6, func(s SoakSample) float64 { return float64(s.GoHeapBytes) }},
		{"Go runtime's memory from the system (MB)", 1e6, func(s SoakSample) float64 { return float64(s.GoSysBytes) }},
		{"SQLite allocator's mapped memory (MB; -tags memory.counters)", 1e6, func(s SoakSample) float64 { return float64(s.SQLiteBytes) }},
		{"SQLite's live allocations (thousands; -tags memory.counters)", 1e3, func(s SoakSample) float64 { return float64(s.SQLiteAllocs) }},
		{"goroutines", 1, func(s SoakSample) float64 { return float64(s.Goroutines) }},
		{"open file descriptors", 1, func(s SoakSample) float64 { return float64(s.FDs) }},
	}
	for _, row := range rows {
		t := trend(r.Samples, row.value)
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %+.1f |\n", row.name, t.First/row.unit, t.Last/row.unit, t.PerHour/row.unit)
	}
	var errs int64
	if len(r.Samples) > 0 {
		errs = r.Samples[len(r.Samples)-1].Errors
	}
	fmt.Fprintf(w, "| records accepted / rejected / deliveries failed | %d / %d / %d | | |\n", r.Stats.Accepted, r.Stats.RejectedTotal(), r.Stats.Failures)
	fmt.Fprintf(w, "| warnings and errors logged by the fleet and the app | %d | | |\n", errs)
	for _, l := range r.ErrorLines {
		fmt.Fprintf(w, "\n    %s", l)
	}
	if len(r.ErrorLines) > 0 {
		fmt.Fprintln(w)
	}
}

// CSV writes the samples: seconds since the fleet was ready, RSS bytes, goroutines, fds, errors, Go heap in
// use, Go's memory from the system, the SQLite allocator's mapped bytes and live allocations.
func (r *SoakReport) CSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "seconds,rss_bytes,goroutines,fds,errors,go_heap_bytes,go_sys_bytes,sqlite_bytes,sqlite_allocs")
	for _, s := range r.Samples {
		fmt.Fprintf(bw, "%.0f,%d,%d,%d,%d,%d,%d,%d,%d\n", s.At.Seconds(), s.RSSBytes, s.Goroutines, s.FDs, s.Errors,
			s.GoHeapBytes, s.GoSysBytes, s.SQLiteBytes, s.SQLiteAllocs)
	}
	return bw.Flush()
}
