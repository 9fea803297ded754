package live_test

import (
	"testing"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/live"
)

func value(name string, at int64, v float64) telemetry.Value {
	s, ok := telemetry.DefaultCatalog.Lookup(name)
	if !ok {
		panic(name)
	}
	return telemetry.Value{Signal: s, Time: at, Number: v}
}

func TestASubscriberThatFallsBehindGetsTheNewestValueOfEachSignal(t *testing.T) {
	h := live.NewHub()
	s := h.Subscribe(7)
	other := h.Subscribe(8)
	h.Publish([]*telemetry.Record{
		{VehicleID: 7, Values: []telemetry.Value{value("speed", 2000, 50), value("powertrainRange", 2000, 300)}},
		{VehicleID: 7, Values: []telemetry.Value{value("speed", 1000, 40)}}, // older: kept out
		{VehicleID: 7, Values: []telemetry.Value{value("speed", 3000, 60)}},
		{VehicleID: 9, Values: []telemetry.Value{value("speed", 3000, 99)}}, // nobody listens
	})
	select {
	case <-s.Ready():
	default:
		t.Fatal("not ready")
	}
	u, over := s.Take()
	if over || len(u.Values) != 2 || u.Values[0].Number != 60 || u.Values[1].Number != 300 || len(u.Events) != 0 {
		t.Fatalf("took %+v (overflow %v)", u, over)
	}
	if u, _ := other.Take(); len(u.Values) != 0 {
		t.Fatalf("vehicle 8's subscriber got %+v", u)
	}
	s.Close()
	other.Close()
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after Close", n)
	}
	h.Publish([]*telemetry.Record{{VehicleID: 7, Values: []telemetry.Value{value("speed", 4000, 1)}}})
	if u, _ := s.Take(); len(u.Values) != 0 {
		t.Fatalf("a closed subscription got %+v", u)
	}
}

func TestEventsAreDerivedFromSpeedAndBoundedPerSubscriber(t *testing.T) {
	h := live.NewHub()
	s := h.Subscribe(1)
	for i, kph := range []float64{100, 80, 80} { // harsh braking from 0 to 1 s, ended by the steady value
		h.Publish([]*telemetry.Record{{VehicleID: 1, Values: []telemetry.Value{value("speed", int64(i)*1000, kph)}}})
	}
	u, _ := s.Take()
	if len(u.Events) != 1 || u.Events[0].Name != telemetry.EventHarshBraking || u.Events[0].Time != 0 || u.Events[0].DurationNs != 1e9 ||
		u.Events[0].Source != telemetry.DerivedSource {
		t.Fatalf("events %+v", u.Events)
	}
	ev := telemetry.Event{Vehicle: 1, Name: "safety.collision", Source: "0x1"}
	many := make([]telemetry.Event, live.MaxPendingEvents)
	for i := range many {
		many[i] = ev
	}
	h.Publish([]*telemetry.Record{{VehicleID: 1, Events: many}})
	if _, over := s.Take(); over {
		t.Fatal("overflowed at the bound")
	}
	h.Publish([]*telemetry.Record{{VehicleID: 1, Events: many}, {VehicleID: 1, Events: many[:1]}})
	if _, over := s.Take(); !over {
		t.Fatal("did not overflow past the bound")
	}
}
