package chunk_test

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/chunk"
)

// simDays is how much of the simulator's data the benchmarks encode: a week of one car, every signal it
// sends, cut into the stores' chunks (per UTC hour, at most chunk.MaxValues values).
const simDays = 7

// piece is one chunk's worth of one signal's values.
type piece struct {
	kind  string // "numbers", "strings" or "locations"
	times []int64
	nums  []float64
	strs  []string
	locs  []chunk.Location
}

var simulated = sync.OnceValues(func() ([]piece, error) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f := sim.NewFleet(1, 1, start)
	f.Sign = false
	end := start.AddDate(0, 0, simDays).UnixMilli()
	type value struct {
		t int64
		v any
	}
	series := map[string][]value{}
	for f.Now().UnixMilli() < end {
		for _, r := range f.Step(time.Second) {
			for _, s := range r.Signals {
				series[s.Name] = append(series[s.Name], value{s.Timestamp.UnixMilli(), s.Value})
			}
		}
	}
	var pieces []piece
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range series {
			if !yield(n) {
				return
			}
		}
	}) {
		vs := series[name]
		slices.SortStableFunc(vs, func(a, b value) int { return int(a.t - b.t) })
		vs = slices.CompactFunc(vs, func(a, b value) bool { return a.t == b.t }) // one value per ms, as the stores keep
		var p piece
		for i, v := range vs {
			if i > 0 && (v.t/3_600_000 != vs[i-1].t/3_600_000 || len(p.times) == chunk.MaxValues) {
				pieces = append(pieces, p)
				p = piece{}
			}
			p.times = append(p.times, v.t)
			switch x := v.v.(type) {
			case float64:
				p.kind, p.nums = "numbers", append(p.nums, x)
			case bool:
				n := 0.0
				if x {
					n = 1
				}
				p.kind, p.nums = "numbers", append(p.nums, n)
			case string:
				p.kind, p.strs = "strings", append(p.strs, x)
			case []string:
				j, err := json.Marshal(x)
				if err != nil {
					return nil, err
				}
				p.kind, p.strs = "strings", append(p.strs, string(j))
			case telemetry.Location:
				p.kind, p.locs = "locations", append(p.locs, chunk.Location{Lat: x.Latitude, Lon: x.Longitude, HDOP: x.HDOP})
			default:
				panic("the simulator sent a value of an unknown type") // a bug in this benchmark
			}
		}
		pieces = append(pieces, p)
	}
	return pieces, nil
})

func encode(b testing.TB, p *piece) []byte {
	switch p.kind {
	case "numbers":
		var c chunk.Floats
		for i, t := range p.times {
			if err := c.Append(t, p.nums[i]); err != nil {
				b.Fatal(err)
			}
		}
		_ = c.Summary()
		return c.Bytes()
	case "strings":
		var c chunk.Strings
		for i, t := range p.times {
			if err := c.Append(t, p.strs[i]); err != nil {
				b.Fatal(err)
			}
		}
		return c.Bytes()
	default:
		var c chunk.Locations
		for i, t := range p.times {
			if err := c.Append(t, p.locs[i]); err != nil {
				b.Fatal(err)
			}
		}
		return c.Bytes()
	}
}

// kinds are the benchmarks' subsets of the simulated chunks.
var kinds = []string{"numbers", "strings", "locations", "all"}

func selected(b *testing.B, kind string) []piece {
	pieces, err := simulated()
	if err != nil {
		b.Fatal(err)
	}
	var out []piece
	for _, p := range pieces {
		if kind == "all" || p.kind == kind {
			out = append(out, p)
		}
	}
	return out
}

// BenchmarkEncode encodes a simulated week chunk by chunk (numbers with their summaries and exact sums)
// and reports values/s and bytes/value.
func BenchmarkEncode(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			pieces := selected(b, kind)
			values, size := 0, 0
			for _, p := range pieces {
				values += len(p.times)
				size += len(encode(b, &p))
			}
			b.ResetTimer()
			for b.Loop() {
				for i := range pieces {
					encode(b, &pieces[i])
				}
			}
			b.ReportMetric(float64(values)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
			b.ReportMetric(float64(size)/float64(values), "bytes/value")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkDecode decodes the same chunks into reused slices.
func BenchmarkDecode(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			pieces := selected(b, kind)
			encoded := make([][]byte, len(pieces))
			values, size := 0, 0
			for i := range pieces {
				encoded[i] = slices.Clone(encode(b, &pieces[i]))
				values += len(pieces[i].times)
				size += len(encoded[i])
			}
			var ts []int64
			var fs []float64
			var ss []string
			var ls []chunk.Location
			b.ResetTimer()
			for b.Loop() {
				for i, e := range encoded {
					var err error
					switch pieces[i].kind {
					case "numbers":
						ts, fs, err = chunk.DecodeFloats(e, ts[:0], fs[:0])
					case "strings":
						ts, ss, err = chunk.DecodeStrings(e, ts[:0], ss[:0])
					default:
						ts, ls, err = chunk.DecodeLocations(e, ts[:0], ls[:0])
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(values)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
			b.ReportMetric(float64(size)/float64(values), "bytes/value")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestTheSimulatedWeekRoundTrips checks the benchmarks' data decodes to what was encoded, so the figures
// measure working code.
func TestTheSimulatedWeekRoundTrips(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates a week")
	}
	pieces, err := simulated()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string][2]int{}
	for _, p := range pieces {
		c := count[p.kind]
		count[p.kind] = [2]int{c[0] + 1, c[1] + len(p.times)}
		e := encode(t, &p)
		var ts []int64
		var ok bool
		switch p.kind {
		case "numbers":
			var fs []float64
			ts, fs, err = chunk.DecodeFloats(e, nil, nil)
			ok = slices.Equal(fs, p.nums)
		case "strings":
			var ss []string
			ts, ss, err = chunk.DecodeStrings(e, nil, nil)
			ok = slices.Equal(ss, p.strs)
		default:
			var ls []chunk.Location
			ts, ls, err = chunk.DecodeLocations(e, nil, nil)
			ok = slices.Equal(ls, p.locs)
		}
		if err != nil || !ok || !slices.Equal(ts, p.times) {
			t.Fatalf("a %s chunk at %d did not round-trip: %v", p.kind, p.times[0], err)
		}
	}
	t.Logf("chunks and values by kind: %v", count)
}
