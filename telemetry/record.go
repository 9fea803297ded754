package telemetry

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/valyala/fastjson"

	"github.com/glovebox/glovebox/ledger"
)

// Status is the outcome of one submitted record: "accepted", "duplicate", "conflict", or an error code.
type Status string

// The outcomes and error codes of ingest. They are part of the public API.
const (
	StatusAccepted      Status = "accepted"      // verified and durable
	StatusDuplicate     Status = "duplicate"     // the same (source, id) with the same bytes is already stored
	StatusConflict      Status = "conflict"      // the same (source, id) is stored with other bytes; this one is dropped
	StatusMalformed     Status = "malformed"     // not a CloudEvents 1.0 glovebox.signals record, or a bad envelope
	StatusBadSignature  Status = "bad_signature" // the signature does not recover, or not to the record's source
	StatusNotPaired     Status = "not_paired"    // the source was not paired to the subject at the record's time
	StatusFutureTime    Status = "future_time"   // the record (or a signal or event) is more than MaxClockSkew ahead of the node
	StatusUnknownSignal Status = "unknown_signal"
	StatusUnknownEvent  Status = "unknown_event" // an event name that is not one of EventNames
	StatusBadValue      Status = "bad_value"     // a value of the wrong type or outside the signal's range
	StatusUnavailable   Status = "unavailable"
)

// StatusDescriptions documents every status, in the order of the documentation table.
var StatusDescriptions = []struct {
	Status      Status
	Description string
}{
	{StatusAccepted, "the record verified and is durable"},
	{StatusDuplicate, "a record with this source and id is already stored, with the same bytes (acknowledged, stored once)"},
	{StatusConflict, "a record with this source and id is already stored with different bytes; this one is not stored"},
	{StatusMalformed, "the envelope or the event is not what the wire format says (JSON, CloudEvents attributes, signals shape)"},
	{StatusBadSignature, "the signature is not 65 bytes, not canonical, or not by the record's source"},
	{StatusNotPaired, "the source device was not paired to the subject vehicle at the record's time (or a signal's)"},
	{StatusFutureTime, "the record's time, or a signal's or event's timestamp, is more than 10 seconds ahead of the node's clock: send it again once that time has passed"},
	{StatusUnknownSignal, "a signal name is not in the catalogue (GET /v1/signals)"},
	{StatusUnknownEvent, "an event name is not one of DIMO's (behavior.harshBraking, …; see docs/telemetry.md)"},
	{StatusBadValue, "a signal value has the wrong type or is outside the signal's range"},
	{StatusUnavailable, "the node could not store the record (disk error or shutting down); send it again"},
}

// MaxClockSkew is how far ahead of the node's clock a record's time (or a signal's or event's timestamp)
// may be. A record dated ahead is answered only once the node's clock has reached its latest time, and is
// verified again then (Ingester.Ingest): a pairing in force now can still end before a time to come (an
// unpair or a sale accepted in between), and a record checked only against the open pairing would be
// stored dated after the end of the pairing that vouched for it, and served to the vehicle's next owner
// with that pairing's proof. A time the node's clock has reached is settled: an entry ending the pairing
// later ends it at a later time. The answer waits at most this long, so it is short. (It was 5 minutes
// until issue 13.)
const MaxClockSkew = 10 * time.Second

// Limits of the wire format.
const (
	MaxEventSize  = 64 << 10 // bytes of one event
	MaxSignals    = 500      // signals in one event
	MaxIDLen      = 128
	MaxStringLen  = 256 // a string value
	MaxStringList = 64  // items of a string[] value
)

// Submission is one record as submitted: the event exactly as the device produced it, and its signature.
type Submission struct {
	Event     []byte
	Signature []byte // 65 bytes when well formed; checked by Verify
	err       Status // set when the envelope itself was malformed
	errMsg    string
}

// Result is the answer for one submission.
type Result struct {
	ID      string `json:"id,omitempty"`
	Source  string `json:"source,omitempty"`
	Status  Status `json:"status"`
	Message string `json:"message,omitempty"`
}

