package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/attestation"
	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// Error codes of POST /v1/vehicles/{id}/credentials.
const (
	CodeUnknownCredentialType = "unknown_credential_type"
	CodeMissingTime           = "missing_time"
	CodeInvertedPeriod        = "inverted_period"
	CodeBadHolderKey          = "bad_holder_key"
	CodeBeforeOwnership       = "before_ownership"
	CodeNoPairedDevice        = "no_paired_device"
	CodeNoReadings            = "no_readings"
	CodeOdometerRollback      = "odometer_rollback"
	CodeReadingGap            = "reading_gap"
	CodeNoMovement            = "no_movement"
)

// credentialCodes documents the codes above (ErrorCodes, docs/errors.md).
var credentialCodes = []ErrorCode{
	{CodeUnknownCredentialType, http.StatusBadRequest, "a credential's type is missing or not one of odometer, mileage, movement, vin"},
	{CodeMissingTime, http.StatusBadRequest, "a credential needs a time it was not given, or a time is not RFC 3339 (mileage and movement need from and to)"},
	{CodeInvertedPeriod, http.StatusBadRequest, "a credential's from is not before its to"},
	{CodeBadHolderKey, http.StatusBadRequest, "holder_key is not a public JWK"},
	{CodeBeforeOwnership, http.StatusForbidden, "a credential's time or period starts before the current owner got the vehicle: nobody gets credentials about an earlier owner's period"},
	{CodeNoPairedDevice, http.StatusUnprocessableEntity, "no device was paired to the vehicle at the credential's time or in its period"},
	{CodeNoReadings, http.StatusUnprocessableEntity, "the records hold no reading the credential needs (an odometer reading at or before a bound, one in the period, a position, a VIN)"},
	{CodeOdometerRollback, http.StatusUnprocessableEntity, "the odometer went backwards in the mileage's period: no mileage is issued over it"},
	{CodeReadingGap, http.StatusUnprocessableEntity, "the odometer moved while the device sent no reading for more than 24 hours: the mileage cannot be shown to have no rollback"},
	{CodeNoMovement, http.StatusUnprocessableEntity, "every position in the period is in one H3 resolution-8 cell: no movement credential"},
}

// Credentials issues verifiable credentials (package credential).
type Credentials struct {
	Issuer *credential.Issuer
	Source *credential.Source
	// Record writes an issuance to the vehicle's access log.
	Record func(accesslog.Entry)
	Now    func() time.Time // default time.Now
	// VINs keeps the latest VIN credential of each vehicle, for the GraphQL vinVCLatest; nil keeps none.
	VINs credential.VINStore
	// Attestations keeps third parties' attestations; nil serves no attestation routes.
	Attestations attestation.Store
}

// maxCredentialRequest bounds the body of a credential request.
const maxCredentialRequest = 16 << 10

// issueCredential answers POST /v1/vehicles/{id}/credentials {"type": …} with the credential itself
// (application/dc+sd-jwt), for the owner or an app whose grant holds credentials.
func (s *Server) issueCredential(w http.ResponseWriter, r *http.Request) {
	c := s.creds
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	claims, _ := auth.ClaimsFromContext(r.Context())
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeErr(w, string(ledger.CodeMalformed), "a vehicle id is a positive integer")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCredentialRequest))
	if err != nil {
		writeErr(w, CodeTooLarge, fmt.Sprintf("a credential request is at most %d bytes", maxCredentialRequest))
		return
	}
	req, err := parseCredentialRequest(body)
	if err == nil {
		err = req.Validate(now)
	}
	if err != nil {
		s.writeCredentialError(w, err)
		return
	}
	var d access.Decision
	var scope access.Scope
	s.seq.Read(func(st *ledger.State) {
		if d, err = access.Check(st, claims.Subject, id, ledger.PermCredentials, now); err == nil {
			scope, err = access.ScopeOf(st, claims.Subject, id, now)
		}
	})
	if writeAccessError(w, id, err, "") {
		return
	}
	in, err := c.Source.Gather(r.Context(), req, id, d.Since, now)
	if err != nil {
		s.writeCredentialError(w, err)
		return
	}
	withheld, hidden, err := withhold(scope, req.Type, in.Evidence, c.Issuer.Catalog)
	if err != nil {
		s.writeCredentialError(w, err)
		return
	}
	in.Withhold = withheld
	sdjwt, issued, err := c.Issuer.Issue(req, in, now)
	if err != nil {
		s.writeCredentialError(w, err)
		return
	}
	if req.Type == credential.TypeVIN && c.VINs != nil {
		v := credential.IssuedVIN{Vehicle: id, Caller: claims.Subject, IssuedAt: issued.IssuedAt, Expires: issued.Expires,
			VIN: issued.VIN, MeasuredAt: issued.MeasuredAt, RecordedBy: in.Evidence.Recorder(), SDJWT: sdjwt}
		if err := c.VINs.PutVIN(r.Context(), v); err != nil {
			s.writeCredentialError(w, err)
			return
		}
	}
	e := accesslog.Entry{Time: now, Vehicle: id, Caller: claims.Subject, Query: "credential:" + req.Type,
		Permissions: []string{ledger.PermCredentials}, Values: 1, Outcome: "ok"}
	switch req.Type {
	case credential.TypeOdometer:
		e.To = issued.At
	case credential.TypeMileage, credential.TypeMovement:
		e.From, e.To = issued.From, issued.To
	}
	if c.Record != nil {
		c.Record(e)
	}
	w.Header().Set("Content-Type", credential.MediaType)
	w.Header().Set("Cache-Control", "no-store")
	if len(withheld) > 0 {
		w.Header().Set(HeaderWithheld, strings.Join(withheld, ", "))
		w.Header().Set(HeaderWithheldSignals, strings.Join(hidden, ", "))
	}
	// With its length known the body goes out in one write, not in chunks of the response's buffer (a
	// mileage's is over a megabyte).
	w.Header().Set("Content-Length", strconv.Itoa(len(sdjwt)))
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(sdjwt))
}

