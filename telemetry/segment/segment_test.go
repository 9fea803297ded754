package segment

import (
	"fmt"
	"testing"
	"time"
)

const minute = int64(60_000)

// on returns isIgnitionOn points: 1 at each of ons, 0 at each of offs (minutes).
func ignitionPoints(changes ...int64) []Point {
	var ps []Point
	for i, m := range changes {
		ps = append(ps, Point{Time: m * minute, Value: float64(1 - i%2)})
	}
	return ps
}

// active returns windows with 60 values of 2 signals for each minute in [from, to).
func active(spans ...[2]int64) []Window {
	var ws []Window
	for _, s := range spans {
		for m := s[0]; m < s[1]; m++ {
			ws = append(ws, Window{Start: m * minute, Count: 60, Distinct: 2})
		}
	}
	return ws
}

func TestDetect(t *testing.T) {
	cfg := DefaultConfig
	cases := []struct {
		name     string
		m        Mechanism
		in       Input
		from, to int64 // minutes
		now      int64
		want     string
	}{
		{"an ignition trip from on to off", Ignition, Input{Ignition: ignitionPoints(10, 40)}, 0, 100, 1000,
			"[{600000 2400000 false false}]"},
		{"an off shorter than maxGapSeconds does not split the trip", Ignition, Input{Ignition: ignitionPoints(10, 20, 23, 40)}, 0, 100, 1000,
			"[{600000 2400000 false false}]"},
		{"an off of maxGapSeconds splits it", Ignition, Input{Ignition: ignitionPoints(10, 20, 25, 40)}, 0, 100, 1000,
			"[{600000 1200000 false false} {1500000 2400000 false false}]"},
		{"a trip shorter than minSegmentDurationSeconds is left out", Ignition, Input{Ignition: ignitionPoints(10, 13)}, 0, 100, 1000, "[]"},
		{"a trip started before from keeps its start and says so", Ignition, Input{Ignition: ignitionPoints(10, 40)}, 20, 100, 1000,
			"[{600000 2400000 false true}]"},
		{"ignition still on at to is ongoing until to", Ignition, Input{Ignition: ignitionPoints(10)}, 0, 100, 1000,
			"[{600000 6000000 true false}]"},
		{"frequency: active minutes within maxGap merge", Frequency, Input{Windows: active([2]int64{10, 20}, [2]int64{23, 30})}, 0, 100, 1000,
			"[{600000 1800000 false false}]"},
		{"frequency: a gap longer than maxGap splits", Frequency, Input{Windows: active([2]int64{10, 20}, [2]int64{26, 40})}, 0, 100, 1000,
			"[{600000 1200000 false false} {1560000 2400000 false false}]"},
		{"frequency: quiet minutes do not count", Frequency, Input{Windows: []Window{{Start: 10 * minute, Count: 5, Distinct: 2}, {Start: 11 * minute, Count: 60, Distinct: 1}}}, 0, 100, 1000, "[]"},
		{"frequency: a segment cut at from started before the range", Frequency, Input{Windows: active([2]int64{10, 30})}, 25, 100, 1000,
			"[{1500000 1800000 false true}]"},
		{"frequency: data reaching to with to near now is ongoing", Frequency, Input{Windows: active([2]int64{10, 98})}, 0, 100, 101,
			"[{600000 6000000 true false}]"},
		{"frequency: the same data queried long after is not ongoing", Frequency, Input{Windows: active([2]int64{10, 98})}, 0, 100, 1000,
			"[{600000 5880000 false false}]"},
		{"change point: a burst of activity is a segment", ChangePoint, Input{Windows: active([2]int64{10, 30})}, 0, 100, 1000,
			"[{600000 1800000 false false}]"},
		{"idling: low rpm without speed", Idling, Input{RPM: rpm(10, 20, 800), Speed: []Point{{Time: 10 * minute, Value: 0}}}, 0, 100, 1000,
			"[{600000 1200000 false false}]"},
		{"idling: low rpm while moving is not idling", Idling, Input{RPM: rpm(10, 20, 800), Speed: []Point{{Time: 10 * minute, Value: 12}}}, 0, 100, 1000, "[]"},
		{"idling: moving off ends the idling", Idling, Input{RPM: rpm(10, 20, 800), Speed: []Point{{Time: 10 * minute, Value: 0}, {Time: 15 * minute, Value: 12}}}, 0, 100, 1000,
			"[{600000 895000 false false}]"},
		{"idling: high rpm is not idling", Idling, Input{RPM: rpm(10, 20, 2500)}, 0, 100, 1000, "[]"},
		{"refuel: a rise of the fuel level", Refuel, Input{Fuel: level([]float64{40, 39, 20, 20, 35, 60, 80, 80, 79})}, 0, 100, 1000,
			"[{180000 360000 false false}]"},
		{"refuel: a small rise is not", Refuel, Input{Fuel: level([]float64{40, 39, 38, 45, 44})}, 0, 100, 1000, "[]"},
		{"recharge: state of charge rising while parked", Recharge, Input{SoC: level([]float64{30, 30, 40, 50, 60, 60}),
			Odometer: []Point{{Time: 0, Value: 100}, {Time: 10 * minute, Value: 100}}}, 0, 100, 1000, "[{60000 240000 false false}]"},
		{"recharge: regeneration while driving is not", Recharge, Input{SoC: level([]float64{30, 30, 40, 50, 60, 60}),
			Odometer: []Point{{Time: 0, Value: 100}, {Time: 4 * minute, Value: 104}}}, 0, 100, 1000, "[]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Detect(c.m, c.in, c.from*minute, c.to*minute, c.now*minute, cfg)
			if s := fmt.Sprint(got); s != c.want && !(s == "[]" && c.want == "[]") {
				t.Errorf("got %s, want %s", s, c.want)
			}
		})
	}
}