// Value is one signal value of a verified record.
type Value struct {
	Signal *Signal
	Time   int64   // unix ms
	Number float64 // numbers and booleans (0/1)
	String string  // strings; string[] as a JSON array
	Lat    float64 // locations
	Lon    float64
	HDOP   float64
}

// RecordKey names a record: its source (the device that signed it) and its id. No two stored records share
// one (telemetry/stream and the stores deduplicate by it).
type RecordKey struct {
	Source common.Address
	ID     string
}

// Record is a verified record.
type Record struct {
	Source    common.Address
	ID        string
	VehicleID uint64
	Time      int64 // unix ms, the CloudEvents time
	Received  int64 // unix ms
	Event     []byte
	Signature [65]byte
	Pairing   ledger.Pairing // the pairing in force at Time
	Values    []Value        // the signals of a TypeSignals record
	Events    []Event        // the events of a TypeEvents record (Vehicle and Source filled in)
}

// Latest returns the latest of the record's time and its signals' and events' timestamps (unix ms).
func (r *Record) Latest() int64 {
	t := r.Time
	for _, v := range r.Values {
		t = max(t, v.Time)
	}
	for _, e := range r.Events {
		t = max(t, e.Time)
	}
	return t
}

// ErrTooMany is returned by ParseSubmissions for a batch over the limit.
var ErrTooMany = errors.New("too many records")

// ParseSubmissions decodes the body of POST /v1/events: one envelope {"event": "<the event bytes as a
// JSON string>", "signature": "0x…"} or an array of them. An envelope that is itself malformed gets its
// own malformed result rather than failing the batch; only a body that is not JSON (or not an object or
// array) fails as a whole.
func ParseSubmissions(body []byte, maxItems int) (subs []Submission, single bool, err error) {
	if err := checkJSONText(body); err != nil {
		return nil, false, fmt.Errorf("bad JSON: %w", err)
	}
	var p fastjson.Parser
	v, err := p.ParseBytes(body)
	if err != nil {
		return nil, false, fmt.Errorf("bad JSON: %w", err)
	}
	if err := checkUniqueKeys(v); err != nil {
		return nil, false, fmt.Errorf("bad JSON: %w", err)
	}
	switch v.Type() {
	case fastjson.TypeObject:
		return []Submission{parseEnvelope(v)}, true, nil
	case fastjson.TypeArray:
		items, _ := v.Array()
		if len(items) > maxItems {
			return nil, false, fmt.Errorf("%w: a batch holds at most %d records", ErrTooMany, maxItems)
		}
		subs = make([]Submission, len(items))
		for i, it := range items {
			subs[i] = parseEnvelope(it)
		}
		return subs, false, nil
	}
	return nil, false, fmt.Errorf("want an envelope object or an array of them")
}

func parseEnvelope(v *fastjson.Value) Submission {
	obj, err := v.Object()
	if err != nil {
		return Submission{err: StatusMalformed, errMsg: "an envelope is an object {\"event\": …, \"signature\": …}"}
	}
	var s Submission
	var bad string
	obj.Visit(func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "event":
			if v.Type() != fastjson.TypeString {
				bad = "event must be a JSON string holding the event bytes"
				return
			}
			s.Event = append([]byte(nil), v.GetStringBytes()...)
		case "signature":
			if v.Type() != fastjson.TypeString {
				bad = "signature must be a 0x-hex string"
				return
			}
			str := string(v.GetStringBytes())
			if len(str) != 132 || !strings.HasPrefix(str, "0x") {
				s.err, s.errMsg = StatusBadSignature, "a signature is 0x and 130 hex digits"
				return
			}
			b, err := hex.DecodeString(str[2:])
			if err != nil {
				s.err, s.errMsg = StatusBadSignature, "signature is not hex"
				return
			}
			s.Signature = b
		default:
			bad = fmt.Sprintf("unknown envelope member %q", k)
		}
	})
	if bad != "" {
		return Submission{err: StatusMalformed, errMsg: bad}
	}
	if s.err == "" && (s.Event == nil || s.Signature == nil) {
		return Submission{err: StatusMalformed, errMsg: "an envelope has an event and a signature"}
	}
	return s
}