// Response headers of a credential issued with disclosures left out.
const (
	// HeaderWithheld lists the disclosures left out ("evidence", "cells").
	HeaderWithheld = "Glovebox-Withheld"
	// HeaderWithheldSignals lists the signals the caller's grant does not let it read that those
	// disclosures carry: a grant naming them (or their permission) gets the disclosures.
	HeaderWithheldSignals = "Glovebox-Withheld-Signals"
)

// withhold decides which disclosures a caller's grant lets it have, by the signals they carry: the
// evidence only if the grant lets the caller read every signal of every record in it (records carry
// other signals than the claim's: speed, position, …), a movement's cells only if it may read the
// precise position they are computed from. The owner has them all. The claim itself is what
// `credentials` grants and is never withheld. It returns the withheld disclosures and the signals that
// were missing, both sorted.
func withhold(scope access.Scope, typ string, ev *credential.Evidence, cat *telemetry.Catalog) (withheld, missing []string, err error) {
	if scope.Role == access.RoleOwner {
		return nil, nil, nil
	}
	lacks := func(names []string) []string {
		var out []string
		for _, name := range names {
			sig, ok := cat.Lookup(name)
			if !ok || !scope.AllowsSignal(name, sig.Permission) {
				out = append(out, name)
			}
		}
		return out
	}
	if typ == credential.TypeMovement {
		if m := lacks([]string{credential.SignalLocation}); len(m) > 0 {
			return []string{credential.DisclosureCells}, m, nil
		}
		return nil, nil, nil
	}
	if ev == nil {
		return nil, nil, nil
	}
	names, err := ev.Signals(cat)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't read the signals of the evidence: %w", err)
	}
	if m := lacks(names); len(m) > 0 {
		return []string{credential.DisclosureEvidence}, m, nil
	}
	return nil, nil, nil
}

// parseCredentialRequest decodes the body strictly: an object of the known members, times RFC 3339.
func parseCredentialRequest(body []byte) (credential.Request, error) {
	var raw struct {
		Type      *string          `json:"type"`
		At        *string          `json:"at"`
		From      *string          `json:"from"`
		To        *string          `json:"to"`
		HolderKey *json.RawMessage `json:"holder_key"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return credential.Request{}, fmt.Errorf("%w: the body must be a JSON object {\"type\", \"at\", \"from\", \"to\", \"holder_key\"}: %v", errMalformedRequest, err)
	}
	if dec.More() {
		return credential.Request{}, fmt.Errorf("%w: the body holds more than one JSON value", errMalformedRequest)
	}
	var req credential.Request
	if raw.Type != nil {
		req.Type = *raw.Type
	}
	for _, f := range []struct {
		name string
		s    *string
		into **time.Time
	}{{"at", raw.At, &req.At}, {"from", raw.From, &req.From}, {"to", raw.To, &req.To}} {
		if f.s == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, *f.s)
		if err != nil {
			return credential.Request{}, fmt.Errorf("%w: %s %q is not RFC 3339", credential.ErrMissingTime, f.name, *f.s)
		}
		*f.into = &t
	}
	if raw.HolderKey != nil {
		var k jose.JSONWebKey
		if err := json.Unmarshal(*raw.HolderKey, &k); err != nil {
			return credential.Request{}, fmt.Errorf("%w: %v", credential.ErrBadHolderKey, err)
		}
		req.HolderKey = &k
	}
	return req, nil
}

// errMalformedRequest marks a body that is not the request's JSON shape.
var errMalformedRequest = errors.New("malformed credential request")

func (s *Server) writeCredentialError(w http.ResponseWriter, err error) {
	for _, m := range []struct {
		err  error
		code string
	}{
		{errMalformedRequest, string(ledger.CodeMalformed)},
		{credential.ErrUnknownType, CodeUnknownCredentialType},
		{credential.ErrMissingTime, CodeMissingTime},
		{credential.ErrInvertedTime, CodeInvertedPeriod},
		{credential.ErrBadHolderKey, CodeBadHolderKey},
		{credential.ErrBeforeOwnership, CodeBeforeOwnership},
		{credential.ErrNotPaired, CodeNoPairedDevice},
		{credential.ErrNoReadings, CodeNoReadings},
		{credential.ErrRollback, CodeOdometerRollback},
		{credential.ErrGap, CodeReadingGap},
		{credential.ErrNoMovement, CodeNoMovement},
	} {
		if errors.Is(err, m.err) {
			writeErr(w, m.code, err.Error())
			return
		}
	}
	s.logger.Error("couldn't issue a credential", "err", err)
	writeErr(w, CodeInternal, "couldn't issue the credential")
}

// IssuerMetadata is the answer of GET /.well-known/jwt-vc-issuer (SD-JWT VC, JWT VC Issuer Metadata):
// the issuer and its key set, which holds the log's key.
type IssuerMetadata struct {
	Issuer string             `json:"issuer"`
	JWKS   jose.JSONWebKeySet `json:"jwks"`
	// LogKey is the log's note verifier key the JWK is derived from (a Glovebox extension).
	LogKey string `json:"log_key"`
}

func (s *Server) issuerMetadata(w http.ResponseWriter, r *http.Request) {
	k := s.creds.Issuer.Key
	writeJSON(w, http.StatusOK, IssuerMetadata{Issuer: s.creds.Issuer.URL, JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.JWK()}},
		LogKey: k.LogKey})
}
