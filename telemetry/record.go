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

// Parse decodes and checks a submission's event against the wire format and the catalogue, without
// the signature or the ledger: CloudEvents 1.0 structured JSON with specversion "1.0", id, source (an
// address), subject (a vehicle id), type "glovebox.signals", time (RFC 3339), datacontenttype
// "application/json" and data {"signals": [{"name", "timestamp", "value"}, …]}. now is the node's clock
// (unix ms).
func (c *Catalog) Parse(s *Submission, now int64) (*Record, error) {
	if s.err != "" {
		return nil, fail(s.err, "%s", s.errMsg)
	}
	return c.parse(s.Event, now, true)
}

// ParseStored decodes the event of a record this node stored, which Parse accepted when it arrived: the
// same result as Parse, without Parse's checks of the JSON text (RFC 8259 validity, member names once)
// and of the source's EIP-55 checksum, which the bytes passed then and cannot fail now (the address is
// the same with or without the check). Never for bytes from the network.
func (c *Catalog) ParseStored(event []byte) (*Record, error) {
	return c.parse(event, math.MaxInt64/2, false)
}

// parsers are the JSON parsers of parse: a parser reused keeps its buffers, which a new one grows again
// for every record.
var parsers fastjson.ParserPool

// attributes are an event's CloudEvents attributes as parse reads them: each one's bytes, which live in
// the parser's buffers until it goes back to the pool.
type attributes struct {
	specVersion, id, source, subject, typ, time, dataContentType []byte

	data       *fastjson.Value
	seen       uint8    // a bit per attribute above, in that order, and data's the last
	extensions [][]byte // the names of the other attributes (rare)
	bad        *failure // the last attribute refused, in the order Visit reads them
}

// read takes one member of the event object.
func (a *attributes) read(k []byte, v *fastjson.Value) {
	var field *[]byte
	var bit uint8
	switch string(k) {
	case "specversion":
		field, bit = &a.specVersion, 1<<0
	case "id":
		field, bit = &a.id, 1<<1
	case "source":
		field, bit = &a.source, 1<<2
	case "subject":
		field, bit = &a.subject, 1<<3
	case "type":
		field, bit = &a.typ, 1<<4
	case "time":
		field, bit = &a.time, 1<<5
	case "datacontenttype":
		field, bit = &a.dataContentType, 1<<6
	case "data":
		bit = 1 << 7
	}
	dup := a.seen&bit != 0
	if bit == 0 { // an extension attribute, which the node ignores but still reads only once
		for _, x := range a.extensions {
			dup = dup || bytes.Equal(x, k)
		}
	}
	if dup {
		a.bad = fail(StatusMalformed, "attribute %q appears twice", k)
		return
	}
	if bit == 1<<7 {
		a.data, a.seen = v, a.seen|bit
		return
	}
	if v.Type() != fastjson.TypeString {
		a.bad = fail(StatusMalformed, "attribute %q must be a string", k)
		return
	}
	a.seen |= bit
	if field != nil {
		*field = v.GetStringBytes()
	} else {
		a.extensions = append(a.extensions, k)
	}
}

// timestamps parses the RFC 3339 timestamps of one record: most records give every signal the record's
// time, in the same bytes, which are parsed once.
type timestamps struct {
	last []byte // the last text parsed (in the parser's buffers), nil before the first
	ms   int64  // its unix ms
}

func (ts *timestamps) parse(b []byte) (int64, error) {
	if ts.last != nil && bytes.Equal(b, ts.last) {
		return ts.ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return 0, err
	}
	ts.last, ts.ms = b, t.UnixMilli()
	return ts.ms, nil
}