// MarshalJSON encodes the envelope {"event": "…", "signature": "0x…"}.
func (s Submission) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Event     string `json:"event"`
		Signature string `json:"signature"`
	}{string(s.Event), "0x" + hex.EncodeToString(s.Signature)})
}

// Sign signs event bytes with personal_sign and returns the submission.
func Sign(event []byte, key *ecdsa.PrivateKey) (Submission, error) {
	h := ledger.PersonalHash(event)
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		return Submission{}, fmt.Errorf("couldn't sign the event: %w", err)
	}
	sig[64] += 27
	return Submission{Event: event, Signature: sig}, nil
}

// Signer recovers the address that signed the submission's event.
func (s *Submission) Signer() (common.Address, error) {
	if len(s.Signature) != 65 {
		return common.Address{}, fmt.Errorf("signature is %d bytes, want 65", len(s.Signature))
	}
	var sig ledger.Signature
	copy(sig[:], s.Signature)
	if sig[64] < 2 {
		sig[64] += 27
	}
	return ledger.Recover(ledger.PersonalHash(s.Event), sig)
}

// failure is a verification failure with its status.
type failure struct {
	status Status
	msg    string
}

func (f *failure) Error() string { return string(f.status) + ": " + f.msg }

func fail(s Status, format string, args ...any) *failure {
	return &failure{s, fmt.Sprintf(format, args...)}
}

// StatusOf returns the status carried by an error from Parse or Verify.
func StatusOf(err error) Status {
	if f, ok := err.(*failure); ok {
		return f.status
	}
	return StatusMalformed
}

// parsed is an event's attributes before the checks that need the ledger.
type parsed struct {
	id, source, subject string
	time                int64
	signals             []*fastjson.Value
}

// Parse decodes and checks a submission's event against the wire format and the catalogue, without
// the signature or the ledger: CloudEvents 1.0 structured JSON with specversion "1.0", id, source (an
// address), subject (a vehicle id), type "glovebox.signals", time (RFC 3339), datacontenttype
// "application/json" and data {"signals": [{"name", "timestamp", "value"}, …]}. now is the node's clock
// (unix ms).
func (c *Catalog) Parse(s *Submission, now int64) (*Record, error) {
	return c.parse(s, now, true)
}

// ParseStored decodes the event of a record this node stored, which Parse accepted when it arrived: the
// same result as Parse, without Parse's checks of the JSON text (RFC 8259 validity, member names once),
// which the bytes passed then and cannot fail now; a third of the cost. Never for bytes from the network.
func (c *Catalog) ParseStored(event []byte) (*Record, error) {
	return c.parse(&Submission{Event: event, Signature: make([]byte, 65)}, math.MaxInt64/2, false)
}

// parsers are the JSON parsers of parse: a parser reused keeps its buffers, which a new one grows again
// for every record.
var parsers fastjson.ParserPool

