package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"
)

// VisibilityOptions sizes the benchmark of the time from a record's acknowledgement to its value in
// signalsLatest; zero fields take the defaults.
type VisibilityOptions struct {
	Binary   string // run the node as this glovebox binary; empty: in this process
	Vehicles int    // vehicles sending one record a second (default 1,000)
	Watched  int    // of them, those whose owner polls signalsLatest (default 20)
	Rounds   int    // seconds of load (default 30)
	// Poll is the time between two signalsLatest queries of one watcher (default 10 ms: 2,000 queries a
	// second from the 20 watchers, the rate of the query benchmark).
	Poll     time.Duration
	Progress io.Writer
}

// VisibilityReport is what the visibility benchmark measured.
type VisibilityReport struct {
	Cores, Vehicles, Watched, Samples int
	// P50, P99 and Max are from a record's acknowledgement to the first signalsLatest answer with its value.
	P50, P99, Max time.Duration
}

// Print writes the report as a Markdown table.
func (r *VisibilityReport) Print(w io.Writer) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Fprintf(w, "| acknowledgement → signalsLatest: %d vehicles at 1 Hz, %d owners polling (%d cores) | |\n|---|---|\n",
		r.Vehicles, r.Watched, r.Cores)
	fmt.Fprintf(w, "| samples | %d |\n| p50 | %.1f ms |\n| p99 | %.1f ms |\n| max | %.1f ms |\n", r.Samples, ms(r.P50), ms(r.P99), ms(r.Max))
}

// Visibility measures how soon a value the node acknowledged is answered by signalsLatest: Vehicles send
// one record (speed) a second; the owners of Watched of them poll signalsLatest every Poll, and each
// record of a watched vehicle counts from its acknowledgement to the first answer carrying its timestamp.
func Visibility(ctx context.Context, o VisibilityOptions) (*VisibilityReport, error) {
	if o.Vehicles == 0 {
		o.Vehicles = 1000
	}
	if o.Watched == 0 {
		o.Watched = 20
	}
	o.Watched = min(o.Watched, o.Vehicles)
	if o.Rounds == 0 {
		o.Rounds = 30
	}
	if o.Poll == 0 {
		o.Poll = 10 * time.Millisecond
	}
	logf := func(format string, args ...any) { logTo(o.Progress, format, args...) }
	rep := &VisibilityReport{Cores: runtime.NumCPU(), Vehicles: o.Vehicles, Watched: o.Watched}
	bn, c, fl, err := startPushFleet(ctx, o.Binary, o.Vehicles, logf)
	if err != nil {
		return nil, err
	}
	defer bn.stop()
	devs, ids, owners := fl.devs, fl.ids, fl.owners
	tokens := make([]string, o.Watched)
	for i := range tokens {
		if tokens[i], err = SignIn(ctx, bn.url, owners[i%len(owners)]); err != nil {
			return nil, err
		}
	}
	// Each watcher polls its vehicle and notes when it first saw each timestamp.
	var mu sync.Mutex
	seen := make([]map[int64]time.Time, o.Watched)
	for i := range seen {
		seen[i] = map[int64]time.Time{}
	}
	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	errs := make(chan error, o.Watched)
	for i := range o.Watched {
		q := fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { timestamp } } }`, ids[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(o.Poll)
			defer tick.Stop()
			for {
				body, err := postGraphQL(watchCtx, bn.url, tokens[i], q)
				now := time.Now()
				if watchCtx.Err() != nil {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				var ans struct {
					Data struct {
						SignalsLatest *struct {
							Speed *struct{ Timestamp time.Time }
						}
					}
				}
				if err := json.Unmarshal([]byte(body), &ans); err != nil {
					errs <- fmt.Errorf("signalsLatest: %w: %.200s", err, body)
					return
				}
				if l := ans.Data.SignalsLatest; l != nil && l.Speed != nil {
					ts := l.Speed.Timestamp.UnixMilli()
					mu.Lock()
					if _, ok := seen[i][ts]; !ok {
						seen[i][ts] = now
					}
					mu.Unlock()
				}
				select {
				case <-watchCtx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	f := &pushFleet{devs: devs, ids: ids}
	logf("%d rounds of one record per vehicle a second, %d owners polling signalsLatest…", o.Rounds, o.Watched)
	type sample struct {
		vehicle int
		at      int64
		acked   time.Time
	}
	var samples []sample
	var ackMu sync.Mutex
	err = f.oneHz(ctx, c, o.Rounds, func(i int, at, now time.Time) {
		if i < o.Watched {
			ackMu.Lock()
			samples = append(samples, sample{i, at.UnixMilli(), now})
			ackMu.Unlock()
		}
	})
	if err != nil {
		return nil, err
	}
	// The last round's values: wait until every one was seen (or 10 s).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		all := true
		for _, s := range samples {
			_, ok := seen[s.vehicle][s.at]
			all = all && ok
		}
		mu.Unlock()
		if all {
			break
		}
	}
	cancel()
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	var lat []time.Duration
	mu.Lock()
	defer mu.Unlock()
	for _, s := range samples {
		at, ok := seen[s.vehicle][s.at]
		if !ok {
			return nil, fmt.Errorf("vehicle %d: the value of %s was never answered by signalsLatest", ids[s.vehicle], time.UnixMilli(s.at).UTC().Format(time.RFC3339))
		}
		lat = append(lat, max(at.Sub(s.acked), 0))
	}
	slices.Sort(lat)
	rep.Samples = len(lat)
	rep.P50, rep.P99, rep.Max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	return rep, nil
}