func (c *Catalog) parse(event []byte, now int64, strict bool) (*Record, error) {
	if len(event) > MaxEventSize {
		return nil, fail(StatusMalformed, "event is %d bytes, more than %d", len(event), MaxEventSize)
	}
	// One strict pass (RFC 8259, valid UTF-8, no member name twice) accepts nearly every event; only one
	// it refuses is examined again, to say why. A stored record (not strict) passed it when it arrived.
	valid := !strict || jsontext.Value(event).IsValid()
	if !valid {
		if err := checkJSONText(event); err != nil {
			return nil, fail(StatusMalformed, "event is not JSON: %v", err)
		}
	}
	p := parsers.Get() // the values it returns are copied out before it goes back
	defer parsers.Put(p)
	v, err := p.ParseBytes(event)
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
	var a attributes
	obj.Visit(a.read)
	if a.bad != nil {
		return nil, a.bad
	}
	if string(a.specVersion) != "1.0" {
		return nil, fail(StatusMalformed, "%s must be %q", "specversion", "1.0")
	}
	if string(a.dataContentType) != "application/json" {
		return nil, fail(StatusMalformed, "%s must be %q", "datacontenttype", "application/json")
	}
	if typ := string(a.typ); typ != TypeSignals && typ != TypeEvents {
		return nil, fail(StatusMalformed, "type must be %q or %q", TypeSignals, TypeEvents)
	}
	if len(a.id) == 0 || len(a.id) > MaxIDLen || !utf8.Valid(a.id) {
		return nil, fail(StatusMalformed, "id must be 1 to %d bytes of UTF-8", MaxIDLen)
	}
	r := &Record{Event: event, ID: string(a.id)}
	src, err := parseSource(a.source, strict)
	if err != nil {
		return nil, fail(StatusMalformed, "source must be the device address: %v", err)
	}
	r.Source = src
	id, err := strconv.ParseUint(string(a.subject), 10, 64)
	var canonical [20]byte
	if err != nil || id == 0 || !bytes.Equal(strconv.AppendUint(canonical[:0], id, 10), a.subject) {
		return nil, fail(StatusMalformed, "subject must be the vehicle id in decimal")
	}
	r.VehicleID = id
	var ts timestamps
	if r.Time, err = ts.parse(a.time); err != nil {
		return nil, fail(StatusMalformed, "time must be RFC 3339: %v", err)
	}
	if r.Time > now+MaxClockSkew.Milliseconds() {
		return nil, fail(StatusFutureTime, "time %s is more than %s ahead of the node's clock", a.time, MaxClockSkew)
	}
	data := a.data
	if data == nil || data.Type() != fastjson.TypeObject {
		return nil, fail(StatusMalformed, "data must be an object {\"signals\": […]} or {\"events\": […]}")
	}
	if string(a.typ) == TypeEvents {
		evs, f := parseEvents(data, now)
		if f != nil {
			return nil, f
		}
		source := r.Source.Hex()
		for i := range evs {
			evs[i].Vehicle, evs[i].Source = r.VehicleID, source
		}
		r.Events = evs
		return r, nil
	}
	dobj, _ := data.Object()
	signals := dobj.Get("signals")
	if dobj.Len() != 1 || signals == nil || signals.Type() != fastjson.TypeArray {
		return nil, fail(StatusMalformed, "data must be exactly {\"signals\": […]}")
	}
	sigs, _ := signals.Array()
	if len(sigs) == 0 || len(sigs) > MaxSignals {
		return nil, fail(StatusMalformed, "a record carries 1 to %d signals", MaxSignals)
	}
	r.Values = make([]Value, len(sigs))
	for i, sv := range sigs {
		if f := c.parseValue(&r.Values[i], sv, now, &ts); f != nil {
			f.msg = fmt.Sprintf("signal %d: %s", i, f.msg)
			return nil, f
		}
	}
	return r, nil
}