func (c *Catalog) parse(s *Submission, now int64, strict bool) (*Record, error) {
	if s.err != "" {
		return nil, fail(s.err, "%s", s.errMsg)
	}
	if len(s.Event) > MaxEventSize {
		return nil, fail(StatusMalformed, "event is %d bytes, more than %d", len(s.Event), MaxEventSize)
	}
	// One strict pass (RFC 8259, valid UTF-8, no member name twice) accepts nearly every event; only one
	// it refuses is examined again, to say why. A stored record (not strict) passed it when it arrived.
	valid := !strict || jsontext.Value(s.Event).IsValid()
	if !valid {
		if err := checkJSONText(s.Event); err != nil {
			return nil, fail(StatusMalformed, "event is not JSON: %v", err)
		}
	}
	p := parsers.Get() // the values it returns are copied out before it goes back
	defer parsers.Put(p)
	v, err := p.ParseBytes(s.Event)
	if err != nil {
		return nil, fail(StatusMalformed, "event is not JSON: %v", err)
	}
	if !valid {
		if err := checkUniqueKeys(v); err != nil {
			return nil, fail(StatusMalformed, "event is not JSON: %v", err)
		}
		return nil, fail(StatusMalformed, "event is not RFC 8259 JSON")
	}
	obj, err := v.Object()
	if err != nil {
		return nil, fail(StatusMalformed, "event is not a JSON object")
	}
	attrs := map[string]string{}
	var data *fastjson.Value
	var bad *failure
	obj.Visit(func(k []byte, v *fastjson.Value) {
		key := string(k)
		if _, dup := attrs[key]; dup || (key == "data" && data != nil) {
			bad = fail(StatusMalformed, "attribute %q appears twice", key)
			return
		}
		if key == "data" {
			data = v
			return
		}
		if v.Type() != fastjson.TypeString {
			bad = fail(StatusMalformed, "attribute %q must be a string", key)
			return
		}
		attrs[key] = string(v.GetStringBytes())
	})
	if bad != nil {
		return nil, bad
	}
	for k, want := range map[string]string{"specversion": "1.0", "datacontenttype": "application/json"} {
		if attrs[k] != want {
			return nil, fail(StatusMalformed, "%s must be %q", k, want)
		}
	}
	if typ := attrs["type"]; typ != TypeSignals && typ != TypeEvents {
		return nil, fail(StatusMalformed, "type must be %q or %q", TypeSignals, TypeEvents)
	}
	r := &Record{Event: s.Event}
	r.ID = attrs["id"]
	if r.ID == "" || len(r.ID) > MaxIDLen || !utf8.ValidString(r.ID) {
		return nil, fail(StatusMalformed, "id must be 1 to %d bytes of UTF-8", MaxIDLen)
	}
	src, err := ledger.ParseAddress(attrs["source"])
	if err != nil {
		return nil, fail(StatusMalformed, "source must be the device address: %v", err)
	}
	r.Source = src
	sub := attrs["subject"]
	id, err := strconv.ParseUint(sub, 10, 64)
	if err != nil || id == 0 || strconv.FormatUint(id, 10) != sub {
		return nil, fail(StatusMalformed, "subject must be the vehicle id in decimal")
	}
	r.VehicleID = id
	t, err := time.Parse(time.RFC3339Nano, attrs["time"])
	if err != nil {
		return nil, fail(StatusMalformed, "time must be RFC 3339: %v", err)
	}
	r.Time = t.UnixMilli()
	if r.Time > now+MaxClockSkew.Milliseconds() {
		return nil, fail(StatusFutureTime, "time %s is more than %s ahead of the node's clock", attrs["time"], MaxClockSkew)
	}
	if data == nil || data.Type() != fastjson.TypeObject {
		return nil, fail(StatusMalformed, "data must be an object {\"signals\": […]} or {\"events\": […]}")
	}
	if attrs["type"] == TypeEvents {
		evs, f := parseEvents(data, now)
		if f != nil {
			return nil, f
		}
		for i := range evs {
			evs[i].Vehicle, evs[i].Source = r.VehicleID, r.Source.Hex()
		}
		r.Events = evs
		return r, nil
	}
	dobj, _ := data.Object()
	if dobj.Len() != 1 || data.Get("signals") == nil || data.Get("signals").Type() != fastjson.TypeArray {
		return nil, fail(StatusMalformed, "data must be exactly {\"signals\": […]}")
	}
	sigs, _ := data.Get("signals").Array()
	if len(sigs) == 0 || len(sigs) > MaxSignals {
		return nil, fail(StatusMalformed, "a record carries 1 to %d signals", MaxSignals)
	}
	r.Values = make([]Value, 0, len(sigs))
	for i, sv := range sigs {
		val, err := c.parseValue(sv, now)
		if err != nil {
			err.msg = fmt.Sprintf("signal %d: %s", i, err.msg)
			return nil, err
		}
		r.Values = append(r.Values, val)
	}
	return r, nil
}

// checkJSONText refuses what is not RFC 8259 JSON text: invalid UTF-8 anywhere, and anything
// encoding/json's grammar refuses (a leading '+' or zero, '.5', '1e', raw control characters in strings,
// escapes other than \" \\ \/ \b \f \n \r \t \uXXXX, …). The fast parser used after it reads some of
// those as numbers or strings; signed bytes must mean to the node what they mean to any standard parser.
func checkJSONText(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8")
	}
	// jsontext's validator holds the same grammar as json.Valid and runs about ten times faster; member
	// names appearing twice are checkUniqueKeys' business.
	if !jsontext.Value(b).IsValid(jsontext.AllowDuplicateNames(true)) {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		return errors.New("not RFC 8259 JSON")
	}
	return nil
}

