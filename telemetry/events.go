package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/valyala/fastjson"
)

// Driving events: a device sends them as records of type TypeEvents, with the same envelope, signature and
// verdicts as signal records; the node derives harsh braking and acceleration from the speed signal for
// vehicles whose devices do not send them (DeriveFromSpeed). Both end up in the events a store keeps.

// The CloudEvents types of records.
const (
	TypeSignals = "glovebox.signals" // data {"signals": [...]}
	TypeEvents  = "glovebox.events"  // data {"events": [...]}
)

// EventNames are the event names a record may carry: DIMO's.
var EventNames = []string{
	"behavior.harshBraking",
	"behavior.harshAcceleration",
	"behavior.harshCornering",
	"behavior.extremeBraking",
	"safety.collision",
	"security.engineBlock",
	"security.engineUnblock",
}

// The event names the node derives.
const (
	EventHarshBraking      = "behavior.harshBraking"
	EventHarshAcceleration = "behavior.harshAcceleration"
)

// EventExtremeBraking is the name of a braking harder than harsh; only devices report it.
const EventExtremeBraking = "behavior.extremeBraking"

// KnownEvent reports whether name is one of EventNames.
func KnownEvent(name string) bool {
	for _, n := range EventNames {
		if n == name {
			return true
		}
	}
	return false
}

// Limits of an event in a record.
const (
	MaxEvents       = 100                      // events in one record
	MaxMetadata     = 1024                     // bytes of an event's metadata (its JSON text)
	MaxEventLength  = 24 * time.Hour           // an event's duration
	DerivedSource   = "glovebox:derived:speed" // the source of the events DeriveFromSpeed makes
	maxDurationNsJS = 1<<53 - 1
)

// Event is one driving event of a vehicle.
type Event struct {
	Vehicle    uint64
	Name       string
	Time       int64  // unix ms, when it began
	DurationNs int64  // how long it lasted
	Source     string // the device address (EIP-55), or DerivedSource
	Metadata   string // JSON text, or empty
}

// EventSummary is how many events of one name a vehicle has and when the first and last began.
type EventSummary struct {
	Name        string
	Count       int64
	First, Last int64 // unix ms
}

// Events is the store of driving events. Stores write them from the records they store (the events of
// TypeEvents records and those DeriveFromSpeed makes of their speed values), once per (vehicle, name,
// source, time).
type Events interface {
	// Events returns the events of vehicle that began in [lo, hi) (unix ms), by time, then name and
	// source, at most limit of them (and limit+1 if there are more, so that callers can tell).
	Events(ctx context.Context, vehicle uint64, lo, hi int64, limit int) ([]Event, error)
	// EventSummaries returns per event name the events of vehicle that began at or after since.
	EventSummaries(ctx context.Context, vehicle uint64, since int64) ([]EventSummary, error)
}

// parseEvents decodes data {"events": [{"name", "timestamp", "durationNs", "metadata"?}, …]}.
func parseEvents(data *fastjson.Value, now int64) ([]Event, *failure) {
	dobj, _ := data.Object()
	evs := data.Get("events")
	if dobj.Len() != 1 || evs == nil || evs.Type() != fastjson.TypeArray {
		return nil, fail(StatusMalformed, "data must be exactly {\"events\": […]}")
	}
	items, _ := evs.Array()
	if len(items) == 0 || len(items) > MaxEvents {
		return nil, fail(StatusMalformed, "a record carries 1 to %d events", MaxEvents)
	}
	out := make([]Event, 0, len(items))
	for i, it := range items {
		e, f := parseEvent(it, now)
		if f != nil {
			f.msg = fmt.Sprintf("event %d: %s", i, f.msg)
			return nil, f
		}
		out = append(out, e)
	}
	return out, nil
}

