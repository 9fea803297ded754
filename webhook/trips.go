package webhook

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/segment"
)

// Trips for trip triggers follow the rule of the GraphQL API's ignitionDetection (telemetry/segment):
// isIgnitionOn turning on starts a trip, turning off ends it, and an off followed by an on within
// TripGap is no end (a stall, a restart). Unlike segments, which wait until a trip is over to know it,
// a webhook hears of the start at once and of the end as soon as it is certain: when a value arrives
// TripGap or more after the off (the device kept sending while parked), or when the vehicle sent no
// ignition value for TripGap after the off.

// TripGap is how long the ignition must stay off for a trip to end: segments' default maxGapSeconds.
var TripGap = time.Duration(segment.DefaultConfig.MaxGapSeconds) * time.Second

// SignalIgnition is the signal trips are cut from.
const SignalIgnition = "isIgnitionOn"

// tripState is one vehicle's ignition as trip triggers follow it. Guarded by Engine.mu.
type tripState struct {
	seen    bool
	last    int64     // time of the newest ignition value (unix ms)
	arrived time.Time // when the node accepted it (the engine's clock)
	open    bool      // a trip is going on
	start   int64     // the open trip's start (unix ms)
	off     bool      // the ignition went off during the open trip, at offAt
	offAt   int64
}

// tripChange is a trip that started (end zero) or ended.
type tripChange struct {
	start, end int64
}

func (c tripChange) started() bool { return c.end == 0 }

// add takes one ignition value (at unix ms t) and returns the trips it started or ended. A value not newer
// than the newest seen is ignored: trips are cut from values in time order, as they arrive.
func (s *tripState) add(t int64, on bool, arrived time.Time, gap int64) []tripChange {
	if s.seen && t <= s.last {
		return nil
	}
	s.seen, s.last, s.arrived = true, t, arrived
	var out []tripChange
	if s.open && s.off && t-s.offAt >= gap {
		out = append(out, tripChange{s.start, s.offAt})
		s.open, s.off = false, false
	}
	switch {
	case on && !s.open:
		s.open, s.start = true, t
		out = append(out, tripChange{start: t})
	case on:
		s.off = false
	case s.open && !s.off:
		s.off, s.offAt = true, t
	}
	return out
}

// expire ends the open trip of a vehicle whose ignition went off and that sent no ignition value for gap
// since (on the engine's clock, and after the off on the vehicle's).
func (s *tripState) expire(now time.Time, gap int64) (tripChange, bool) {
	if !s.open || !s.off || now.Sub(s.arrived).Milliseconds() < gap || now.UnixMilli()-s.offAt < gap {
		return tripChange{}, false
	}
	s.open, s.off = false, false
	return tripChange{s.start, s.offAt}, true
}

// ignitionValues returns the isIgnitionOn values among vs, in time order.
func ignitionValues(vs []telemetry.Value) []telemetry.Value {
	var out []telemetry.Value
	for _, v := range vs {
		if v.Signal != nil && v.Signal.Name == SignalIgnition {
			out = append(out, v)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	return out
}

// TripData is the data of glovebox.trip.started and glovebox.trip.ended events.
type TripData struct {
	WebhookID string `json:"webhookId"`
	VehicleID uint64 `json:"vehicleId"`
	// TripID is the id the GraphQL API's segments query gives the same trip (mechanism
	// ignitionDetection), which lists it once it lasted at least minSegmentDurationSeconds.
	TripID    string     `json:"tripId"`
	Mechanism string     `json:"mechanism"` // "ignitionDetection"
	Start     time.Time  `json:"start"`
	End       *time.Time `json:"end,omitempty"`             // ended only
	Duration  int        `json:"durationSeconds,omitempty"` // ended only, whole seconds
}

func tripData(w *Webhook, vehicle uint64, c tripChange) TripData {
	d := TripData{WebhookID: w.ID, VehicleID: vehicle, TripID: segment.ID(vehicle, segment.Ignition, c.start),
		Mechanism: string(segment.Ignition), Start: time.UnixMilli(c.start).UTC()}
	if !c.started() {
		end := time.UnixMilli(c.end).UTC()
		d.End, d.Duration = &end, int((c.end-c.start)/1000)
	}
	return d
}

// EventData is the data of a glovebox.event.detected event.
type EventData struct {
	WebhookID string     `json:"webhookId"`
	VehicleID uint64     `json:"vehicleId"`
	Event     EventValue `json:"event"`
}

// EventValue is one driving event, as the GraphQL API's events query gives it.
type EventValue struct {
	Name       string          `json:"name"`
	Timestamp  time.Time       `json:"timestamp"`
	DurationNs int64           `json:"durationNs"`
	Source     string          `json:"source"`   // the device's address, or glovebox:derived:speed
	Metadata   json.RawMessage `json:"metadata"` // an object, or null
}

func eventData(w *Webhook, ev telemetry.Event) EventData {
	md := json.RawMessage("null")
	if ev.Metadata != "" {
		md = json.RawMessage(ev.Metadata)
	}
	return EventData{WebhookID: w.ID, VehicleID: ev.Vehicle, Event: EventValue{Name: ev.Name,
		Timestamp: time.UnixMilli(ev.Time).UTC(), DurationNs: ev.DurationNs, Source: ev.Source, Metadata: md}}
}
