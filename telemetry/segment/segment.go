// Package segment detects a vehicle's trips and other periods (idling, refuels, recharges) in its
// time-ordered values, by the six detection mechanisms of DIMO's telemetry API (segments and
// dailyActivity), and sums them per calendar day. It is pure: callers read the values (Input) from a
// store and pass them in, so the GraphQL API, webhooks and tests use the same functions. The rules, with
// their defaults and bounds, are documented in docs/graphql.md#trips-daily-activity-and-events.
//
// It imports no other Glovebox package: it is pure arithmetic over time-ordered values.
package segment

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// Mechanism is a detection mechanism, named as DIMO's DetectionMechanism enum.
type Mechanism string

// The mechanisms.
const (
	Ignition    Mechanism = "ignitionDetection"
	Frequency   Mechanism = "frequencyAnalysis"
	ChangePoint Mechanism = "changePointDetection"
	Idling      Mechanism = "idling"
	Refuel      Mechanism = "refuel"
	Recharge    Mechanism = "recharge"
)

// Trips reports whether m detects trips (the mechanisms dailyActivity takes).
func (m Mechanism) Trips() bool { return m == Ignition || m == Frequency || m == ChangePoint }

// Config is SegmentConfig: the detection's parameters.
type Config struct {
	MaxGapSeconds             int
	MinSegmentDurationSeconds int
	SignalCountThreshold      int
	MaxIdleRpm                int
	MinIncreasePercent        int
	// Given says the caller passed a config; without one, refuel and recharge keep segments from 60 s
	// (a refuel takes a few minutes) and recharge counts a rise of 1 point, as DIMO does.
	Given bool
}

// DefaultConfig is SegmentConfig's defaults.
var DefaultConfig = Config{MaxGapSeconds: 300, MinSegmentDurationSeconds: 240, SignalCountThreshold: 10, MaxIdleRpm: 1000, MinIncreasePercent: 15}

// Check returns an error naming the first field outside its bounds, as DIMO's.
func (c Config) Check() error {
	for _, f := range []struct {
		name    string
		v, l, h int
	}{
		{"maxGapSeconds", c.MaxGapSeconds, 60, 3600},
		{"minSegmentDurationSeconds", c.MinSegmentDurationSeconds, 60, 3600},
		{"signalCountThreshold", c.SignalCountThreshold, 1, 3600},
		{"maxIdleRpm", c.MaxIdleRpm, 300, 3000},
		{"minIncreasePercent", c.MinIncreasePercent, 1, 100},
	} {
		if f.v < f.l || f.v > f.h {
			return fmt.Errorf("config.%s must be between %d and %d, not %d", f.name, f.l, f.h, f.v)
		}
	}
	return nil
}

// Point is one value at a time (unix ms).
type Point struct {
	Time  int64
	Value float64
}

// Window is a minute (Start, unix ms, a multiple of 60,000) with Count values of Distinct signals.
type Window struct {
	Start           int64
	Count, Distinct int
}

// WindowMs is the width of a Window.
const WindowMs = 60_000

// Input is what the mechanisms read, each series in time order; a mechanism reads only its own.
// Lookback says how far before from each series must start (Lookback(m, cfg)).
type Input struct {
	Ignition []Point  // isIgnitionOn (0/1): ignitionDetection
	Windows  []Window // per minute, all numeric signals: frequencyAnalysis, changePointDetection
	RPM      []Point  // powertrainCombustionEngineSpeed: idling
	Speed    []Point  // speed: idling (a segment with any speed above 0 is not idling)
	Fuel     []Point  // powertrainFuelSystemRelativeLevel (%): refuel
	SoC      []Point  // powertrainTractionBatteryStateOfChargeCurrent (%): recharge
	Odometer []Point  // powertrainTransmissionTravelledDistance (km): recharge
	// Active, for frequencyAnalysis and changePointDetection instead of (or besides) Windows: the
	// minutes (merged into spans) that are active. For frequencyAnalysis they are the minutes with at
	// least SignalCountThreshold values of at least 2 signals; for changePointDetection those with at
	// least 10 values of at least 2 signals, which are exactly the windows its CUSUM keeps (every such
	// window adds at least 10 - 1.5 to a statistic that is never below 0, so it is always above 5).
	Active []Span
	// Advanced, for recharge instead of Odometer: whether the odometer advanced more than 0.5 km from the
	// reading at or before lo (or the first after it) to the last at or before hi.
	Advanced func(lo, hi int64) bool
}

// Span is [Start, End) in unix ms.
type Span struct{ Start, End int64 }

func activeSpans(ss []Span) []span {
	out := make([]span, 0, len(ss))
	for _, s := range ss {
		out = append(out, span{s.Start, s.End})
	}
	return out
}

// Segment is one detected period. End is the last moment of it; an ongoing segment's End is the query's
// to.
type Segment struct {
	Start, End    int64 // unix ms
	Ongoing       bool
	StartedBefore bool // it started before from (its Start is then from, except for ignitionDetection)
}

