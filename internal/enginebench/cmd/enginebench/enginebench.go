// Command enginebench compares storage engines for signal values on a simulated month of one vehicle
// (package internal/enginebench; docs/columnar.md holds the figures). Each engine runs in a process of
// its own, so that its memory growth is its own. Build with -tags duckdb to include DuckDB; from
// internal/enginebench, a module of its own so that its dependencies stay out of the node's go.mod:
//
//	go run -tags duckdb ./cmd/enginebench -days 30
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/glovebox/glovebox/internal/enginebench"
)

func main() {
	log.SetFlags(0)
	days := flag.Int("days", 30, "days of data (one vehicle, 1 Hz while active)")
	seed := flag.Uint64("seed", 1, "the simulator's seed")
	dir := flag.String("dir", "", "work directory (default: a new temporary one, removed at the end)")
	engines := flag.String("engines", strings.Join(enginebench.EngineNames(), ","), "engines to compare, comma-separated")
	runs := flag.Int("runs", 50, "runs of each timed query")
	dense := flag.Bool("dense", false, "every signal every second, parked or not (the simulator's devices send every tenth second while parked)")
	child := flag.String("child", "", "internal: measure this one engine on -data and print the result as JSON")
	data := flag.String("data", "", "internal: the dataset file for -child")
	flag.Parse()
	ctx := context.Background()

	if *child != "" {
		open, ok := enginebench.Engines[*child]
		if !ok {
			log.Fatalf("no engine %q in this build (have %s)", *child, strings.Join(enginebench.EngineNames(), ", "))
		}
		d, err := enginebench.Load(*data)
		if err != nil {
			log.Fatal(err)
		}
		res, err := enginebench.Measure(ctx, open, *dir, d, *runs)
		if err != nil {
			log.Fatal(err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			log.Fatal(err)
		}
		return
	}

	work := *dir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "enginebench-"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(work)
	}
	kind := "sim"
	if *dense {
		kind = "dense"
	}
	path := filepath.Join(work, fmt.Sprintf("dataset-%d-%dd-%s.gob", *seed, *days, kind))
	if _, err := os.Stat(path); err != nil {
		t0 := time.Now()
		d, err := enginebench.Generate(*seed, *days, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			log.Fatal(err)
		}
		if *dense {
			d = d.Dense()
		}
		if err := d.Save(path); err != nil {
			log.Fatal(err)
		}
		log.Printf("simulated %d values of %d signals in %s", d.Values(), len(d.Series), time.Since(t0).Round(time.Second))
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	var results []*enginebench.Result
	for _, name := range strings.Split(*engines, ",") {
		edir, err := os.MkdirTemp(work, name+"-")
		if err != nil {
			log.Fatal(err)
		}
		cmd := exec.Command(self, "-child", name, "-data", path, "-dir", edir, "-runs", fmt.Sprint(*runs))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		var r enginebench.Result
		if err := json.Unmarshal(out, &r); err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		results = append(results, &r)
		os.RemoveAll(edir)
		log.Printf("%s done", name)
	}
	fmt.Printf("%s, %s/%s, %d CPUs, %s\n\n", time.Now().UTC().Format(time.RFC3339), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Print(enginebench.Table(results))
	vps, rps, err := enginebench.ParseRate(*seed, 6)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\nParsing stored records before any engine (telemetry.Catalog.ParseStored, one goroutine, six simulated hours): %.0f values/s, %.0f records/s\n", vps, rps)
}
