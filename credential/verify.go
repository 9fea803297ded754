package credential

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/glovebox/glovebox/telemetry"
)

// Verify checks a credential (an SD-JWT, with any subset of its disclosures) offline against the log's
// note verifier key alone, and returns its claims. The checks run in the order of the Check constants;
// the error is a *Failure naming the first that failed. now is the verifier's clock, for exp.
//
// Without the evidence disclosed, the claims rest on the issuer's signature alone (EvidenceChecked is
// false). With it, every record's device signature, every pairing's inclusion proof and time range and
// the checkpoint's signature are checked, and the claimed facts must be exactly what the records give.
func Verify(sdjwt, logKey string, now time.Time) (*Claims, error) {
	key, err := ParseLogKey(logKey)
	if err != nil {
		return nil, fail(CheckSignature, "%v", err)
	}
	jwt, encoded, kb, err := split(sdjwt)
	if err != nil {
		return nil, fail(CheckFormat, "%v", err)
	}
	jws, err := jose.ParseSignedCompact(jwt, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, fail(CheckSignature, "the issuer JWT is not an EdDSA JWS: %v", err)
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != Typ {
		return nil, fail(CheckSignature, "the JWT's typ is %q, want %q", typ, Typ)
	}
	if h.KeyID != key.KeyID {
		return nil, fail(CheckSignature, "the credential is signed by key %q, not by the log key %s", h.KeyID, key.KeyID)
	}
	body, err := jws.Verify(key.Public)
	if err != nil {
		return nil, fail(CheckSignature, "the issuer signature does not verify with the log key %s", key.KeyID)
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var p payload
	if err := dec.Decode(&p); err != nil {
		return nil, fail(CheckClaims, "the payload does not decode: %v", err)
	}
	c, err := p.claims()
	if err != nil {
		return nil, fail(CheckClaims, "%v", err)
	}
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return nil, fail(CheckExpiry, "the credential expired at %s", c.Expires.Format(time.RFC3339))
	}

	digests := map[string]bool{}
	for _, d := range p.SD {
		digests[d] = true
	}
	disclosed := map[string]json.RawMessage{}
	var ev *wireEvidence // decoded as its disclosure is read
	for _, enc := range encoded {
		// A large disclosure (the evidence) is hashed on another core while it is decoded; the digest is
		// judged first all the same.
		digest := make(chan string, 1)
		if len(enc) >= 64<<10 {
			go func() { digest <- digestOf(enc) }()
		} else {
			digest <- digestOf(enc)
		}
		var next *wireEvidence
		d, err := parseDisclosureInto(enc, &next)
		if !digests[<-digest] {
			d, err := parseDisclosure(enc)
			if err != nil {
				return nil, fail(CheckDisclosures, "%v", err)
			}
			return nil, fail(CheckDisclosures, "the disclosure of %q is not one the issuer signed (altered, or from another credential)", d.Name)
		}
		if err != nil {
			return nil, fail(CheckDisclosures, "%v", err)
		}
		if next != nil {
			ev = next
		}
		if _, dup := disclosed[d.Name]; dup {
			return nil, fail(CheckDisclosures, "%q is disclosed twice", d.Name)
		}
		disclosed[d.Name] = d.Value
		c.Disclosed = append(c.Disclosed, d.Name)
	}
	if err := c.disclose(disclosed); err != nil {
		return nil, fail(CheckDisclosures, "%v", err)
	}
	if kb != "" {
		sdHash := digestOf(strings.TrimSpace(sdjwt)[:len(strings.TrimSpace(sdjwt))-len(kb)])
		if c.KeyBinding, err = verifyKeyBinding(kb, c.Holder, sdHash); err != nil {
			return nil, fail(CheckKeyBinding, "%v", err)
		}
	}

	if ev == nil || c.Type == TypeMovement {
		return c, nil
	}
	if _, ok := disclosed["vehicle_id"]; !ok {
		return nil, fail(CheckDisclosures, "the evidence is disclosed without vehicle_id, which it is checked against")
	}
	ce, err := ev.check(key, c.VehicleID, telemetry.DefaultCatalog)
	if err != nil {
		return nil, err
	}
	req := Request{Type: c.Type, At: &c.At, From: &c.From, To: &c.To}
	facts, err := derive(req, ce, c.IssuedAt)
	if err != nil {
		return nil, fail(CheckClaim, "the records do not support the claim: %v", err)
	}
	if err := sameFacts(c.Facts, facts); err != nil {
		return nil, fail(CheckClaim, "%v", err)
	}
	c.EvidenceChecked = true
	return c, nil
}

// claims decodes the plain claims and checks that the type's claims, and only those, are there.
func (p *payload) claims() (*Claims, error) {
	if p.Iss == "" || p.Iat == 0 || p.VCT == "" {
		return nil, fmt.Errorf("iss, iat and vct are required")
	}
	if p.SDAlg != SDAlg {
		return nil, fmt.Errorf("_sd_alg is %q, want %q", p.SDAlg, SDAlg)
	}
	typ := ""
	for _, t := range Types {
		if VCT(t) == p.VCT {
			typ = t
		}
	}
	if typ == "" {
		return nil, fmt.Errorf("vct %q is not a Glovebox credential type", p.VCT)
	}
	c := &Claims{Facts: Facts{Type: typ}, Issuer: p.Iss, VCT: p.VCT, IssuedAt: time.Unix(p.Iat, 0).UTC()}
	if p.Exp != 0 {
		c.Expires = time.Unix(p.Exp, 0).UTC()
	}
	if p.Cnf != nil {
		if p.Cnf.JWK == nil || !p.Cnf.JWK.IsPublic() {
			return nil, fmt.Errorf("cnf must hold a public jwk")
		}
		c.Holder = p.Cnf.JWK
	}
	parse := func(name, s string, into *time.Time) error {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("%s: %q is not an RFC 3339 time", name, s)
		}
		*into = t.UTC()
		return nil
	}
	want := map[string][]string{
		TypeOdometer: {"at", "odometer_km", "measured_at"},
		TypeMileage:  {"from", "to", "distance_km"},
		TypeMovement: {"from", "to", "moved", "h3_resolution"},
		TypeVIN:      {"measured_at"},
	}[typ]
	have := map[string]bool{"at": p.At != "", "from": p.From != "", "to": p.To != "", "odometer_km": p.Odometer != nil,
		"measured_at": p.MeasuredAt != "", "distance_km": p.Distance != nil, "moved": p.Moved != nil, "h3_resolution": p.H3Res != 0}
	for name, ok := range have {
		if ok != slices.Contains(want, name) {
			if ok {
				return nil, fmt.Errorf("a %s credential has no claim %s", typ, name)
			}
			return nil, fmt.Errorf("a %s credential needs the claim %s", typ, name)
		}
	}
	for _, f := range []struct {
		name, s string
		into    *time.Time
	}{{"at", p.At, &c.At}, {"from", p.From, &c.From}, {"to", p.To, &c.To}, {"measured_at", p.MeasuredAt, &c.MeasuredAt}} {
		if f.s != "" {
			if err := parse(f.name, f.s, f.into); err != nil {
				return nil, err
			}
		}
	}
	if p.Odometer != nil {
		c.Odometer = *p.Odometer
	}
	if p.Distance != nil {
		c.Distance = *p.Distance
	}
	if p.Moved != nil && (!*p.Moved || p.H3Res != MovementResolution) {
		return nil, fmt.Errorf("a movement credential says moved: true at H3 resolution %d", MovementResolution)
	}
	return c, nil
}

