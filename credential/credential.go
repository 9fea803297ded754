package credential

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/telemetry"
)

// The names of the checks Verify runs, in order; a *Failure names the first that failed.
const (
	CheckFormat      = "format"      // the text is an SD-JWT whose issuer JWT and disclosures decode
	CheckSignature   = "signature"   // the issuer JWT is an EdDSA JWS of typ dc+sd-jwt signed by the log key
	CheckClaims      = "claims"      // iss, iat, vct and the type's claims are present and well formed
	CheckExpiry      = "expiry"      // exp, when present, is still ahead
	CheckDisclosures = "disclosures" // every disclosure's digest is in _sd, once
	CheckKeyBinding  = "key_binding" // a key-binding JWT, if present, is signed by the cnf key over this presentation
	CheckCheckpoint  = "checkpoint"  // the evidence's checkpoint is signed by the log key
	CheckPairing     = "pairing"     // each pairing entry is in the log, pairs this vehicle, is signed by its device
	CheckRecord      = "record"      // each record is signed by its source, paired to the vehicle at its times
	CheckClaim       = "claim"       // the claimed facts follow from the records
)

// Failure is a refused credential: the check that failed and why.
type Failure struct {
	Check string
	Msg   string
}

func (f *Failure) Error() string { return f.Check + ": " + f.Msg }

func fail(check, format string, args ...any) *Failure {
	return &Failure{check, fmt.Sprintf(format, args...)}
}

// Request asks for a credential. Times are RFC 3339 in JSON.
type Request struct {
	Type string     `json:"type"`
	At   *time.Time `json:"at,omitempty"`   // odometer: the reading at or before this time
	From *time.Time `json:"from,omitempty"` // mileage, movement
	To   *time.Time `json:"to,omitempty"`
	// HolderKey, if set, is the holder's public JWK: the credential carries it as cnf.jwk (key binding).
	HolderKey *jose.JSONWebKey `json:"holder_key,omitempty"`
}

// Bad requests, which callers branch on (the HTTP API maps each to its error code).
var (
	ErrUnknownType  = errors.New("unknown credential type")
	ErrMissingTime  = errors.New("a time is missing")
	ErrInvertedTime = errors.New("from is not before to")
	ErrBadHolderKey = errors.New("the holder key is not a public JWK")
)

// Validate checks a request's shape: a known type, the times it needs, in order. now is the issuer's
// clock: odometer's at defaults to it.
func (r *Request) Validate(now time.Time) error {
	switch r.Type {
	case TypeOdometer:
		if r.At == nil {
			t := now.UTC().Truncate(time.Millisecond)
			r.At = &t
		}
	case TypeMileage, TypeMovement:
		if r.From == nil || r.To == nil {
			return fmt.Errorf("%w: %s needs from and to (RFC 3339)", ErrMissingTime, r.Type)
		}
		if !r.From.Before(*r.To) {
			return fmt.Errorf("%w: from %s, to %s", ErrInvertedTime, r.From.Format(time.RFC3339Nano), r.To.Format(time.RFC3339Nano))
		}
	case TypeVIN:
	case "":
		return fmt.Errorf("%w: the body needs \"type\", one of %v", ErrUnknownType, Types)
	default:
		return fmt.Errorf("%w %q: one of %v", ErrUnknownType, r.Type, Types)
	}
	if r.HolderKey != nil && (!r.HolderKey.Valid() || !r.HolderKey.IsPublic()) {
		return ErrBadHolderKey
	}
	return nil
}

// Issuer signs credentials with the log's key.
type Issuer struct {
	URL     string // iss: the node's public URL
	Key     *IssuerKey
	Catalog *telemetry.Catalog
	signer  *noteSigner
}

// NewIssuer returns an issuer named url that signs with the log's note signer, whose verifier key is
// logKey.
func NewIssuer(url string, signer note.Signer, logKey string, cat *telemetry.Catalog) (*Issuer, error) {
	k, err := ParseLogKey(logKey)
	if err != nil {
		return nil, err
	}
	if signer.Name()+"+"+fmt.Sprintf("%08x", signer.KeyHash()) != k.KeyID {
		return nil, fmt.Errorf("the signer %s+%08x does not match the log key %s", signer.Name(), signer.KeyHash(), k.KeyID)
	}
	return &Issuer{URL: url, Key: k, Catalog: cat, signer: &noteSigner{k, signer}}, nil
}