func parseEvent(v *fastjson.Value, now int64) (Event, *failure) {
	const shape = `an event is {"name": string, "timestamp": RFC 3339, "durationNs": integer ≥ 0, "metadata": object (optional)}`
	o, err := v.Object()
	if err != nil {
		return Event{}, fail(StatusMalformed, shape)
	}
	var e Event
	var bad bool
	seen := map[string]bool{}
	o.Visit(func(k []byte, v *fastjson.Value) {
		key := string(k)
		if seen[key] {
			bad = true
			return
		}
		seen[key] = true
		switch key {
		case "name":
			if v.Type() != fastjson.TypeString {
				bad = true
			}
			e.Name = string(v.GetStringBytes())
		case "timestamp":
			if v.Type() != fastjson.TypeString {
				bad = true
				return
			}
			t, err := time.Parse(time.RFC3339Nano, string(v.GetStringBytes()))
			if err != nil {
				bad = true
				return
			}
			e.Time = t.UnixMilli()
		case "durationNs":
			f, err := v.Float64()
			if err != nil || f < 0 || f != math.Trunc(f) || f > maxDurationNsJS {
				bad = true
				return
			}
			e.DurationNs = int64(f)
		case "metadata":
			if v.Type() != fastjson.TypeObject {
				bad = true
				return
			}
			e.Metadata = string(v.MarshalTo(nil))
		default:
			bad = true
		}
	})
	if bad || !seen["name"] || !seen["timestamp"] || !seen["durationNs"] {
		return Event{}, fail(StatusMalformed, shape)
	}
	if !KnownEvent(e.Name) {
		return Event{}, fail(StatusUnknownEvent, "no event %q (the names are DIMO's: behavior.harshBraking, …)", e.Name)
	}
	if time.Duration(e.DurationNs) > MaxEventLength {
		return Event{}, fail(StatusBadValue, "%s: durationNs is more than %s", e.Name, MaxEventLength)
	}
	if len(e.Metadata) > MaxMetadata || !utf8.ValidString(e.Metadata) {
		return Event{}, fail(StatusBadValue, "%s: metadata is more than %d bytes", e.Name, MaxMetadata)
	}
	if e.Time > now+MaxClockSkew.Milliseconds() {
		return Event{}, fail(StatusFutureTime, "%s: timestamp is more than %s ahead of the node's clock", e.Name, MaxClockSkew)
	}
	return e, nil
}

// EventItem is one event of a record being built by NewEventsRecord.
type EventItem struct {
	Name      string
	Timestamp time.Time
	Duration  time.Duration
	Metadata  map[string]any // nil for none
}

// NewEventsRecord builds the bytes of a TypeEvents record as a device would produce them.
func NewEventsRecord(source common.Address, vehicleID uint64, id string, at time.Time, events []EventItem) ([]byte, error) {
	type item struct {
		Name       string         `json:"name"`
		Timestamp  string         `json:"timestamp"`
		DurationNs int64          `json:"durationNs"`
		Metadata   map[string]any `json:"metadata,omitempty"`
	}
	ev := struct {
		SpecVersion     string `json:"specversion"`
		ID              string `json:"id"`
		Source          string `json:"source"`
		Subject         string `json:"subject"`
		Type            string `json:"type"`
		Time            string `json:"time"`
		DataContentType string `json:"datacontenttype"`
		Data            struct {
			Events []item `json:"events"`
		} `json:"data"`
	}{SpecVersion: "1.0", ID: id, Source: source.Hex(), Subject: strconv.FormatUint(vehicleID, 10),
		Type: TypeEvents, Time: at.UTC().Format(time.RFC3339Nano), DataContentType: "application/json"}
	for _, e := range events {
		ev.Data.Events = append(ev.Data.Events, item{e.Name, e.Timestamp.UTC().Format(time.RFC3339Nano), e.Duration.Nanoseconds(), e.Metadata})
	}
	return json.Marshal(ev)
}

// The rule of derived events (documented in docs/telemetry.md#driving-events): between two consecutive
// speed values of a vehicle at most MaxDeriveGap apart, a change of speed of HarshBrakingKphPerSecond or
// more per second downwards is harsh braking, of HarshAccelerationKphPerSecond or more upwards harsh
// acceleration. Consecutive such pairs of the same kind make one event, from the first value to the last.
const (
	HarshBrakingKphPerSecond      = 12.0 // about 0.34 g
	HarshAccelerationKphPerSecond = 10.0 // about 0.28 g
	MaxDeriveGap                  = 3 * time.Second
)

// SpeedSample is one speed value (km/h) at a time (unix ms).
type SpeedSample struct {
	Time int64
	Kph  float64
}