// Duration is the segment's length in whole seconds.
func (s Segment) Duration() int { return int((s.End - s.Start) / 1000) }

// ID is the segment's stable identifier: the same in every query that sees its start.
func ID(vehicle uint64, m Mechanism, start int64) string {
	h := sha256.Sum256([]byte(strconv.FormatUint(vehicle, 10) + "/" + string(m) + "/" + strconv.FormatInt(start, 10)))
	return hex.EncodeToString(h[:12])
}

// Lookback is how long before from the mechanism reads data, to find segments that started before it.
func Lookback(m Mechanism, c Config) time.Duration {
	switch m {
	case Ignition:
		return 30 * 24 * time.Hour // the last state change before from, as far as DIMO looks
	case Refuel:
		return 5*time.Minute + time.Duration(c.MaxGapSeconds)*time.Second
	}
	return time.Duration(c.MaxGapSeconds) * time.Second
}

// Detect finds the segments of mechanism m in [from, to) (unix ms); now is the clock, for isOngoing.
func Detect(m Mechanism, in Input, from, to, now int64, c Config) []Segment {
	maxGap := int64(c.MaxGapSeconds) * 1000
	minDur := int64(c.MinSegmentDurationSeconds) * 1000
	switch m {
	case Ignition:
		return ignition(in.Ignition, from, to, maxGap, minDur)
	case Frequency:
		active := activeSpans(in.Active)
		for _, w := range in.Windows {
			if w.Count >= c.SignalCountThreshold && w.Distinct >= 2 {
				active = append(active, span{w.Start, w.Start + WindowMs})
			}
		}
		return windowsToSegments(active, from, to, now, maxGap, minDur)
	case ChangePoint:
		return windowsToSegments(append(activeSpans(in.Active), cusum(in.Windows)...), from, to, now, maxGap, minDur)
	case Idling:
		return idling(in.RPM, in.Speed, float64(c.MaxIdleRpm), from, to, maxGap, minDur)
	case Refuel:
		if !c.Given {
			minDur = 60_000
		}
		return rises(in.Fuel, nil, float64(c.MinIncreasePercent), from, to, minDur)
	case Recharge:
		rise := float64(c.MinIncreasePercent)
		if !c.Given {
			minDur, rise = 60_000, 1
		}
		adv := in.Advanced
		if adv == nil {
			adv = func(lo, hi int64) bool { return advanced(in.Odometer, lo, hi) }
		}
		return rises(in.SoC, adv, rise, from, to, minDur)
	}
	return nil
}

type span struct{ start, end int64 }

// ignition builds trips from isIgnitionOn: on starts a trip, off ends it, and an off followed by an on
// within maxGap is ignored (a stall, a restart). A trip still on at to is ongoing.
func ignition(ps []Point, from, to, maxGap, minDur int64) []Segment {
	type change struct {
		t  int64
		on bool
	}
	var changes []change
	prev := -1.0
	for _, p := range ps {
		if p.Time >= to {
			break
		}
		if p.Value != prev {
			changes = append(changes, change{p.Time, p.Value != 0})
			prev = p.Value
		}
	}
	var out []Segment
	started := int64(-1)
	for i, ch := range changes {
		if ch.on {
			if started < 0 {
				started = ch.t
			}
			continue
		}
		if started < 0 {
			continue
		}
		if i+1 < len(changes) && changes[i+1].t-ch.t < maxGap {
			continue // a short off: the trip goes on
		}
		if ch.t-started >= minDur && ch.t > from {
			out = append(out, Segment{Start: started, End: ch.t, StartedBefore: started < from})
		}
		started = -1
	}
	if started >= 0 && to-started >= minDur {
		out = append(out, Segment{Start: started, End: to, Ongoing: true, StartedBefore: started < from})
	}
	return out
}

// cusum keeps the windows where a CUSUM of the values per minute (baseline 1, drift 0.5, threshold 5)
// shows a regime of activity, among the windows with at least 10 values of 2 signals.
func cusum(ws []Window) []span {
	var out []span
	stat := 0.0
	for _, w := range ws {
		if w.Count < 10 || w.Distinct < 2 {
			continue
		}
		stat = math.Max(0, stat+float64(w.Count)-1-0.5)
		if stat > 5 {
			out = append(out, span{w.Start, w.Start + WindowMs})
		}
	}
	return out
}

// windowsToSegments merges active minutes less than maxGap apart, clips them to [from, to), keeps those
// of minDur or more (or that started before from and were that long), and marks the last ongoing when its
// data reaches to within maxGap of to and to is within maxGap of now.
func windowsToSegments(active []span, from, to, now, maxGap, minDur int64) []Segment {
	merged := merge(active, maxGap)
	var out []Segment
	for i, s := range merged {
		seg, ok := clip(s, from, to, minDur)
		if !ok {
			continue
		}
		if i == len(merged)-1 && to-s.end <= maxGap && now-to <= maxGap {
			seg.End, seg.Ongoing = to, true
		}
		out = append(out, seg)
	}
	return out
}