// Input is what a credential is computed from: the vehicle and the evidence the issuer gathered, and for
// movement the positions (never part of the credential).
type Input struct {
	Vehicle   uint64
	Evidence  *Evidence
	Positions []Position
	// Withhold names disclosures the credential leaves out (DisclosureEvidence, DisclosureCells), because
	// the caller may not read the signals they carry. The claim is still computed from them, and the
	// issuer still checks the evidence.
	Withhold []string
}

// The selectively disclosable claims a caller's grant may withhold (Input.Withhold).
const (
	DisclosureEvidence = "evidence" // the device-signed records, pairings and checkpoint
	DisclosureCells    = "cells"    // a movement's H3 cells
)

// Position is one measured position, for movement.
type Position struct {
	Time     time.Time
	Lat, Lon float64
}

// Issue computes the credential req asks for from in and signs it. The evidence is checked as a
// verifier would (the records' signatures and JSON text aside: the node checked them at ingest, and the
// records are read as stored ones, as Gather parsed them), so that a credential the issuer hands out
// verifies. The refusals ErrNoReadings, ErrRollback, ErrGap and
// ErrNoMovement say the records do not support the claim.
func (is *Issuer) Issue(req Request, in Input, now time.Time) (string, *Claims, error) {
	if err := req.Validate(now); err != nil {
		return "", nil, err
	}
	var facts Facts
	var err error
	switch req.Type {
	case TypeMovement:
		pos := make([]reading, len(in.Positions))
		for i, p := range in.Positions {
			pos[i] = reading{Time: p.Time.UnixMilli(), Lat: p.Lat, Lon: p.Lon}
		}
		slices.SortStableFunc(pos, func(a, b reading) int { return int(max(-1, min(1, a.Time-b.Time))) })
		facts, err = deriveMovement(pos, *req.From, *req.To)
	default:
		var ce *checkedEvidence
		if ce, err = in.Evidence.check(is.Key, in.Vehicle, is.Catalog, false); err != nil {
			return "", nil, fmt.Errorf("the issuer's own evidence does not verify: %w", err)
		}
		facts, err = derive(req, ce, now)
	}
	if err != nil {
		return "", nil, err
	}
	c := &Claims{Facts: facts, Issuer: is.URL, VCT: VCT(req.Type), IssuedAt: now.UTC().Truncate(time.Second),
		VehicleID: in.Vehicle, Holder: req.HolderKey}
	if d, ok := validity[req.Type]; ok {
		c.Expires = c.IssuedAt.Add(d)
	}
	var ev *Evidence
	if req.Type != TypeMovement && !slices.Contains(in.Withhold, DisclosureEvidence) {
		ev = in.Evidence
	}
	if slices.Contains(in.Withhold, DisclosureCells) {
		c.Cells = nil
	}
	s, err := is.encode(c, ev)
	if err != nil {
		return "", nil, err
	}
	return s, c, nil
}

// derive computes the facts of req from checked evidence.
func derive(req Request, ce *checkedEvidence, now time.Time) (Facts, error) {
	switch req.Type {
	case TypeOdometer:
		odo, err := sortReadings(ce.odometer, SignalOdometer)
		if err != nil {
			return Facts{}, err
		}
		return deriveOdometer(odo, *req.At)
	case TypeMileage:
		odo, err := sortReadings(ce.odometer, SignalOdometer)
		if err != nil {
			return Facts{}, err
		}
		return deriveMileage(odo, *req.From, *req.To)
	case TypeVIN:
		return deriveVIN(ce.vin, now)
	}
	return Facts{}, fmt.Errorf("%w %q", ErrUnknownType, req.Type)
}

