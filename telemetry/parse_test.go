package telemetry

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// describe prints what Parse read of a record, every field a store or a reader uses.
func describe(r *Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q vehicle %d at %d:", r.Source.Hex(), r.ID, r.VehicleID, r.Time)
	for _, v := range r.Values {
		fmt.Fprintf(&b, " %s@%d=", v.Signal.Name, v.Time)
		switch v.Signal.Kind {
		case KindNumber, KindBool:
			fmt.Fprintf(&b, "%v", v.Number)
			if math.Signbit(v.Number) {
				b.WriteString("(signed)")
			}
		case KindString, KindStrings:
			fmt.Fprintf(&b, "%q", v.String)
		case KindLocation:
			fmt.Fprintf(&b, "(%v,%v,%v)", v.Lat, v.Lon, v.HDOP)
		}
	}
	for _, e := range r.Events {
		fmt.Fprintf(&b, " %+v", e)
	}
	return b.String()
}

// TestParseReadsEveryKindOfRecordAsBefore pins what Parse makes of a varied set of records, and the
// verdict and message of each it refuses: literal expectations, so that a faster parse reads the same.
// ParseStored reads each accepted record as Parse does.
func TestParseReadsEveryKindOfRecordAsBefore(t *testing.T) {
	const (
		checksummed = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
		lower       = "0x8ba1f109551bd432803012645ac136ddd64dba72"
		upper       = "0x8BA1F109551BD432803012645AC136DDD64DBA72"
		badSum      = "0x8ba1f109551bd432803012645Ac136ddd64DBA72" // one letter's case changed
	)
	now := time.Date(2026, 12, 1, 10, 0, 10, 0, time.UTC).UnixMilli()
	rec := func(attrs, data string) string {
		return `{"specversion":"1.0",` + attrs + `,"datacontenttype":"application/json","data":` + data + `}`
	}
	attrs := func(source, tm string) string {
		return `"id":"r1","source":"` + source + `","subject":"7","type":"glovebox.signals","time":"` + tm + `"`
	}
	std := attrs(checksummed, "2026-12-01T10:00:00Z")
	signals := func(items ...string) string { return `{"signals":[` + strings.Join(items, ",") + `]}` }
	sig := func(name, ts, value string) string {
		return `{"name":"` + name + `","timestamp":"` + ts + `","value":` + value + `}`
	}
	const ts = "2026-12-01T10:00:00Z"
	speed := sig("speed", ts, "42.5")
	cases := []struct {
		name, event, want string
	}{
		{"every kind of value", rec(std, signals(
			speed,
			sig("powertrainTransmissionCurrentGear", ts, "-3"),
			sig("isIgnitionOn", ts, "true"),
			sig("isIgnitionOn", ts, "false"),
			sig("isIgnitionOn", ts, "1"),
			sig("exteriorAirTemperature", ts, "-0"),
			sig("exteriorAirTemperature", ts, "-1.5e1"),
			sig("powertrainType", ts, `"B\u00c9V \"x\"\n\/"`),
			sig("powertrainType", ts, `""`),
			sig("obdDTCList", ts, `["P0420","<&>","\u00e9"]`),
			sig("obdDTCList", ts, `[]`),
			sig("currentLocationCoordinates", ts, `{"hdop":0.5,"longitude":-9.1393,"latitude":38.7223}`),
			sig("currentLocationCoordinates", ts, `{"latitude":-90,"longitude":180}`),
		)), `0x8ba1f109551bD432803012645Ac136ddd64DBA72 "r1" vehicle 7 at 1796119200000: speed@1796119200000=42.5 ` +
			`powertrainTransmissionCurrentGear@1796119200000=-3(signed) isIgnitionOn@1796119200000=1 ` +
			`isIgnitionOn@1796119200000=0 isIgnitionOn@1796119200000=1 exteriorAirTemperature@1796119200000=0 ` +
			`exteriorAirTemperature@1796119200000=-15(signed) powertrainType@1796119200000="BÉV \"x\"\n/" ` +
			`powertrainType@1796119200000="" obdDTCList@1796119200000="[\"P0420\",\"\\u003c\\u0026\\u003e\",\"é\"]" ` +
			`obdDTCList@1796119200000="[]" currentLocationCoordinates@1796119200000=(38.7223,-9.1393,0.5) ` +
			`currentLocationCoordinates@1796119200000=(-90,180,0)`},
		{"odd timestamps", rec(attrs(checksummed, "2026-12-01T11:00:00.5+01:00"), signals(
			sig("speed", "2026-12-01T11:00:00.5+01:00", "1"),
			sig("speed", "2026-12-01T10:00:00.123456789Z", "2"),
			sig("speed", "2026-12-01T10:00:00.123456789Z", "3"),
			sig("speed", "2026-12-01T05:30:00-04:30", "4"),
			sig("speed", "2026-12-01T10:00:00.000Z", "5"),
			sig("speed", "2026-12-01T10:00:00Z", "6"),
			sig("speed", "2026-12-01T11:00:00.5+01:00", "7"),
			sig("speed", "1969-12-31T23:59:59.5Z", "8"),
			sig("speed", "2026-12-01T10:00:09.999999999Z", "9"),
		)), `0x8ba1f109551bD432803012645Ac136ddd64DBA72 "r1" vehicle 7 at 1796119200500: speed@1796119200500=1 ` +
			`speed@1796119200123=2 speed@1796119200123=3 speed@1796119200000=4 speed@1796119200000=5 ` +
			`speed@1796119200000=6 speed@1796119200500=7 speed@-500=8 speed@1796119209999=9`},
		{"escapes in names and attributes, and extension attributes",
			`{"specversion":"1.0","\u0069d":"r\u00e9\/1","source":"` + checksummed + `","subject":"7","type":"glovebox.signals",` +
				`"time":"2026-12-01T10:00:00Z","dataschema":"urn:x","traceparent":"00-ab","datacontenttype":"application\/json",` +
				`"data":` + signals(sig(`sp\u0065ed`, ts, "1"), sig(`currentLocation\u0043oordinates`, ts, `{"l\u0061titude":1,"longitude":2}`)) + `}`,
			`0x8ba1f109551bD432803012645Ac136ddd64DBA72 "ré/1" vehicle 7 at 1796119200000: speed@1796119200000=1 ` +
				`currentLocationCoordinates@1796119200000=(1,2,0)`},
		{"members in another order", `{"data":{"signals":[{"value":5,"timestamp":"` + ts + `","name":"speed"}]},"time":"` + ts +
			`","type":"glovebox.signals","subject":"12","source":"` + checksummed + `","id":"z","datacontenttype":"application/json","specversion":"1.0"}`,
			`0x8ba1f109551bD432803012645Ac136ddd64DBA72 "z" vehicle 12 at 1796119200000: speed@1796119200000=5`},
		{"a lower-case source", rec(attrs(lower, ts), signals(speed)),
			`0x8ba1f109551bD432803012645Ac136ddd64DBA72 "r1" vehicle 7 at 1796119200000: speed@1796119200000=42.5`},
		{"an upper-case source", rec(attrs(upper, ts), signals(speed)),
			`0x8ba1f109551bD432803012645Ac136ddd64DBA72 "r1" vehicle 7 at 1796119200000: speed@1796119200000=42.5`},
		{"the checksummed source again", rec(std, signals(speed)),
			`0x8ba1f109551bD432803012645Ac136ddd64DBA72 "r1" vehicle 7 at 1796119200000: speed@1796119200000=42.5`},
		{"an events record", `{"specversion":"1.0","id":"e1","source":"` + lower + `","subject":"7","type":"glovebox.events","time":"` + ts +
			`","datacontenttype":"application/json","data":{"events":[{"name":"behavior.harshBraking","timestamp":"` + ts +
			`","durationNs":1200000000,"metadata":{"g":0.5, "s":"\u00e9"}},{"durationNs":0,"timestamp":"2026-12-01T10:00:01.25+00:00","name":"safety.collision"}]}}`,
			`0x8ba1f109551bD432803012645Ac136ddd64DBA72 "e1" vehicle 7 at 1796119200000: ` +
				`{Vehicle:7 Name:behavior.harshBraking Time:1796119200000 DurationNs:1200000000 Source:0x8ba1f109551bD432803012645Ac136ddd64DBA72 Metadata:{"g":0.5,"s":"\u00e9"}} ` +
				`{Vehicle:7 Name:safety.collision Time:1796119201250 DurationNs:0 Source:0x8ba1f109551bD432803012645Ac136ddd64DBA72 Metadata:}`},

		{"a bad checksum", rec(attrs(badSum, ts), signals(speed)),
			`malformed: source must be the device address: "0x8ba1f109551bd432803012645Ac136ddd64DBA72" has a bad EIP-55 checksum`},
		{"a bad checksum again", rec(attrs(badSum, ts), signals(speed)),
			`malformed: source must be the device address: "0x8ba1f109551bd432803012645Ac136ddd64DBA72" has a bad EIP-55 checksum`},
		{"a 0X prefix", rec(attrs("0X"+checksummed[2:], ts), signals(speed)),
			`malformed: source must be the device address: "0X8ba1f109551bD432803012645Ac136ddd64DBA72" is not a 0x-prefixed 20-byte hex address`},
		{"no prefix", rec(attrs(checksummed[2:], ts), signals(speed)),
			`malformed: source must be the device address: "8ba1f109551bD432803012645Ac136ddd64DBA72" is not a 0x-prefixed 20-byte hex address`},
		{"a short source", rec(attrs(checksummed[:41], ts), signals(speed)),
			`malformed: source must be the device address: "0x8ba1f109551bD432803012645Ac136ddd64DBA7" is not a 0x-prefixed 20-byte hex address`},
		{"a source that is not hex", rec(attrs(checksummed[:41]+"g", ts), signals(speed)),
			`malformed: source must be the device address: "0x8ba1f109551bD432803012645Ac136ddd64DBA7g" is not a 0x-prefixed 20-byte hex address`},
		{"an attribute twice", `{"specversion":"1.0","id":"a","id":"b"}`,
			`malformed: event is not JSON: member "id" appears twice in an object`},
		{"an extension attribute twice", rec(std+`,"x":"1","x":"1"`, signals(speed)),
			`malformed: event is not JSON: member "x" appears twice in an object`},
		{"data twice", rec(std, signals(speed)+`,"data":{}`),
			`malformed: event is not JSON: member "data" appears twice in an object`},
		{"an escaped attribute twice", rec(std+`,"\u0069d":"r1"`, signals(speed)),
			`malformed: event is not JSON: member "id" appears twice in an object`},
		{"an attribute that is not a string", rec(`"id":"r1","source":"`+checksummed+`","subject":7,"type":"glovebox.signals","time":"`+ts+`"`, signals(speed)),
			`malformed: attribute "subject" must be a string`},
		{"an extension attribute that is not a string", rec(std+`,"x":null`, signals(speed)),
			`malformed: attribute "x" must be a string`},
		{"another specversion", strings.Replace(rec(std, signals(speed)), `"1.0"`, `"1.1"`, 1),
			`malformed: specversion must be "1.0"`},
		{"no datacontenttype", strings.Replace(rec(std, signals(speed)), `"datacontenttype":"application/json",`, ``, 1),
			`malformed: datacontenttype must be "application/json"`},
		{"another type", strings.Replace(rec(std, signals(speed)), `glovebox.signals`, `glovebox.signal`, 1),
			`malformed: type must be "glovebox.signals" or "glovebox.events"`},
		{"an empty id", strings.Replace(rec(std, signals(speed)), `"id":"r1"`, `"id":""`, 1),
			`malformed: id must be 1 to 128 bytes of UTF-8`},
		{"a long id", strings.Replace(rec(std, signals(speed)), `"id":"r1"`, `"id":"`+strings.Repeat("x", 129)+`"`, 1),
			`malformed: id must be 1 to 128 bytes of UTF-8`},
		{"no source", strings.Replace(rec(std, signals(speed)), `"source":"`+checksummed+`",`, ``, 1),
			`malformed: source must be the device address: "" is not a 0x-prefixed 20-byte hex address`},
		{"a subject with a leading zero", strings.Replace(rec(std, signals(speed)), `"subject":"7"`, `"subject":"07"`, 1),
			`malformed: subject must be the vehicle id in decimal`},
		{"subject zero", strings.Replace(rec(std, signals(speed)), `"subject":"7"`, `"subject":"0"`, 1),
			`malformed: subject must be the vehicle id in decimal`},
		{"a time that is not RFC 3339", rec(attrs(checksummed, "2026-12-01 10:00:00Z"), signals(speed)),
			`malformed: time must be RFC 3339: parsing time "2026-12-01 10:00:00Z" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse " 10:00:00Z" as "T"`},
		{"a time in the future", rec(attrs(checksummed, "2026-12-01T10:00:20.001Z"), signals(speed)),
			`future_time: time 2026-12-01T10:00:20.001Z is more than 10s ahead of the node's clock`},
		{"a leap second", rec(std, signals(speed, sig("speed", "2026-12-01T09:59:60Z", "1"))),
			`malformed: signal 1: speed: timestamp must be RFC 3339`},
		{"a lower-case t and z", rec(std, signals(speed, sig("speed", "2026-12-01t10:00:00z", "1"))),
			`malformed: signal 1: speed: timestamp must be RFC 3339`},
		{"a bad timestamp after the record's", rec(std, signals(speed, sig("speed", "2026-12-01T10:00:00", "1"))),
			`malformed: signal 1: speed: timestamp must be RFC 3339`},
		{"a future timestamp after a good one", rec(std, signals(speed, sig("speed", "2026-12-01T10:00:21Z", "1"))),
			`future_time: signal 1: speed: timestamp is more than 10s ahead of the node's clock`},
		{"an unknown signal", rec(std, signals(speed, sig(`sp\u0065eed`, ts, "1"))),
			`unknown_signal: signal 1: no signal "speeed" in the catalogue`},
		{"a name that is not a string", rec(std, signals(`{"name":1,"timestamp":"`+ts+`","value":1}`)),
			`malformed: signal 0: a signal is {"name": string, "timestamp": RFC 3339, "value": …}`},
		{"a signal with a fourth member", rec(std, signals(`{"name":"speed","timestamp":"`+ts+`","value":1,"unit":"km/h"}`)),
			`malformed: signal 0: a signal is {"name", "timestamp", "value"}`},
		{"a signal without a value", rec(std, signals(`{"name":"speed","timestamp":"`+ts+`","valu":1}`)),
			`malformed: signal 0: a signal is {"name": string, "timestamp": RFC 3339, "value": …}`},
		{"a number out of range", rec(std, signals(sig("speed", ts, "601"))),
			`bad_value: signal 0: speed: 601 is outside 0..600 km/h`},
		{"a fraction for an integer", rec(std, signals(sig("powertrainTransmissionCurrentGear", ts, "1.5"))),
			`bad_value: signal 0: powertrainTransmissionCurrentGear: want an integer (int8)`},
		{"a string for a number", rec(std, signals(sig("speed", ts, `"5"`))),
			`bad_value: signal 0: speed: want a number`},
		{"two for a boolean", rec(std, signals(sig("isIgnitionOn", ts, "2"))),
			`bad_value: signal 0: isIgnitionOn: want true, false, 0 or 1`},
		{"a long string", rec(std, signals(sig("powertrainType", ts, `"`+strings.Repeat("x", 257)+`"`))),
			`bad_value: signal 0: powertrainType: want at most 256 bytes of UTF-8`},
		{"a list with a number", rec(std, signals(sig("obdDTCList", ts, `["P0420",1]`))),
			`bad_value: signal 0: obdDTCList: want an array of strings`},
		{"a latitude out of range", rec(std, signals(sig("currentLocationCoordinates", ts, `{"latitude":91,"longitude":0}`))),
			`bad_value: signal 0: currentLocationCoordinates: latitude, longitude or hdop out of range`},
		{"a location without a longitude", rec(std, signals(sig("currentLocationCoordinates", ts, `{"latitude":1,"hdop":0}`))),
			`bad_value: signal 0: currentLocationCoordinates: want {"latitude": number, "longitude": number, "hdop": number}`},
		{"no data", strings.Replace(rec(std, signals(speed)), `,"data":`+signals(speed), ``, 1),
			`malformed: data must be an object {"signals": […]} or {"events": […]}`},
		{"data with another member", rec(std, `{"signals":[`+speed+`],"x":1}`),
			`malformed: data must be exactly {"signals": […]}`},
		{"no signals", rec(std, signals()),
			`malformed: a record carries 1 to 500 signals`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := DefaultCatalog.Parse(&Submission{Event: []byte(c.event), Signature: make([]byte, 65)}, now)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = describe(r)
			}
			if got != c.want {
				t.Fatalf("%s\n got %s\nwant %s", c.event, got, c.want)
			}
			if err != nil {
				return
			}
			stored, err := DefaultCatalog.ParseStored([]byte(c.event))
			if err != nil {
				t.Fatalf("ParseStored: %v", err)
			}
			r.Received, stored.Received = 0, 0
			if !reflect.DeepEqual(stored, r) {
				t.Errorf("ParseStored = %+v, want %+v", stored, r)
			}
		})
	}
}

// TestASourceChecksumIsCheckedOnlyWhenStrict: a record from the network must spell its source with a
// correct checksum (or in one case); a stored record's source is read without it, to the same address.
func TestASourceChecksumIsCheckedOnlyWhenStrict(t *testing.T) {
	good := "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
	for range 2 {
		if _, err := parseSource([]byte(good), true); err != nil {
			t.Fatal(err)
		}
	}
	for i := 2; i < len(good); i++ {
		c := good[i]
		if c < 'A' || (c > 'F' && c < 'a') {
			continue
		}
		bad := []byte(good)
		bad[i] ^= 0x20 // the other case
		if _, err := parseSource(bad, true); err == nil || !strings.Contains(err.Error(), "bad EIP-55 checksum") {
			t.Errorf("%s: %v, want a bad checksum", bad, err)
		}
		if got, err := parseSource(bad, false); err != nil || got != common.HexToAddress(good) {
			t.Errorf("%s not strict: %v %v, want the address", bad, got, err)
		}
	}
}
