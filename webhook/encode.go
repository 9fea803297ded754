package webhook

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// The body of a delivery is encoded once, when the delivery is made, by appending: the CloudEvent
// envelope and the data of the signal events (one a firing) directly, the data of the other, rarer events
// with encoding/json. The bytes are those encoding/json gives for the same values (encode_test.go checks
// it on a table and a fuzz test): a value this file cannot encode the same way goes to encoding/json.

// encodeEvent returns the CloudEvent of a delivery (the JSON of CloudEvent), data being its compact JSON.
func encodeEvent(id, source, typ string, vehicle uint64, at time.Time, data []byte) ([]byte, error) {
	b := make([]byte, 0, 160+len(id)+len(source)+len(typ)+len(data))
	b = append(b, `{"specversion":"1.0","id":`...)
	b = appendString(b, id)
	b = append(b, `,"source":`...)
	b = appendString(b, source)
	b = append(b, `,"type":`...)
	b = appendString(b, typ)
	if vehicle != 0 {
		b = append(b, `,"subject":"`...)
		b = strconv.AppendUint(b, vehicle, 10)
		b = append(b, '"')
	}
	b = append(b, `,"time":`...)
	b, err := appendTime(b, at.UTC())
	if err != nil {
		return nil, fmt.Errorf("couldn't encode the event: %w", err)
	}
	b = append(b, `,"datacontenttype":"application/json","data":`...)
	b = append(b, data...)
	return append(b, '}'), nil
}

// encodeData returns the JSON of an event's data.
func encodeData(data any) ([]byte, error) {
	d, ok := data.(SignalData)
	if !ok {
		return json.Marshal(data)
	}
	b := make([]byte, 0, 192+len(d.WebhookID)+len(d.Condition))
	b = append(b, `{"webhookId":`...)
	b = appendString(b, d.WebhookID)
	b = append(b, `,"vehicleId":`...)
	b = strconv.AppendUint(b, d.VehicleID, 10)
	b = append(b, `,"signal":{"name":`...)
	b = appendString(b, d.Signal.Name)
	b = append(b, `,"timestamp":`...)
	b, err := appendTime(b, d.Signal.Timestamp)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"value":`...)
	if b, err = appendValue(b, d.Signal.Value); err != nil {
		return nil, err
	}
	if d.Signal.Unit != "" {
		b = append(b, `,"unit":`...)
		b = appendString(b, d.Signal.Unit)
	}
	b = append(b, `},"previousValue":`...)
	if b, err = appendValue(b, d.PreviousValue); err != nil {
		return nil, err
	}
	b = append(b, `,"condition":`...)
	b = appendString(b, d.Condition)
	return append(b, '}'), nil
}

// appendString appends s as a JSON string. A string with anything but printable ASCII other than the
// characters encoding/json escapes goes to encoding/json, which escapes <, > and & for HTML, U+2028 and
// U+2029, and replaces invalid UTF-8.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendTime appends t as time.Time's JSON (RFC 3339 with nanoseconds, quoted).
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		q, err := json.Marshal(t)
		if err != nil {
			return nil, err
		}
		return append(b, q...), nil
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendValue appends a value of an event (jsonValue's): numbers, booleans and strings here, the rest
// (lists, locations) with encoding/json.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case float64:
		// encoding/json writes these without an exponent; the rest (and NaN, ±Inf, which it refuses)
		// goes to it.
		if a := math.Abs(v); a == 0 || (a >= 1e-6 && a < 1e21) {
			return strconv.AppendFloat(b, v, 'f', -1, 64), nil
		}
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return appendString(b, v), nil
	}
	q, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, q...), nil
}