// Claims are a credential's claims: the facts, and the JWT's.
type Claims struct {
	Facts
	Issuer    string
	VCT       string
	IssuedAt  time.Time
	Expires   time.Time // zero: no exp
	VehicleID uint64    // 0 when not disclosed
	Holder    *jose.JSONWebKey
	// Disclosed names the disclosures a verified credential carried.
	Disclosed []string
	// KeyBinding is the verified key-binding JWT of a presentation that carried one (nil without): the
	// verifier must still compare its nonce and audience with the ones it asked for.
	KeyBinding *KeyBinding
	// EvidenceChecked is set by Verify when the evidence was disclosed and every check of it passed.
	EvidenceChecked bool
}

// payload is the JSON of the issuer-signed JWT. The selectively disclosable claims (vehicle_id, vin,
// cells, evidence) are only digests in _sd.
type payload struct {
	Iss        string   `json:"iss"`
	Iat        int64    `json:"iat"`
	Exp        int64    `json:"exp,omitempty"`
	VCT        string   `json:"vct"`
	Cnf        *cnf     `json:"cnf,omitempty"`
	SD         []string `json:"_sd"`
	SDAlg      string   `json:"_sd_alg"`
	At         string   `json:"at,omitempty"`
	From       string   `json:"from,omitempty"`
	To         string   `json:"to,omitempty"`
	Odometer   *float64 `json:"odometer_km,omitempty"`
	MeasuredAt string   `json:"measured_at,omitempty"`
	Distance   *float64 `json:"distance_km,omitempty"`
	Moved      *bool    `json:"moved,omitempty"`
	H3Res      int      `json:"h3_resolution,omitempty"`
}

type cnf struct {
	JWK *jose.JSONWebKey `json:"jwk"`
}

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

// encode signs the claims and appends the disclosures, in a random order relative to nothing: the
// order is fixed (vehicle_id, vin, cells, evidence) since the digests in _sd are sorted.
func (is *Issuer) encode(c *Claims, ev *Evidence) (string, error) {
	p := payload{Iss: c.Issuer, Iat: c.IssuedAt.Unix(), VCT: c.VCT, SDAlg: SDAlg, SD: []string{}}
	if !c.Expires.IsZero() {
		p.Exp = c.Expires.Unix()
	}
	if c.Holder != nil {
		p.Cnf = &cnf{c.Holder}
	}
	var ds []disclosure
	add := func(name string, v any) error {
		d, err := newDisclosure(name, v)
		if err != nil {
			return err
		}
		ds = append(ds, d)
		p.SD = append(p.SD, d.digest())
		return nil
	}
	if err := add("vehicle_id", c.VehicleID); err != nil {
		return "", err
	}
	switch c.Type {
	case TypeOdometer:
		p.At, p.Odometer, p.MeasuredAt = fmtTime(c.At), &c.Odometer, fmtTime(c.MeasuredAt)
	case TypeMileage:
		p.From, p.To, p.Distance = fmtTime(c.From), fmtTime(c.To), &c.Distance
	case TypeMovement:
		moved := true
		p.From, p.To, p.Moved, p.H3Res = fmtTime(c.From), fmtTime(c.To), &moved, MovementResolution
		if c.Cells != nil {
			if err := add("cells", c.Cells); err != nil {
				return "", err
			}
		}
	case TypeVIN:
		p.MeasuredAt = fmtTime(c.MeasuredAt)
		if err := add("vin", c.VIN); err != nil {
			return "", err
		}
	}
	if ev != nil {
		if err := add("evidence", ev); err != nil {
			return "", err
		}
	}
	slices.Sort(p.SD) // RFC 9901 §4.2.4.1: the order must not reveal which claim a digest stands for
	body, err := marshal(p)
	if err != nil {
		return "", fmt.Errorf("couldn't encode the credential: %w", err)
	}
	jwt, err := sign(body, is.signer)
	if err != nil {
		return "", err
	}
	n := len(jwt) + 1
	for _, d := range ds {
		n += len(d.Encoded) + 1
	}
	var out strings.Builder // a mileage's is over a megabyte: copied once
	out.Grow(n)
	out.WriteString(jwt)
	out.WriteByte('~')
	for _, d := range ds {
		out.WriteString(d.Encoded)
		out.WriteByte('~')
	}
	return out.String(), nil
}