// disclose decodes the disclosed claims a credential of c's type may carry.
func (c *Claims) disclose(d map[string]json.RawMessage) error {
	allowed := map[string]bool{"vehicle_id": true, "evidence": c.Type != TypeMovement, "cells": c.Type == TypeMovement, "vin": c.Type == TypeVIN}
	for name, v := range d {
		if !allowed[name] {
			return fmt.Errorf("a %s credential discloses no %q", c.Type, name)
		}
		var err error
		switch name {
		case "vehicle_id":
			err = json.Unmarshal(v, &c.VehicleID)
		case "vin":
			err = json.Unmarshal(v, &c.VIN)
		case "cells":
			err = json.Unmarshal(v, &c.Cells)
		}
		if err != nil {
			return fmt.Errorf("the disclosed %s does not decode: %v", name, err)
		}
	}
	return nil
}

// sameFacts compares claimed facts with the facts the evidence gives.
func sameFacts(claimed, derived Facts) error {
	switch claimed.Type {
	case TypeOdometer:
		if claimed.Odometer != derived.Odometer || !claimed.MeasuredAt.Equal(derived.MeasuredAt) {
			return fmt.Errorf("the credential says %v km at %s; the records say %v km at %s", claimed.Odometer,
				fmtTime(claimed.MeasuredAt), derived.Odometer, fmtTime(derived.MeasuredAt))
		}
	case TypeMileage:
		if math.Abs(claimed.Distance-derived.Distance) > 1e-9 {
			return fmt.Errorf("the credential says %v km; the records say %v km", claimed.Distance, derived.Distance)
		}
	case TypeVIN:
		if claimed.VIN != "" && claimed.VIN != derived.VIN {
			return fmt.Errorf("the credential says VIN %q; the records say %q", claimed.VIN, derived.VIN)
		}
		if !claimed.MeasuredAt.Equal(derived.MeasuredAt) {
			return fmt.Errorf("the credential says the VIN was reported at %s; the records say %s", fmtTime(claimed.MeasuredAt), fmtTime(derived.MeasuredAt))
		}
	}
	return nil
}

