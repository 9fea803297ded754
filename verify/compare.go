package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/glovebox/glovebox/ledger"
)

// compareVehicles reads vehicles back from the node (all of them, or a sample of MaxVehicleReads) and
// compares each with the replayed state's view. If one differs and the node has moved on since, the
// auditor catches up (see compareState) and reads them all again, once. It returns the number of vehicles
// read.
func (a *auditor) compareVehicles(ctx context.Context) (int, error) {
	limit := a.opts.MaxVehicleReads
	if limit == 0 {
		limit = DefaultMaxVehicleReads
	}
	if limit < 0 {
		return 0, nil
	}
	for retried := false; ; retried = true {
		ids := sampleIDs(a.vehicleIDs(), limit)
		err := a.readVehicles(ctx, ids)
		if err == nil {
			return len(ids), nil
		}
		if !retried {
			if dg, derr := a.c.StateDigest(ctx); derr == nil && dg.TreeSize > a.st.Size() {
				if err := a.compareState(ctx); err != nil {
					return 0, err
				}
				continue
			}
		}
		return 0, err
	}
}

// vehicleIDs returns the ids of every vehicle in the replayed state, in order. Ids are given out
// sequentially from 1 and never removed.
func (a *auditor) vehicleIDs() []uint64 {
	var ids []uint64
	for id := uint64(1); ; id++ {
		if _, ok := a.st.Vehicle(id); !ok {
			return ids
		}
		ids = append(ids, id)
	}
}

// sampleIDs returns ids if there are at most limit of them, otherwise limit ids spread evenly over them,
// the first and the last included.
func sampleIDs(ids []uint64, limit int) []uint64 {
	if len(ids) <= limit {
		return ids
	}
	if limit == 1 {
		return ids[:1]
	}
	out := make([]uint64, limit)
	for i := range out {
		out[i] = ids[int64(i)*int64(len(ids)-1)/int64(limit-1)]
	}
	return out
}

// readVehicles reads the vehicles from the node, maxInFlight at a time, and returns a failure naming the
// lowest id whose answer differs from the replay's.
func (a *auditor) readVehicles(ctx context.Context, ids []uint64) error {
	want := make([]ledger.Vehicle, len(ids))
	for i, id := range ids {
		want[i], _ = a.st.Vehicle(id)
	}
	errs := make([]error, len(ids))
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards done
		done int64
	)
	for range min(maxInFlight, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				got, err := a.c.Vehicle(ctx, ids[i])
				if err != nil {
					errs[i] = fmt.Errorf("vehicle %d: the node's answer: %w", ids[i], err)
				} else if field, g, w := diffVehicle(got, &want[i]); field != "" {
					errs[i] = fmt.Errorf("vehicle %d: field %s: the node says %s, the replay %s", ids[i], field, g, w)
				}
				mu.Lock()
				done++
				a.progress(ProgressCompare, done, int64(len(ids)))
				mu.Unlock()
			}
		}()
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return &Failure{Index: -1, Stage: StageVehicles, Err: err}
		}
	}
	return nil
}

// diffVehicle returns the JSON name of the first field in which got differs from want, with both values
// as JSON (shortened), or "" when they are equal. Fields are compared by their JSON encoding, as the node
// serves them.
func diffVehicle(got, want *ledger.Vehicle) (field, gotJSON, wantJSON string) {
	g, w := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	t := g.Type()
	for i := range t.NumField() {
		gb, gerr := json.Marshal(g.Field(i).Interface())
		wb, werr := json.Marshal(w.Field(i).Interface())
		if gerr != nil || werr != nil || !bytes.Equal(gb, wb) {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			return name, shorten(gb), shorten(wb)
		}
	}
	return "", "", ""
}

func shorten(b []byte) string {
	const max = 160
	if len(b) <= max {
		return string(b)
	}
	return strings.ToValidUTF8(string(b[:max]), "") + "…"
}