// checkUniqueKeys refuses an object with a member name twice (after unescaping) at any depth: RFC 8259
// leaves the meaning to each parser, and parsers differ (the first wins here, the last in most others).
func checkUniqueKeys(v *fastjson.Value) error {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		var small [8][]byte // most objects (a signal's) have three members: compared without a map
		var keys [][]byte
		var seen map[string]bool
		if o.Len() > len(small) {
			seen = make(map[string]bool, o.Len())
		} else {
			keys = small[:0]
		}
		var err error
		o.Visit(func(k []byte, child *fastjson.Value) {
			if err != nil {
				return
			}
			dup := false
			if seen != nil {
				dup, seen[string(k)] = seen[string(k)], true
			} else {
				for _, x := range keys {
					dup = dup || bytes.Equal(x, k)
				}
				keys = append(keys, k)
			}
			if dup {
				err = fmt.Errorf("member %q appears twice in an object", k)
				return
			}
			err = checkUniqueKeys(child)
		})
		return err
	case fastjson.TypeArray:
		items, _ := v.Array()
		for _, it := range items {
			if err := checkUniqueKeys(it); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Catalog) parseValue(sv *fastjson.Value, now int64) (Value, *failure) {
	o, err := sv.Object()
	if err != nil || o.Len() != 3 {
		return Value{}, fail(StatusMalformed, "a signal is {\"name\", \"timestamp\", \"value\"}")
	}
	nv, tv, vv := sv.Get("name"), sv.Get("timestamp"), sv.Get("value")
	if nv == nil || tv == nil || vv == nil || nv.Type() != fastjson.TypeString || tv.Type() != fastjson.TypeString {
		return Value{}, fail(StatusMalformed, "a signal is {\"name\": string, \"timestamp\": RFC 3339, \"value\": …}")
	}
	name := string(nv.GetStringBytes())
	sig, ok := c.Lookup(name)
	if !ok {
		return Value{}, fail(StatusUnknownSignal, "no signal %q in the catalogue", name)
	}
	t, err := time.Parse(time.RFC3339Nano, string(tv.GetStringBytes()))
	if err != nil {
		return Value{}, fail(StatusMalformed, "%s: timestamp must be RFC 3339", name)
	}
	val := Value{Signal: sig, Time: t.UnixMilli()}
	if val.Time > now+MaxClockSkew.Milliseconds() {
		return Value{}, fail(StatusFutureTime, "%s: timestamp is more than %s ahead of the node's clock", name, MaxClockSkew)
	}
	switch sig.Kind {
	case KindNumber:
		if vv.Type() != fastjson.TypeNumber {
			return Value{}, fail(StatusBadValue, "%s: want a number", name)
		}
		f := vv.GetFloat64()
		if math.IsNaN(f) || math.IsInf(f, 0) || f < sig.Min || f > sig.Max {
			return Value{}, fail(StatusBadValue, "%s: %v is outside %v..%v %s", name, f, sig.Min, sig.Max, sig.Unit)
		}
		if sig.Integer() && f != math.Trunc(f) {
			return Value{}, fail(StatusBadValue, "%s: want an integer (%s)", name, sig.VSSType)
		}
		if f == 0 {
			f = 0 // -0 is stored as 0: stores differ in keeping the sign of zero, and no signal means by it
		}
		val.Number = f
	case KindBool:
		switch vv.Type() {
		case fastjson.TypeTrue:
			val.Number = 1
		case fastjson.TypeFalse:
		case fastjson.TypeNumber:
			f := vv.GetFloat64()
			if f != 0 && f != 1 {
				return Value{}, fail(StatusBadValue, "%s: want true, false, 0 or 1", name)
			}
			val.Number = f
		default:
			return Value{}, fail(StatusBadValue, "%s: want a boolean", name)
		}
	case KindString:
		if vv.Type() != fastjson.TypeString {
			return Value{}, fail(StatusBadValue, "%s: want a string", name)
		}
		str := vv.GetStringBytes()
		if len(str) > MaxStringLen || !utf8.Valid(str) {
			return Value{}, fail(StatusBadValue, "%s: want at most %d bytes of UTF-8", name, MaxStringLen)
		}
		val.String = string(str)
	case KindStrings:
		items, err := vv.Array()
		if err != nil || len(items) > MaxStringList {
			return Value{}, fail(StatusBadValue, "%s: want an array of at most %d strings", name, MaxStringList)
		}
		list := make([]string, len(items))
		for i, it := range items {
			b := it.GetStringBytes()
			if it.Type() != fastjson.TypeString || len(b) > MaxStringLen || !utf8.Valid(b) {
				return Value{}, fail(StatusBadValue, "%s: want an array of strings", name)
			}
			list[i] = string(b)
		}
		enc, _ := json.Marshal(list)
		val.String = string(enc)
	case KindLocation:
		lo, err := vv.Object()
		if err != nil {
			return Value{}, fail(StatusBadValue, "%s: want {\"latitude\", \"longitude\", \"hdop\"}", name)
		}
		var bad bool
		lo.Visit(func(k []byte, v *fastjson.Value) {
			if v.Type() != fastjson.TypeNumber {
				bad = true
				return
			}
			switch string(k) {
			case "latitude":
				val.Lat = v.GetFloat64()
			case "longitude":
				val.Lon = v.GetFloat64()
			case "hdop":
				val.HDOP = v.GetFloat64()
			default:
				bad = true
			}
		})
		if bad || lo.Get("latitude") == nil || lo.Get("longitude") == nil {
			return Value{}, fail(StatusBadValue, "%s: want {\"latitude\": number, \"longitude\": number, \"hdop\": number}", name)
		}
		if val.Lat < -90 || val.Lat > 90 || val.Lon < -180 || val.Lon > 180 || val.HDOP < 0 || val.HDOP > 100 ||
			math.IsNaN(val.Lat+val.Lon+val.HDOP) {
			return Value{}, fail(StatusBadValue, "%s: latitude, longitude or hdop out of range", name)
		}
	}
	return val, nil
}

// EventSignal is one signal of an event being built by NewEvent.
type EventSignal struct {
	Name      string
	Timestamp time.Time
	Value     any // float64, bool, string, []string or Location
}

// Location is the value of currentLocationCoordinates.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	HDOP      float64 `json:"hdop"`
}