// DeriveFromSpeed applies the rule to a vehicle's speed values in time order and returns the events they
// show. Only complete events are returned: a run still going on at the last value is not (call it again
// with more values).
func DeriveFromSpeed(vehicle uint64, samples []SpeedSample) []Event {
	var out []Event
	var run *Event
	var runPeak, runFrom float64
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		dt := b.Time - a.Time
		name := ""
		rate := 0.0
		if dt > 0 && time.Duration(dt)*time.Millisecond <= MaxDeriveGap {
			rate = (b.Kph - a.Kph) / (float64(dt) / 1000)
			switch {
			case rate <= -HarshBrakingKphPerSecond:
				name = EventHarshBraking
			case rate >= HarshAccelerationKphPerSecond:
				name = EventHarshAcceleration
			}
		}
		if run != nil && (name != run.Name || a.Time != run.Time+run.DurationNs/1e6) {
			out = append(out, finish(run, runFrom, samples[i-1].Kph, runPeak))
			run = nil
		}
		if name == "" {
			continue
		}
		if run == nil {
			run = &Event{Vehicle: vehicle, Name: name, Time: a.Time, Source: DerivedSource}
			runFrom, runPeak = a.Kph, math.Abs(rate)
		}
		run.DurationNs = (b.Time - run.Time) * 1e6
		runPeak = max(runPeak, math.Abs(rate))
	}
	return out
}

func finish(e *Event, from, to, peak float64) Event {
	out := *e
	secs := float64(out.DurationNs) / 1e9
	out.Metadata = fmt.Sprintf(`{"fromKph":%s,"toKph":%s,"meanKphPerSecond":%s,"peakKphPerSecond":%s}`,
		num(from), num(to), num(math.Abs(to-from)/secs), num(peak))
	return out
}

func num(f float64) string { return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64) }

// SpeedDeriver applies DeriveFromSpeed to speed values as a store meets them, record after record: it
// keeps, per vehicle, the values since the last complete event (a few seconds' worth). A value older
// than the vehicle's newest one (a backfill out of order) restarts the vehicle's window, so derived
// events come from values received in time order only. Safe for concurrent use.
type SpeedDeriver struct {
	mu      sync.Mutex
	pending map[uint64][]SpeedSample
}

// Add takes the speed values of one vehicle from a record, in time order, and returns the events that
// became complete.
func (d *SpeedDeriver) Add(vehicle uint64, samples []SpeedSample) []Event {
	if len(samples) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == nil {
		d.pending = map[uint64][]SpeedSample{}
	}
	// The kept values are never written over (a full slice expression makes append copy, a restart
	// starts a new slice), so that a Checkpoint, which copies only the map, stays intact.
	p := d.pending[vehicle]
	p = p[:len(p):len(p)]
	for _, s := range samples {
		if len(p) > 0 && s.Time <= p[len(p)-1].Time {
			p = nil
		}
		p = append(p, s)
	}
	evs := DeriveFromSpeed(vehicle, p)
	// Keep only what a later value could still extend: from the start of an open run (or the last value).
	keep := len(p) - 1
	for keep > 0 {
		a, b := p[keep-1], p[keep]
		dt := b.Time - a.Time
		if dt <= 0 || time.Duration(dt)*time.Millisecond > MaxDeriveGap {
			break
		}
		r := (b.Kph - a.Kph) / (float64(dt) / 1000)
		if r > -HarshBrakingKphPerSecond && r < HarshAccelerationKphPerSecond {
			break
		}
		keep--
	}
	// Events that end at or after p[keep] are still open: they are returned when their run ends.
	var done []Event
	for _, e := range evs {
		if e.Time+e.DurationNs/1e6 <= p[keep].Time && e.Time < p[keep].Time {
			done = append(done, e)
		}
	}
	d.pending[vehicle] = append(p[:0:0], p[keep:]...)
	return done
}

// Checkpoint returns a function that puts the deriver back as it is now. A store whose write of the
// events Add returned failed (a full disk) calls it, so that the same values, read again when the write
// is retried, are taken once and not twice.
func (d *SpeedDeriver) Checkpoint() (restore func()) {
	d.mu.Lock()
	saved := maps.Clone(d.pending)
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		d.pending = saved
		d.mu.Unlock()
	}
}

// SignalSpeed is the speed signal events are derived from.
const SignalSpeed = "speed"

// SpeedSamples returns the speed values among vs, in time order.
func SpeedSamples(vs []Value) []SpeedSample {
	var out []SpeedSample
	for _, v := range vs {
		if v.Signal != nil && v.Signal.Name == SignalSpeed {
			out = append(out, SpeedSample{v.Time, v.Number})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	return out
}
