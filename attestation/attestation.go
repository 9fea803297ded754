// Package attestation takes third parties' signed statements about a vehicle in the wire format of DIMO's
// attestation service (DIMO-Network/dis, "Getting Started With DIMO Attestations"): a CloudEvents 1.0
// event in structured JSON whose top-level member "signature" is an EIP-191 personal_sign signature, by
// the event's source, over the exact bytes of its "data" member.
//
// An app that holds a grant on a vehicle posts such an event about it (an insurer's "policy active", a
// garage's "service done"); the node checks the signature against the app's address, keeps the event and
// shows it to the owner and to apps that hold `credentials`. The signature covers "data" only, as in
// DIMO's format: the attributes (subject, time, type, …) rest on the poster's bearer token, so a statement
// that must name its vehicle or its validity says so inside "data" too. docs/credentials.md has the wire
// format and the refusals.
//
// Parse is a pure function of the body, the caller and the clock; the store is behind Store.
//
// It imports only ledger: the stores keep what it checks, the API serves it.
package attestation

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/ledger"
)

// The limits of an attestation.
const (
	// MaxBody bounds the body of POST /v1/attestations, the whole CloudEvent.
	MaxBody = 64 << 10
	// MaxIDLen bounds an id; it is made of the characters of IDChars so that it fits a URL path as is.
	MaxIDLen = 128
	// MaxTextLen bounds producer and dataversion.
	MaxTextLen = 256
	// MaxTags bounds the tags of one attestation, MaxTagLen each tag.
	MaxTags   = 16
	MaxTagLen = 64
	// MaxSkew is how far an attestation's time may be from the node's clock, either way (DIMO: "within
	// 5 minutes of the upload time").
	MaxSkew = 5 * time.Minute
)

// IDChars are the characters an attestation id may hold (RFC 3986 unreserved, and ':').
const IDChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:"

// Type is the CloudEvents type of an attestation, DIMO's; an event without a type gets it.
const Type = "dimo.attestation"

// The refusals of Parse, which callers branch on (the HTTP API maps each to its error code).
var (
	ErrMalformed    = errors.New("malformed attestation")
	ErrBadSignature = errors.New("bad attestation signature")
	ErrWrongSigner  = errors.New("the attestation is not signed by its source")
	ErrTime         = errors.New("the attestation's time is too far from the node's clock")
)

// Attestation is a verified attestation: the CloudEvent's attributes and its data as signed.
type Attestation struct {
	ID          string
	Vehicle     uint64
	Source      common.Address // the app that signed it (and posted it)
	Producer    string         // "" when the event has none
	Time        time.Time      // the CloudEvents time, UTC, to the millisecond
	Type        string         // always Type
	DataVersion string         // "" when the event has none
	Tags        []string       // nil when the event has none
	// Data is the exact bytes of the event's "data" member: what Signature signs.
	Data      []byte
	Signature [65]byte
	// Received is when the node stored it, to the millisecond.
	Received time.Time
}

// SignatureHex returns the signature as 0x and 130 hex digits.
func (a *Attestation) SignatureHex() string { return "0x" + hex.EncodeToString(a.Signature[:]) }

// Verify checks that Signature is a personal_sign by Source over Data: anyone who holds an attestation
// can run it.
func (a *Attestation) Verify() error {
	signer, err := ledger.Recover(ledger.PersonalHash(a.Data), ledger.Signature(a.Signature))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if signer != a.Source {
		return fmt.Errorf("%w: the signature recovers to %s, the source is %s", ErrWrongSigner, signer.Hex(), a.Source.Hex())
	}
	return nil
}