// parseSource reads the source attribute as ledger.ParseAddress does (which remembers the checksums it
// verified). Not strict (a stored record, whose source passed ParseAddress when it arrived), it skips the
// checksum: the address is the same either way.
func parseSource(b []byte, strict bool) (common.Address, error) {
	if strict {
		return ledger.ParseAddress(string(b))
	}
	var a common.Address
	if len(b) != 2+2*len(a) || b[0] != '0' || b[1] != 'x' {
		return ledger.ParseAddress(string(b)) // refused, with its reason
	}
	if _, err := hex.Decode(a[:], b[2:]); err != nil {
		return ledger.ParseAddress(string(b))
	}
	return a, nil
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

// parseValue reads one signal into val.
func (c *Catalog) parseValue(val *Value, sv *fastjson.Value, now int64, ts *timestamps) *failure {
	o, err := sv.Object()
	if err != nil || o.Len() != 3 {
		return fail(StatusMalformed, "a signal is {\"name\", \"timestamp\", \"value\"}")
	}
	nv, tv, vv := o.Get("name"), o.Get("timestamp"), o.Get("value")
	if nv == nil || tv == nil || vv == nil || nv.Type() != fastjson.TypeString || tv.Type() != fastjson.TypeString {
		return fail(StatusMalformed, "a signal is {\"name\": string, \"timestamp\": RFC 3339, \"value\": …}")
	}
	sig, ok := c.byName[string(nv.GetStringBytes())] // no string made for the look-up
	if !ok {
		return fail(StatusUnknownSignal, "no signal %q in the catalogue", nv.GetStringBytes())
	}
	name := sig.Name
	t, err := ts.parse(tv.GetStringBytes())
	if err != nil {
		return fail(StatusMalformed, "%s: timestamp must be RFC 3339", name)
	}
	val.Signal, val.Time = sig, t
	if val.Time > now+MaxClockSkew.Milliseconds() {
		return fail(StatusFutureTime, "%s: timestamp is more than %s ahead of the node's clock", name, MaxClockSkew)
	}
	switch sig.Kind {
	case KindNumber:
		if vv.Type() != fastjson.TypeNumber {
			return fail(StatusBadValue, "%s: want a number", name)
		}
		f := vv.GetFloat64()
		if math.IsNaN(f) || math.IsInf(f, 0) || f < sig.Min || f > sig.Max {
			return fail(StatusBadValue, "%s: %v is outside %v..%v %s", name, f, sig.Min, sig.Max, sig.Unit)
		}
		if f != math.Trunc(f) && sig.Integer() { // the look-up of the type only for a fraction
			return fail(StatusBadValue, "%s: want an integer (%s)", name, sig.VSSType)
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
				return fail(StatusBadValue, "%s: want true, false, 0 or 1", name)
			}
			val.Number = f
		default:
			return fail(StatusBadValue, "%s: want a boolean", name)
		}
	case KindString:
		if vv.Type() != fastjson.TypeString {
			return fail(StatusBadValue, "%s: want a string", name)
		}
		str := vv.GetStringBytes()
		if len(str) > MaxStringLen || !utf8.Valid(str) {
			return fail(StatusBadValue, "%s: want at most %d bytes of UTF-8", name, MaxStringLen)
		}
		val.String = string(str)
	case KindStrings:
		items, err := vv.Array()
		if err != nil || len(items) > MaxStringList {
			return fail(StatusBadValue, "%s: want an array of at most %d strings", name, MaxStringList)
		}
		list := make([]string, len(items))
		for i, it := range items {
			b := it.GetStringBytes()
			if it.Type() != fastjson.TypeString || len(b) > MaxStringLen || !utf8.Valid(b) {
				return fail(StatusBadValue, "%s: want an array of strings", name)
			}
			list[i] = string(b)
		}
		enc, _ := json.Marshal(list)
		val.String = string(enc)
	case KindLocation:
		lo, err := vv.Object()
		if err != nil {
			return fail(StatusBadValue, "%s: want {\"latitude\", \"longitude\", \"hdop\"}", name)
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
			return fail(StatusBadValue, "%s: want {\"latitude\": number, \"longitude\": number, \"hdop\": number}", name)
		}
		if val.Lat < -90 || val.Lat > 90 || val.Lon < -180 || val.Lon > 180 || val.HDOP < 0 || val.HDOP > 100 ||
			math.IsNaN(val.Lat+val.Lon+val.HDOP) {
			return fail(StatusBadValue, "%s: latitude, longitude or hdop out of range", name)
		}
	}
	return nil
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