func rpm(from, to int64, v float64) []Point {
	var ps []Point
	for s := from * 60; s <= to*60; s += 5 {
		ps = append(ps, Point{Time: s * 1000, Value: v})
	}
	return ps
}

// level returns one value a minute.
func level(vs []float64) []Point {
	ps := make([]Point, len(vs))
	for i, v := range vs {
		ps[i] = Point{Time: int64(i) * minute, Value: v}
	}
	return ps
}

func TestConfigBoundsNameTheField(t *testing.T) {
	cases := []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) {}, "<nil>"},
		{func(c *Config) { c.MaxGapSeconds = 59 }, "config.maxGapSeconds must be between 60 and 3600, not 59"},
		{func(c *Config) { c.MinSegmentDurationSeconds = 3601 }, "config.minSegmentDurationSeconds must be between 60 and 3600, not 3601"},
		{func(c *Config) { c.SignalCountThreshold = 0 }, "config.signalCountThreshold must be between 1 and 3600, not 0"},
		{func(c *Config) { c.MaxIdleRpm = 299 }, "config.maxIdleRpm must be between 300 and 3000, not 299"},
		{func(c *Config) { c.MinIncreasePercent = 101 }, "config.minIncreasePercent must be between 1 and 100, not 101"},
	}
	for _, c := range cases {
		cfg := DefaultConfig
		c.change(&cfg)
		if got := fmt.Sprint(cfg.Check()); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestATripCrossingMidnightCountsOnBothDaysInTheCallersZone(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	// 23:30 to 00:45 New York time, 2026-03-01/02 (UTC-5).
	start := time.Date(2026, 3, 1, 23, 30, 0, 0, newYork).UnixMilli()
	end := time.Date(2026, 3, 2, 0, 45, 0, 0, newYork).UnixMilli()
	segs := []Segment{{Start: start, End: end}}
	days := Days(segs, time.Date(2026, 3, 1, 10, 0, 0, 0, newYork), time.Date(2026, 3, 2, 10, 0, 0, 0, newYork), newYork)
	got := fmt.Sprint(len(days), days[0].Segments, days[0].Seconds, days[1].Segments, days[1].Seconds)
	if want := "2 [0] 1800 [0] 2700"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// In UTC the same trip lies within 2 March alone.
	days = Days(segs, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), time.UTC)
	if got := fmt.Sprint(days[0].Segments, days[1].Segments, days[1].Seconds); got != "[] [0] 4500" {
		t.Errorf("UTC: got %s", got)
	}
}

func TestIDsAreStable(t *testing.T) {
	if ID(1, Ignition, 1000) != ID(1, Ignition, 1000) || ID(1, Ignition, 1000) == ID(1, Frequency, 1000) || ID(1, Ignition, 1000) == ID(2, Ignition, 1000) {
		t.Error("ids must depend on vehicle, mechanism and start only")
	}
}
