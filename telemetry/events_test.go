package telemetry

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEventRecordsAreCheckedLikeSignalRecords(t *testing.T) {
	now := time.Date(2026, 11, 27, 6, 40, 0, 0, time.UTC)
	rec := func(events string) []byte {
		return []byte(`{"specversion":"1.0","id":"e1","source":"0x8C1660e2a3D446288a7e115d6cE16fCe86209d4D","subject":"1",` +
			`"type":"glovebox.events","time":"2026-11-27T06:40:00Z","datacontenttype":"application/json","data":` + events + `}`)
	}
	ok := `{"name":"behavior.harshBraking","timestamp":"2026-11-27T06:40:00Z","durationNs":1200000000,"metadata":{"g":0.5}}`
	cases := []struct {
		name, data string
		want       Status
	}{
		{"a well formed event", `{"events":[` + ok + `]}`, ""},
		{"an unknown event name", `{"events":[{"name":"behavior.donut","timestamp":"2026-11-27T06:40:00Z","durationNs":0}]}`, StatusUnknownEvent},
		{"no events", `{"events":[]}`, StatusMalformed},
		{"signals in an events record", `{"signals":[]}`, StatusMalformed},
		{"a missing duration", `{"events":[{"name":"behavior.harshBraking","timestamp":"2026-11-27T06:40:00Z"}]}`, StatusMalformed},
		{"a negative duration", `{"events":[{"name":"behavior.harshBraking","timestamp":"2026-11-27T06:40:00Z","durationNs":-1}]}`, StatusMalformed},
		{"a fractional duration", `{"events":[{"name":"behavior.harshBraking","timestamp":"2026-11-27T06:40:00Z","durationNs":1.5}]}`, StatusMalformed},
		{"metadata that is not an object", `{"events":[{"name":"behavior.harshBraking","timestamp":"2026-11-27T06:40:00Z","durationNs":1,"metadata":"x"}]}`, StatusMalformed},
		{"an unknown member", `{"events":[{"name":"behavior.harshBraking","timestamp":"2026-11-27T06:40:00Z","durationNs":1,"speed":3}]}`, StatusMalformed},
		{"a bad timestamp", `{"events":[{"name":"behavior.harshBraking","timestamp":"yesterday","durationNs":1}]}`, StatusMalformed},
		{"a future timestamp", `{"events":[{"name":"behavior.harshBraking","timestamp":"2026-11-27T07:40:00Z","durationNs":1}]}`, StatusFutureTime},
		{"a day-long event", `{"events":[{"name":"safety.collision","timestamp":"2026-11-27T06:40:00Z","durationNs":86400000000001}]}`, StatusBadValue},
		{"metadata over 1 KiB", `{"events":[{"name":"safety.collision","timestamp":"2026-11-27T06:40:00Z","durationNs":1,"metadata":{"x":"` + strings.Repeat("a", 1100) + `"}}]}`, StatusBadValue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := DefaultCatalog.Parse(&Submission{Event: rec(c.data), Signature: make([]byte, 65)}, now.UnixMilli())
			got := Status("")
			if err != nil {
				got = StatusOf(err)
			}
			if got != c.want {
				t.Fatalf("status %q (%v), want %q", got, err, c.want)
			}
			if c.want == "" {
				want := "[{1 behavior.harshBraking 1795761600000 1200000000 0x8C1660e2a3D446288a7e115d6cE16fCe86209d4D {\"g\":0.5}}]"
				if got := fmt.Sprint(r.Events); got != want {
					t.Errorf("events %s, want %s", got, want)
				}
			}
		})
	}
}

func TestHarshEventsAreDerivedFromSpeed(t *testing.T) {
	s := func(sec int64, kph float64) SpeedSample { return SpeedSample{Time: 1_000_000 + sec*1000, Kph: kph} }
	cases := []struct {
		name    string
		samples []SpeedSample
		want    string
	}{
		{"steady driving", []SpeedSample{s(0, 50), s(1, 52), s(2, 49), s(3, 50)}, "[]"},
		{"a hard stop over two seconds is one braking",
			[]SpeedSample{s(0, 60), s(1, 60), s(2, 45), s(3, 30), s(4, 28)},
			"[{7 behavior.harshBraking 1001000 2000000000 glovebox:derived:speed {\"fromKph\":60,\"toKph\":30,\"meanKphPerSecond\":15,\"peakKphPerSecond\":15}}]"},
		{"a launch", []SpeedSample{s(0, 0), s(1, 12), s(2, 14)},
			"[{7 behavior.harshAcceleration 1000000 1000000000 glovebox:derived:speed {\"fromKph\":0,\"toKph\":12,\"meanKphPerSecond\":12,\"peakKphPerSecond\":12}}]"},
		{"values more than 3 s apart say nothing", []SpeedSample{s(0, 80), s(5, 0), s(6, 0)}, "[]"},
		{"a run still going at the last value is not yet an event", []SpeedSample{s(0, 60), s(1, 40)}, "[]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fmt.Sprint(DeriveFromSpeed(7, c.samples)); got != c.want {
				t.Errorf("got %s\nwant %s", got, c.want)
			}
		})
	}
	// Fed record by record, the deriver finds the same events once.
	var d SpeedDeriver
	var got []Event
	for _, x := range []SpeedSample{s(0, 60), s(1, 60), s(2, 45), s(3, 30), s(4, 28), s(5, 28)} {
		got = append(got, d.Add(7, []SpeedSample{x})...)
	}
	if len(got) != 1 || got[0].Time != 1_001_000 || got[0].DurationNs != 2e9 {
		t.Errorf("record by record: %v", got)
	}
	// A store whose write failed restores the deriver and feeds the same values again: it finds the
	// same events as if the failed try never happened, also when a value restarted the window.
	for _, restart := range []bool{false, true} {
		var d SpeedDeriver
		d.Add(7, []SpeedSample{s(0, 60), s(1, 60)})
		chunk := []SpeedSample{s(2, 45), s(3, 30), s(4, 28), s(5, 28)}
		if restart {
			chunk = append([]SpeedSample{s(0, 61)}, s(1, 60), s(2, 45), s(3, 30), s(4, 28), s(5, 28))
		}
		restore := d.Checkpoint()
		var lost []Event
		for _, x := range chunk {
			lost = append(lost, d.Add(7, []SpeedSample{x})...)
		}
		restore()
		var again []Event
		for _, x := range chunk {
			again = append(again, d.Add(7, []SpeedSample{x})...)
		}
		if fmt.Sprint(again) != fmt.Sprint(lost) || len(again) != 1 {
			t.Errorf("restart %v: after a restore the chunk gives %v, the first try %v", restart, again, lost)
		}
	}
}
