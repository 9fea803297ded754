// Package enginebench compares storage engines for signal values on the same realistic data: today's
// row-per-value SQLite layout (store/sqlite, the baseline), compressed chunk rows in SQLite (Prometheus's
// Gorilla-style XOR codec with per-chunk roll-ups, chunks.go) and, built with the duckdb tag, DuckDB
// embedded (duckdb.go). It measures what issue 16 asks of a columnar layout: the rate a single writer
// indexes a backfill at, bytes per value on disk after a checkpoint, the latency of a 30-day aggregation
// and of the latest values, memory growth, and whether every answer is byte-identical to
// telemetry.FoldHistory's over the same values. docs/columnar.md holds the figures and the command that
// re-runs it (cmd/enginebench). It is a Go module of its own (replacing the node's module with this
// repository), so that Prometheus's and DuckDB's requirements never enter the node's go.mod and neither
// go build, go vet nor go test of the node's module compiles it.
package enginebench

import (
	"encoding/gob"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/telemetry"
)

// Signals are the catalogue signals a Dataset keeps of what the simulator measures: slowly changing
// floats (speed, odometer, altitude, heading, voltage, temperature, energy level, engine speed), a
// boolean, a location and a string. A vehicle keeps those its powertrain has.
var Signals = []string{
	"speed", "powertrainTransmissionTravelledDistance", "currentLocationAltitude", "currentLocationHeading",
	"lowVoltageBatteryCurrentVoltage", "exteriorAirTemperature", "powertrainFuelSystemRelativeLevel",
	"powertrainTractionBatteryStateOfChargeCurrent", "powertrainCombustionEngineSpeed", "isIgnitionOn",
	telemetry.SignalLocation, "powertrainType",
}

// Series is the values of one signal of one vehicle in time order, one per millisecond at most, in the
// form the signals table holds them: numbers and booleans (0 or 1) in Nums, strings in Strs, locations as
// latitude, longitude and hdop in Locs.
type Series struct {
	Name  string
	Kind  telemetry.Kind
	Times []int64 // unix ms, ascending
	Nums  []float64
	Strs  []string
	Locs  [][3]float64
}

// Len is the number of values.
func (s *Series) Len() int { return len(s.Times) }

// Value returns value i in the form telemetry.Aggregation's callers get it: a float64, a string, or an
// encoded location.
func (s *Series) Value(i int) any {
	switch s.Kind {
	case telemetry.KindString, telemetry.KindStrings:
		return s.Strs[i]
	case telemetry.KindLocation:
		l := s.Locs[i]
		return telemetry.EncodeLocation(l[0], l[1], l[2])
	}
	return s.Nums[i]
}

// Dataset is what one vehicle measured over a period: Lo and Hi bound the times ([Lo, Hi), unix ms,
// Lo on a UTC day).
type Dataset struct {
	Vehicle uint64
	Lo, Hi  int64
	Series  []Series
}

// Values is the number of values in all series.
func (d *Dataset) Values() int {
	n := 0
	for i := range d.Series {
		n += d.Series[i].Len()
	}
	return n
}

// Find returns the series of signal, nil if there is none.
func (d *Dataset) Find(signal string) *Series {
	for i := range d.Series {
		if d.Series[i].Name == signal {
			return &d.Series[i]
		}
	}
	return nil
}

// Generate runs the project's simulator for one vehicle (the fleet's first, of seed) at 1 Hz for days
// days from start and keeps the values of Signals: every second while the vehicle is boarded or driven,
// every tenth while it is parked, as the simulator's devices send them (backfills after coverage gaps
// included).
func Generate(seed uint64, days int, start time.Time) (*Dataset, error) {
	if days <= 0 {
		return nil, fmt.Errorf("a dataset needs at least one day, not %d", days)
	}
	start = start.UTC().Truncate(24 * time.Hour)
	f := sim.NewFleet(seed, 1, start)
	f.Sign = false
	d := &Dataset{Vehicle: f.Spec(0).VehicleID, Lo: start.UnixMilli(), Hi: start.AddDate(0, 0, days).UnixMilli()}
	idx := map[string]int{}
	for _, name := range Signals {
		sig, ok := telemetry.DefaultCatalog.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("the catalogue has no signal %s", name)
		}
		idx[name] = len(d.Series)
		d.Series = append(d.Series, Series{Name: name, Kind: sig.Kind})
	}
	for f.Now().UnixMilli() < d.Hi {
		for _, r := range f.Step(time.Second) {
			for _, v := range r.Signals {
				i, ok := idx[v.Name]
				if !ok {
					continue
				}
				if err := d.Series[i].add(v.Timestamp.UnixMilli(), v.Value); err != nil {
					return nil, err
				}
			}
		}
	}
	kept := d.Series[:0]
	for _, s := range d.Series {
		s.sort()
		if s.Len() > 0 {
			kept = append(kept, s)
		}
	}
	d.Series = kept
	return d, nil
}