// NewEvent builds the bytes of a record as a device would produce them.
func NewEvent(source common.Address, vehicleID uint64, id string, at time.Time, signals []EventSignal) ([]byte, error) {
	type sig struct {
		Name      string `json:"name"`
		Timestamp string `json:"timestamp"`
		Value     any    `json:"value"`
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
			Signals []sig `json:"signals"`
		} `json:"data"`
	}{SpecVersion: "1.0", ID: id, Source: source.Hex(), Subject: strconv.FormatUint(vehicleID, 10),
		Type: "glovebox.signals", Time: at.UTC().Format(time.RFC3339Nano), DataContentType: "application/json"}
	for _, s := range signals {
		ev.Data.Signals = append(ev.Data.Signals, sig{s.Name, s.Timestamp.UTC().Format(time.RFC3339Nano), s.Value})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// EncodeLocation packs a location as stored in the signal tables: latitude, longitude and hdop as
// big-endian IEEE 754 float64s.
func EncodeLocation(lat, lon, hdop float64) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[0:], math.Float64bits(lat))
	binary.BigEndian.PutUint64(b[8:], math.Float64bits(lon))
	binary.BigEndian.PutUint64(b[16:], math.Float64bits(hdop))
	return b
}

// DecodeLocation unpacks EncodeLocation's bytes.
func DecodeLocation(b []byte) (lat, lon, hdop float64, err error) {
	if len(b) != 24 {
		return 0, 0, 0, fmt.Errorf("a stored location is 24 bytes, not %d", len(b))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b[0:])), math.Float64frombits(binary.BigEndian.Uint64(b[8:])),
		math.Float64frombits(binary.BigEndian.Uint64(b[16:])), nil
}
