package webhook

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/glovebox/glovebox/telemetry"
)

// reflected is the body encoding/json gives for a delivery: the reference encodeEvent and encodeData
// must match byte for byte.
func reflected(t *testing.T, id, source, typ string, vehicle uint64, at time.Time, data any) []byte {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	ce := CloudEvent{SpecVersion: "1.0", ID: id, Source: source, Type: typ, Time: at.UTC(), DataContentType: "application/json", Data: raw}
	if vehicle != 0 {
		ce.Subject = strconv.FormatUint(vehicle, 10)
	}
	b, err := json.Marshal(ce)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func appended(t *testing.T, id, source, typ string, vehicle uint64, at time.Time, data any) []byte {
	t.Helper()
	raw, err := encodeData(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := encodeEvent(id, source, typ, vehicle, at, raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signalData(value, previous any, cond, unit string, ts time.Time) SignalData {
	return SignalData{WebhookID: "wh_0123456789abcdefghjkmnpqrs", VehicleID: 17,
		Signal: SignalValue{Name: "speed", Timestamp: ts, Value: value, Unit: unit}, PreviousValue: previous, Condition: cond}
}

func TestEventBodiesAreWhatEncodingJSONGives(t *testing.T) {
	ts := time.UnixMilli(1780000000123).UTC()
	tests := []struct {
		name string
		data any
	}{
		{"a number", signalData(130.5, 120.0, "value > 120.0", "km/h", ts)},
		{"zero and negative zero", signalData(0.0, math.Copysign(0, -1), "value == 0.0", "", ts)},
		{"small and large numbers", signalData(1e-7, 1e21, "true", "", ts)},
		{"numbers at the edges of the plain form", signalData(1e-6, 999999999999999999999.0, "true", "", ts)},
		{"extreme numbers", signalData(math.MaxFloat64, 5e-324, "true", "", ts)},
		{"many digits", signalData(123456789.123456789, -0.000123, "true", "", ts)},
		{"booleans", signalData(true, false, "value && !previousValue", "", ts)},
		{"strings", signalData("P", "D", `value == "P"`, "", ts)},
		{"strings to escape", signalData("a<b>&\"\\\n\t\b\f\x01", "é\u2028\u2029\xff", "value != previousValue", "", ts)},
		{"a condition with HTML characters", signalData(121.0, 119.0, "value > 120.0 && previousValue <= 120.0", "km/h", ts)},
		{"lists", signalData([]string{"a", "<b>"}, []string{}, "size(value) > 0", "", ts)},
		{"locations", signalData(telemetry.Location{Latitude: 52.5, Longitude: 13.4, HDOP: 0.9}, telemetry.Location{}, "true", "", ts)},
		{"a time without milliseconds", signalData(1.0, 1.0, "true", "", time.Unix(1780000000, 0).UTC())},
		{"a time with nanoseconds", signalData(1.0, 1.0, "true", "", time.Unix(1780000000, 123456789).UTC())},
		{"other data", ConnectivityData{WebhookID: "wh_1", VehicleID: 3, Status: "offline", LastSeen: ts, SilenceSeconds: 300}},
		{"a map", map[string]string{"challenge": "abc", "webhookId": "wh_<1>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, vehicle := range []uint64{0, 1, math.MaxUint64} {
				for _, source := range []string{"https://node.example", "https://node.example/a?b=1&c=<2>"} {
					want := reflected(t, "msg_0123", source, TypeSignal, vehicle, ts, tt.data)
					if got := appended(t, "msg_0123", source, TypeSignal, vehicle, ts, tt.data); !bytes.Equal(got, want) {
						t.Errorf("vehicle %d, source %s:\n got %s\nwant %s", vehicle, source, got, want)
					}
				}
			}
		})
	}
}

func TestEventBodiesRefuseWhatEncodingJSONRefuses(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if b, err := encodeData(signalData(v, 1.0, "true", "", time.UnixMilli(0))); err == nil {
			t.Errorf("value %v encoded as %s, want an error", v, b)
		}
	}
	for _, at := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if b, err := encodeEvent("msg_1", "s", TypeSignal, 1, at, []byte("{}")); err == nil {
			t.Errorf("a time in year %d encoded as %s, want an error", at.Year(), b)
		}
		if b, err := encodeData(signalData(1.0, 1.0, "true", "", at)); err == nil {
			t.Errorf("a signal time in year %d encoded as %s, want an error", at.Year(), b)
		}
	}
}

func FuzzEventBodiesAreWhatEncodingJSONGives(f *testing.F) {
	f.Add(130.5, "P", "value > 120.0 && previousValue <= 120.0", "km/h", int64(1780000000123456789), uint64(17))
	f.Add(1e-7, "\xff<\u2028", "", "", int64(-62135596800000000), uint64(0))
	f.Fuzz(func(t *testing.T, number float64, text, cond, unit string, ns int64, vehicle uint64) {
		ts := time.Unix(0, ns).UTC()
		for _, data := range []any{signalData(number, text, cond, unit, ts), signalData(text, number, cond, unit, ts)} {
			want, werr := json.Marshal(data)
			got, gerr := encodeData(data)
			if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
				t.Fatalf("data: got %s %v, want %s %v", got, gerr, want, werr)
			}
			if werr != nil {
				continue
			}
			if w, g := reflected(t, text, cond, unit, vehicle, ts, data), appended(t, text, cond, unit, vehicle, ts, data); !bytes.Equal(g, w) {
				t.Fatalf("event:\n got %s\nwant %s", g, w)
			}
		}
	})
}