// Dense returns d with a value of every series at every whole second from its first value to d.Hi: the
// value last measured at or before that second. It models a device that sends every signal at 1 Hz
// whether the vehicle moves or not (the simulator's devices send every tenth second while parked).
func (d *Dataset) Dense() *Dataset {
	o := &Dataset{Vehicle: d.Vehicle, Lo: d.Lo, Hi: d.Hi}
	for _, s := range d.Series {
		if s.Len() == 0 {
			continue
		}
		n := Series{Name: s.Name, Kind: s.Kind}
		j := 0
		for t := (s.Times[0] + 999) / 1000 * 1000; t < d.Hi; t += 1000 {
			for j+1 < s.Len() && s.Times[j+1] <= t {
				j++
			}
			n.Times = append(n.Times, t)
			switch {
			case s.Nums != nil:
				n.Nums = append(n.Nums, s.Nums[j])
			case s.Strs != nil:
				n.Strs = append(n.Strs, s.Strs[j])
			case s.Locs != nil:
				n.Locs = append(n.Locs, s.Locs[j])
			}
		}
		o.Series = append(o.Series, n)
	}
	return o
}

func (s *Series) add(t int64, v any) error {
	switch x := v.(type) {
	case float64:
		s.Nums = append(s.Nums, x)
	case bool:
		n := 0.0
		if x {
			n = 1
		}
		s.Nums = append(s.Nums, n)
	case string:
		s.Strs = append(s.Strs, x)
	case []string:
		j, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("signal %s: %w", s.Name, err)
		}
		s.Strs = append(s.Strs, string(j))
	case telemetry.Location:
		s.Locs = append(s.Locs, [3]float64{x.Latitude, x.Longitude, x.HDOP})
	default:
		return fmt.Errorf("signal %s: a value of type %T", s.Name, v)
	}
	s.Times = append(s.Times, t)
	return nil
}

// sort puts the values in time order and keeps the first of each millisecond, as the signals table's
// primary key does.
func (s *Series) sort() {
	ix := make([]int, len(s.Times))
	for i := range ix {
		ix[i] = i
	}
	slices.SortStableFunc(ix, func(a, b int) int { return int(s.Times[a] - s.Times[b]) })
	o := Series{Name: s.Name, Kind: s.Kind}
	for _, i := range ix {
		if n := len(o.Times); n > 0 && o.Times[n-1] == s.Times[i] {
			continue
		}
		o.Times = append(o.Times, s.Times[i])
		switch {
		case s.Nums != nil:
			o.Nums = append(o.Nums, s.Nums[i])
		case s.Strs != nil:
			o.Strs = append(o.Strs, s.Strs[i])
		case s.Locs != nil:
			o.Locs = append(o.Locs, s.Locs[i])
		}
	}
	*s = o
}

// Save writes d to path (gob), so that each engine's process reads the same data without simulating it
// again.
func (d *Dataset) Save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("couldn't save the dataset: %w", err)
	}
	if err := gob.NewEncoder(f).Encode(d); err != nil {
		f.Close()
		return fmt.Errorf("couldn't save the dataset to %s: %w", path, err)
	}
	return f.Close()
}

// Load reads a dataset Save wrote.
func Load(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't load the dataset: %w", err)
	}
	defer f.Close()
	var d Dataset
	if err := gob.NewDecoder(f).Decode(&d); err != nil {
		return nil, fmt.Errorf("couldn't load the dataset from %s: %w", path, err)
	}
	return &d, nil
}
