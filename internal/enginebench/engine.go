package enginebench

import (
	"context"
	"fmt"
	"sort"

	"github.com/glovebox/glovebox/telemetry"
)

// Engine is one candidate layout for signal values, in a directory of its own. The runner calls Write
// once with the whole dataset (a backfill, one writer), then Checkpoint, then reads.
type Engine interface {
	// Name is the engine's short name in the report.
	Name() string
	// Write stores every value of d in time order of the records, as an indexer catching up on a
	// backfill would, including whatever roll-ups the engine keeps, durably enough to survive Close.
	Write(ctx context.Context, d *Dataset) error
	// Checkpoint folds logs into the main file and reclaims free space, so that Size is what the values
	// take at rest.
	Checkpoint(ctx context.Context) error
	// Size is the bytes on disk of everything the engine keeps for the values.
	Size() (int64, error)
	// Aggregate answers as telemetry.History does (the aggregations FIRST, LAST, AVG, MIN, MAX and COUNT).
	telemetry.History
	// Latest returns the newest value of every signal of vehicle, sorted by name.
	Latest(ctx context.Context, vehicle uint64) ([]telemetry.LatestRow, error)
	// Scan hands every stored value of one signal of vehicle to yield in time order, for the round-trip
	// check.
	Scan(ctx context.Context, vehicle uint64, s *Series, yield func(t int64, v any) error) error
	// Close releases the engine.
	Close() error
}

// Opener opens an engine in an empty directory.
type Opener func(dir string) (Engine, error)

// Engines are the engines this build has, by name; duckdb.go adds DuckDB under the duckdb build tag.
var Engines = map[string]Opener{
	"sqlite-rows":         OpenRows,
	"sqlite-chunks":       OpenChunks,
	"sqlite-chunks-exact": OpenChunksExact,
	"sqlite-chunks-split": OpenChunksSplit,
}

// ExactMean is an Engine whose AVG is the exact sum of the values, rounded once, divided by their count
// (ReferenceExact), rather than FoldHistory's running sum.
type ExactMean interface{ ExactMean() bool }

// EngineNames returns the names of Engines, sorted.
func EngineNames() []string {
	var names []string
	for n := range Engines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// sortLatest sorts rows by name.
func sortLatest(rows []telemetry.LatestRow) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
}

// ReferenceLatest is the newest value of every series of d, sorted by name.
func ReferenceLatest(d *Dataset) []telemetry.LatestRow {
	var rows []telemetry.LatestRow
	for i := range d.Series {
		s := &d.Series[i]
		if n := s.Len(); n > 0 {
			rows = append(rows, telemetry.LatestRow{Name: s.Name, Time: s.Times[n-1], Val: s.Value(n - 1)})
		}
	}
	sortLatest(rows)
	return rows
}

// Reference answers a with telemetry.FoldHistory over the values of d, the answers every engine must
// give byte for byte.
func Reference(d *Dataset, a telemetry.Aggregation) (Answer, error) {
	s := d.Find(a.Signal)
	out := Answer{}
	if s == nil {
		return out, nil
	}
	err := telemetry.FoldHistory(a, func(yield func(t int64, v any) error) error {
		for i := range s.Times {
			if err := yield(s.Times[i], s.Value(i)); err != nil {
				return err
			}
		}
		return nil
	}, out.Put)
	return out, err
}

// ReferenceExact is Reference with AVG the exact sum of each bucket's values, rounded once, divided by
// their count: what FoldHistory would answer if its sum were exact.
func ReferenceExact(d *Dataset, a telemetry.Aggregation) (Answer, error) {
	out, err := Reference(d, a)
	s := d.Find(a.Signal)
	if err != nil || s == nil || s.Nums == nil {
		return out, err
	}
	sums := map[int64]*exactSum{}
	counts := map[int64]int{}
	for i, t := range s.Times {
		if t < a.Lo || t >= a.Hi {
			continue
		}
		b := (t - a.From) / a.Step
		if sums[b] == nil {
			sums[b] = &exactSum{}
		}
		sums[b].add(s.Nums[i])
		counts[b]++
	}
	for k := range out {
		if k.Agg == telemetry.AggAvg {
			out[k] = sums[k.Bucket].round() / float64(counts[k.Bucket])
		}
	}
	return out, nil
}

// Answer is an aggregation's answer: each put value by bucket and aggregation.
type Answer map[AnswerKey]any

// AnswerKey names one value of an Answer.
type AnswerKey struct {
	Bucket int64
	Agg    string
}

// Put is a put function for telemetry.History.Aggregate that records the value.
func (a Answer) Put(b int64, agg string, v any) { a[AnswerKey{b, agg}] = v }

// Diff compares got with want byte for byte (float64s by their bits, int64s as the float64 they stand
// for) and returns how many values differ or are missing on either side, with one example.
func Diff(want, got Answer) (int, string) {
	n := 0
	example := ""
	note := func(k AnswerKey, w, g any) {
		n++
		if example == "" {
			example = fmt.Sprintf("bucket %d %s: want %v, got %v", k.Bucket, k.Agg, w, g)
		}
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || !SameValue(w, g) {
			note(k, w, g)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			note(k, nil, g)
		}
	}
	return n, example
}

// SameValue tells whether two stored or aggregated values are byte-identical.
func SameValue(a, b any) bool {
	if i, ok := a.(int64); ok {
		a = float64(i)
	}
	if i, ok := b.(int64); ok {
		b = float64(i)
	}
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && mathBits(x) == mathBits(y)
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []byte:
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	}
	return false
}