func merge(spans []span, maxGap int64) []span {
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var out []span
	for _, s := range spans {
		if n := len(out); n > 0 && s.start-out[n-1].end <= maxGap {
			out[n-1].end = max(out[n-1].end, s.end)
			continue
		}
		out = append(out, s)
	}
	return out
}

// clip cuts s to [from, to]; a segment cut at from is kept if it was long enough before the cut.
func clip(s span, from, to, minDur int64) (Segment, bool) {
	orig := s.end - s.start
	seg := Segment{Start: s.start, End: s.end}
	if s.start <= from {
		seg.Start, seg.StartedBefore = from, true
	}
	seg.End = min(seg.End, to)
	if seg.End <= seg.Start {
		return Segment{}, false
	}
	if seg.End-seg.Start < minDur && (!seg.StartedBefore || orig < minDur) {
		return Segment{}, false
	}
	return seg, true
}

// idling finds runs of engine speed values above 0 and at most maxRpm, taken while the vehicle stood
// (its last speed value at or before each was 0, or it had none yet), at most maxGap apart. A value
// outside the idle range, or taken while moving, ends a run.
func idling(rpm, speed []Point, maxRpm float64, from, to, maxGap, minDur int64) []Segment {
	var runs []span
	in := false
	var cur span
	k := 0 // speed[k-1] is the last speed value at or before the engine speed value
	for _, p := range rpm {
		for k < len(speed) && speed[k].Time <= p.Time {
			k++
		}
		idle := p.Value > 0 && p.Value <= maxRpm && (k == 0 || speed[k-1].Value == 0)
		switch {
		case idle && !in:
			cur, in = span{p.Time, p.Time}, true
		case idle && p.Time-cur.end > maxGap:
			runs = append(runs, cur)
			cur = span{p.Time, p.Time}
		case idle:
			cur.end = p.Time
		case in:
			runs = append(runs, cur)
			in = false
		}
	}
	if in {
		runs = append(runs, cur)
	}
	var out []Segment
	for _, r := range runs {
		if seg, ok := clip(r, from, to, minDur); ok {
			out = append(out, seg)
		}
	}
	return out
}

// rises finds level increases (fuel, state of charge): from a trough to the following peak, where a
// drop of more than 1 point ends the rise, an increase of at least minRise points lasting at least
// minDur. With an odometer, a rise during which it advanced more than 0.5 km is not a stop (regenerative
// braking, a sensor settling). Rises that start in [from, to) count.
func rises(level []Point, advanced func(lo, hi int64) bool, minRise float64, from, to, minDur int64) []Segment {
	var out []Segment
	n := len(level)
	for i := 0; i < n; {
		// find a trough: the lowest point before the level climbs
		j := i
		for j+1 < n && level[j+1].Value <= level[j].Value {
			j++
		}
		trough := j
		peak := j
		for k := j + 1; k < n; k++ {
			if level[k].Value < level[peak].Value-1 {
				break
			}
			if level[k].Value > level[peak].Value {
				peak = k
			}
		}
		if peak == trough {
			i = j + 1
			continue
		}
		t0, t1 := level[trough].Time, level[peak].Time
		rise := level[peak].Value - level[trough].Value
		if rise >= minRise && t1-t0 >= minDur && t0 < to && t1 >= from && (advanced == nil || !advanced(t0, t1)) {
			seg := Segment{Start: t0, End: min(t1, to)}
			if t0 < from {
				seg.Start, seg.StartedBefore = from, true
			}
			out = append(out, seg)
		}
		i = peak + 1
	}
	return out
}

func advanced(odo []Point, lo, hi int64) bool {
	if odo == nil {
		return false
	}
	// from the reading at or before lo (or the first after it) to the last at or before hi
	i := max(0, sort.Search(len(odo), func(i int) bool { return odo[i].Time > lo })-1)
	j := sort.Search(len(odo), func(i int) bool { return odo[i].Time > hi }) - 1
	return j > i && odo[j].Value-odo[i].Value > 0.5
}

// Day is one calendar day's share of the segments.
type Day struct {
	Start, End int64 // unix ms of the day's first instant and of the next day's
	Segments   []int // indexes of the segments that overlap the day
	Seconds    int   // their time within the day
}

// Days splits [from, to] into the calendar days of loc, from the day of from to the day of to, and
// gives each the segments that overlap it.
func Days(segs []Segment, from, to time.Time, loc *time.Location) []Day {
	f, t := from.In(loc), to.In(loc)
	d := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, loc)
	last := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	var out []Day
	for ; !d.After(last); d = d.AddDate(0, 0, 1) {
		day := Day{Start: d.UnixMilli(), End: d.AddDate(0, 0, 1).UnixMilli()}
		for i, s := range segs {
			lo, hi := max(s.Start, day.Start), min(s.End, day.End)
			if hi <= lo {
				continue
			}
			day.Segments = append(day.Segments, i)
			day.Seconds += int((hi - lo) / 1000)
		}
		out = append(out, day)
	}
	return out
}