// String prints the claims one per line, as `glovebox credential verify` does.
func (c *Claims) String() string {
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%-12s %v\n", k+":", v) }
	line("type", c.Type)
	line("issuer", c.Issuer)
	line("issued", fmtTime(c.IssuedAt))
	if !c.Expires.IsZero() {
		line("expires", fmtTime(c.Expires))
	}
	switch c.Type {
	case TypeOdometer:
		line("at", fmtTime(c.At))
		line("odometer", fmt.Sprintf("%v km (measured %s)", c.Odometer, fmtTime(c.MeasuredAt)))
	case TypeMileage:
		line("period", fmtTime(c.From)+" to "+fmtTime(c.To))
		line("distance", fmt.Sprintf("%v km", c.Distance))
	case TypeMovement:
		line("period", fmtTime(c.From)+" to "+fmtTime(c.To))
		line("moved", "yes")
		if c.Cells != nil {
			line("cells", strings.Join(c.Cells, ", "))
		}
	case TypeVIN:
		line("reported", fmtTime(c.MeasuredAt))
		if c.VIN != "" {
			line("vin", c.VIN)
		}
	}
	if slices.Contains(c.Disclosed, "vehicle_id") {
		line("vehicle", c.VehicleID)
	}
	if c.Holder != nil {
		line("holder key", c.Holder.KeyID)
	}
	if c.KeyBinding != nil {
		line("key binding", fmt.Sprintf("signed by the holder key for %s, nonce %s, at %s", c.KeyBinding.Audience, c.KeyBinding.Nonce,
			fmtTime(c.KeyBinding.IssuedAt)))
	}
	switch {
	case c.EvidenceChecked:
		line("evidence", "checked: device signatures, pairings in the log, the claim follows from the records")
	case c.Type == TypeMovement:
		line("evidence", "none (signed records would reveal coordinates): the claim rests on the issuer's signature")
	default:
		line("evidence", "not disclosed: the claim rests on the issuer's signature")
	}
	return b.String()
}
