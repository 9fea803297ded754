package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/attestation"
	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/ledger"
)

// Error codes of POST /v1/attestations and DELETE /v1/vehicles/{id}/attestations/{source}/{attestationId}.
const (
	CodeMalformedAttestation   = "malformed_attestation"
	CodeAttestationSignature   = "attestation_bad_signature"
	CodeAttestationWrongSigner = "attestation_wrong_signer"
	CodeAttestationTime        = "attestation_time"
	CodeAttestationNoGrant     = "attestation_no_grant"
	CodeAttestationTooLarge    = "attestation_too_large"
	CodeAttestationExists      = "attestation_exists"
	CodeUnknownAttestation     = "unknown_attestation"
)

// attestationCodes documents the codes above (ErrorCodes, docs/errors.md).
var attestationCodes = []ErrorCode{
	{CodeMalformedAttestation, http.StatusBadRequest, "an attestation is not a CloudEvent of the accepted shape: not one JSON object, a member twice or unknown, a missing subject or data, a bad id, type, specversion, datacontenttype, time or tags (docs/credentials.md)"},
	{CodeAttestationSignature, http.StatusBadRequest, "an attestation's signature is missing, is not 0x and 130 hex digits, or does not recover to a key (v not 27/28, high s)"},
	{CodeAttestationWrongSigner, http.StatusForbidden, "an attestation's signature does not recover to its source, or its source is not the signed-in app"},
	{CodeAttestationTime, http.StatusUnprocessableEntity, "an attestation's time is more than 5 minutes from the node's clock"},
	{CodeAttestationNoGrant, http.StatusForbidden, "the signed-in account is not an app holding a grant in force on the attestation's vehicle"},
	{CodeAttestationTooLarge, http.StatusRequestEntityTooLarge, "an attestation's body is larger than 64 KiB"},
	{CodeAttestationExists, http.StatusConflict, "an attestation with this source and id is already stored"},
	{CodeUnknownAttestation, http.StatusNotFound, "no attestation of this vehicle with this source and id, received since its current owner got it"},
}

// AttestationView is how the REST API shows a stored attestation (the answer of POST /v1/attestations).
type AttestationView struct {
	ID          string   `json:"id"`
	Vehicle     uint64   `json:"vehicleId"`
	Source      string   `json:"source"`
	Time        string   `json:"time"`
	Received    string   `json:"received"`
	Type        string   `json:"type"`
	DataVersion string   `json:"dataversion,omitempty"`
	Producer    string   `json:"producer,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Signature   string   `json:"signature"`
	// Path is where the owner deletes it.
	Path string `json:"path"`
}

// AttestationPath is the path of one attestation, for DELETE.
func AttestationPath(a *attestation.Attestation) string {
	return fmt.Sprintf("/v1/vehicles/%d/attestations/%s/%s", a.Vehicle, a.Source.Hex(), a.ID)
}

// postAttestation answers POST /v1/attestations: an app that holds a grant in force on the vehicle of the
// event's subject stores its signed statement about it (package attestation has the wire format).
func (s *Server) postAttestation(w http.ResponseWriter, r *http.Request) {
	c := s.creds
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	claims, _ := auth.ClaimsFromContext(r.Context())
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, attestation.MaxBody))
	if err != nil {
		writeErr(w, CodeAttestationTooLarge, fmt.Sprintf("an attestation is at most %d bytes", attestation.MaxBody))
		return
	}
	a, err := attestation.Parse(body, claims.Subject, now)
	if err != nil {
		for _, m := range []struct {
			err  error
			code string
		}{
			{attestation.ErrMalformed, CodeMalformedAttestation},
			{attestation.ErrBadSignature, CodeAttestationSignature},
			{attestation.ErrWrongSigner, CodeAttestationWrongSigner},
			{attestation.ErrTime, CodeAttestationTime},
		} {
			if errors.Is(err, m.err) {
				writeErr(w, m.code, err.Error())
				return
			}
		}
		writeErr(w, CodeMalformedAttestation, err.Error())
		return
	}
	var sc access.Scope
	s.seq.Read(func(st *ledger.State) { sc, err = access.ScopeOf(st, claims.Subject, a.Vehicle, now) })
	var denied *access.Denied
	if errors.As(err, &denied) || (err == nil && sc.Role != access.RoleGrantee) {
		writeErr(w, CodeAttestationNoGrant, fmt.Sprintf("%s holds no grant in force on vehicle %d", claims.Subject.Hex(), a.Vehicle))
		return
	}
	if writeAccessError(w, a.Vehicle, err, "") {
		return
	}
	if err := c.Attestations.Put(r.Context(), a); err != nil {
		if errors.Is(err, attestation.ErrExists) {
			writeErr(w, CodeAttestationExists, err.Error())
			return
		}
		s.logger.Error("couldn't store an attestation", "err", err)
		writeErr(w, CodeInternal, "couldn't store the attestation")
		return
	}
	if c.Record != nil {
		c.Record(accesslog.Entry{Time: now, Vehicle: a.Vehicle, Caller: claims.Subject, Query: "attestation:" + a.ID,
			Permissions: sc.Grant.Permissions, Values: 1, Outcome: "ok"})
	}
	writeJSON(w, http.StatusCreated, attestationView(a))
}

func attestationView(a *attestation.Attestation) AttestationView {
	return AttestationView{ID: a.ID, Vehicle: a.Vehicle, Source: a.Source.Hex(), Time: a.Time.Format(time.RFC3339Nano),
		Received: a.Received.Format(time.RFC3339Nano), Type: a.Type, DataVersion: a.DataVersion, Producer: a.Producer,
		Tags: a.Tags, Signature: a.SignatureHex(), Path: AttestationPath(a)}
}

// deleteAttestation answers DELETE /v1/vehicles/{id}/attestations/{source}/{attestationId}: the vehicle's
// owner removes an attestation received since they own it (204).
func (s *Server) deleteAttestation(w http.ResponseWriter, r *http.Request) {
	claims, _ := auth.ClaimsFromContext(r.Context())
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeErr(w, string(ledger.CodeMalformed), "a vehicle id is a positive integer")
		return
	}
	src, err := ledger.ParseAddress(r.PathValue("source"))
	if err != nil {
		writeErr(w, string(ledger.CodeMalformed), "source is the attesting app's address")
		return
	}
	aid := r.PathValue("attestationId")
	if err := attestation.CheckID(aid); err != nil {
		writeErr(w, string(ledger.CodeMalformed), err.Error())
		return
	}
	now := time.Now()
	if s.creds.Now != nil {
		now = s.creds.Now()
	}
	var d access.Decision
	s.seq.Read(func(st *ledger.State) { d, err = access.Check(st, claims.Subject, id, ledger.PermCredentials, now) })
	const ownerOnly = "only the vehicle's owner deletes its attestations"
	if writeAccessError(w, id, err, ownerOnly) {
		return
	}
	if d.Role != access.RoleOwner {
		writeErr(w, CodeForbidden, ownerOnly)
		return
	}
	ok, err := s.creds.Attestations.Delete(r.Context(), id, d.Since, src, aid)
	if err != nil {
		s.logger.Error("couldn't delete an attestation", "err", err)
		writeErr(w, CodeInternal, "couldn't delete the attestation")
		return
	}
	if !ok {
		writeErr(w, CodeUnknownAttestation, fmt.Sprintf("vehicle %d has no attestation %s/%s since its owner got it", id, src.Hex(), aid))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