// Parse decodes an attestation posted by caller and verifies its signature; now is the node's clock.
// The body is a JSON object of the CloudEvents attributes below, each at most once, and nothing else:
//
//	specversion      optional, "1.0"
//	id               optional (a random one is made), 1 to MaxIDLen characters of IDChars
//	source           optional (the caller), the caller's address
//	subject          required, the vehicle id in decimal
//	type             optional, "dimo.attestation"
//	time             optional (now), RFC 3339, within MaxSkew of now
//	datacontenttype  optional, "application/json"
//	dataversion      optional, a string of at most MaxTextLen bytes
//	producer         optional, a string of at most MaxTextLen bytes
//	tags             optional, at most MaxTags strings of 1 to MaxTagLen bytes
//	signature        required, 0x and 130 hex digits: personal_sign over the bytes of data
//	data             required, any JSON value
func Parse(body []byte, caller common.Address, now time.Time) (*Attestation, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: the body is %d bytes, more than %d", ErrMalformed, len(body), MaxBody)
	}
	if !utf8.Valid(body) || !json.Valid(body) {
		return nil, fmt.Errorf("%w: the body is not JSON", ErrMalformed)
	}
	members, err := objectMembers(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	str := func(name string) (string, bool, error) {
		raw, ok := members[name]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, fmt.Errorf("%w: %s must be a string", ErrMalformed, name)
		}
		return s, true, nil
	}
	attrs := map[string]string{}
	for name := range members {
		switch name {
		case "data", "tags":
		case "specversion", "id", "source", "subject", "type", "time", "datacontenttype", "dataversion", "producer", "signature":
			s, _, err := str(name)
			if err != nil {
				return nil, err
			}
			attrs[name] = s
		case "data_base64":
			return nil, fmt.Errorf("%w: data_base64 is not taken: data is JSON", ErrMalformed)
		default:
			return nil, fmt.Errorf("%w: unknown member %q", ErrMalformed, name)
		}
	}
	a := &Attestation{Type: Type, Received: now.UTC().Truncate(time.Millisecond)}
	if v, ok := attrs["specversion"]; ok && v != "1.0" {
		return nil, fmt.Errorf("%w: specversion must be \"1.0\"", ErrMalformed)
	}
	if v, ok := attrs["type"]; ok && v != Type {
		return nil, fmt.Errorf("%w: type must be %q", ErrMalformed, Type)
	}
	if v, ok := attrs["datacontenttype"]; ok && v != "application/json" {
		return nil, fmt.Errorf("%w: datacontenttype must be \"application/json\"", ErrMalformed)
	}
	if v, ok := attrs["id"]; ok {
		if err := checkID(v); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		a.ID = v
	} else {
		a.ID = newID()
	}
	a.Source = caller
	if v, ok := attrs["source"]; ok {
		src, err := ledger.ParseAddress(v)
		if err != nil {
			return nil, fmt.Errorf("%w: source must be the app's address: %v", ErrMalformed, err)
		}
		if src != caller {
			return nil, fmt.Errorf("%w: the source %s is not the signed-in app %s", ErrWrongSigner, src.Hex(), caller.Hex())
		}
	}
	sub, ok := attrs["subject"]
	if !ok {
		return nil, fmt.Errorf("%w: subject (the vehicle id in decimal) is required", ErrMalformed)
	}
	if a.Vehicle, err = ParseVehicle(sub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	a.Time = a.Received
	if v, ok := attrs["time"]; ok {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, fmt.Errorf("%w: time %q is not RFC 3339", ErrMalformed, v)
		}
		a.Time = t.UTC().Truncate(time.Millisecond)
		if d := a.Time.Sub(now); d > MaxSkew || d < -MaxSkew {
			return nil, fmt.Errorf("%w: time %s is more than %s from the node's clock %s", ErrTime, v, MaxSkew, now.UTC().Format(time.RFC3339))
		}
	}
	for _, name := range []string{"dataversion", "producer"} {
		if v := attrs[name]; len(v) > MaxTextLen {
			return nil, fmt.Errorf("%w: %s is longer than %d bytes", ErrMalformed, name, MaxTextLen)
		}
	}
	a.DataVersion, a.Producer = attrs["dataversion"], attrs["producer"]
	if raw, ok := members["tags"]; ok {
		if err := json.Unmarshal(raw, &a.Tags); err != nil || a.Tags == nil {
			return nil, fmt.Errorf("%w: tags must be an array of strings", ErrMalformed)
		}
		if len(a.Tags) > MaxTags {
			return nil, fmt.Errorf("%w: more than %d tags", ErrMalformed, MaxTags)
		}
		for _, t := range a.Tags {
			if t == "" || len(t) > MaxTagLen {
				return nil, fmt.Errorf("%w: a tag is 1 to %d bytes", ErrMalformed, MaxTagLen)
			}
		}
		if len(a.Tags) == 0 {
			a.Tags = nil
		}
	}
	data, ok := members["data"]
	if !ok {
		return nil, fmt.Errorf("%w: data (the statement, JSON) is required", ErrMalformed)
	}
	a.Data = data
	sig, ok := attrs["signature"]
	if !ok {
		return nil, fmt.Errorf("%w: signature (personal_sign over the bytes of data) is required", ErrBadSignature)
	}
	if len(sig) != 132 || !strings.HasPrefix(sig, "0x") {
		return nil, fmt.Errorf("%w: a signature is 0x and 130 hex digits", ErrBadSignature)
	}
	b, err := hex.DecodeString(sig[2:])
	if err != nil {
		return nil, fmt.Errorf("%w: the signature is not hex", ErrBadSignature)
	}
	copy(a.Signature[:], b)
	if err := a.Verify(); err != nil {
		return nil, err
	}
	return a, nil
}

// objectMembers returns the members of a JSON object, each value's exact bytes; a member named twice, or
// a body that is not one object, is refused.
func objectMembers(body []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("the body must be a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("bad JSON: %v", err)
		}
		name, _ := tok.(string)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("member %q appears twice", name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("bad JSON: %v", err)
		}
		out[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("bad JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("the body holds more than one JSON value")
	}
	return out, nil
}

// ParseVehicle reads a subject: a vehicle id in decimal, canonical (no sign, no leading zero), not zero.
func ParseVehicle(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 || strconv.FormatUint(id, 10) != s {
		return 0, fmt.Errorf("subject %q is not a vehicle id in decimal", s)
	}
	return id, nil
}

// checkID checks an attestation id against MaxIDLen and IDChars.
func checkID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("an id is 1 to %d characters", MaxIDLen)
	}
	for _, c := range id {
		if !strings.ContainsRune(IDChars, c) {
			return fmt.Errorf("an id is made of letters, digits and -._~: (got %q)", c)
		}
	}
	return nil
}

// CheckID reports whether id could be an attestation's id (for the paths that name one).
func CheckID(id string) error { return checkID(id) }

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrExists is Store.Put's refusal of a second attestation with the same source and id.
var ErrExists = errors.New("an attestation with this source and id exists")

// Store keeps attestations. The implementations are store/sqlite's and store/postgres's Credentials; the
// conformance suite is storetest.TestAttestations. Access is decided before a Store is called.
type Store interface {
	// Put stores a, durably when it returns; ErrExists (wrapped) when one with a's source and id is
	// stored, which is left as it was.
	Put(ctx context.Context, a *Attestation) error
	// List returns the attestations of vehicle received at or after since, newest (by Time, then
	// Received) first.
	List(ctx context.Context, vehicle uint64, since time.Time) ([]*Attestation, error)
	// Delete removes the attestation of vehicle with this source and id received at or after since, and
	// reports whether there was one.
	Delete(ctx context.Context, vehicle uint64, since time.Time, source common.Address, id string) (bool, error)
}
