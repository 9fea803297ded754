package graphql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/glovebox/glovebox/api/graphql/internal/exec"
	"github.com/glovebox/glovebox/attestation"
	vc "github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/ledger"
)

// The bounds of attestations' filter.limit.
const (
	DefaultAttestations = 10
	MaxAttestations     = 100
)

// VinVCLatest answers DIMO's vinVCLatest with the latest VIN credential issued for the vehicle since its
// current owner got it (@requires credentials decided the caller may). It issues none: null when none
// was issued. A caller other than the owner gets the credential without its evidence unless its grant
// lets it read every signal the evidence's records carry, as at issuance.
func (q *queryResolver) VinVCLatest(ctx context.Context, tokenID int) (*exec.Vinvc, error) {
	if tokenID < 0 {
		return nil, codedError(CodeBadRequest, "tokenId %d: vehicle ids are not negative", tokenID)
	}
	vehicle := uint64(tokenID)
	if q.cfg.VINs == nil {
		return nil, errors.New("graphql: no VIN credential store configured")
	}
	g, err := (*resolver)(q).grantsOf(ctx, vehicle)
	if err != nil {
		return nil, err
	}
	v, ok, err := q.cfg.VINs.LatestVIN(ctx, vehicle, g.since)
	if err != nil {
		return nil, err
	}
	perms := []string{ledger.PermCredentials}
	if !ok {
		q.recordEntry(ctx, vehicle, g, perms, time.Time{}, time.Time{}, 0, "ok")
		return nil, nil
	}
	raw := v.SDJWT
	if !g.owner {
		if raw, err = q.withoutUnreadableEvidence(g, raw); err != nil {
			return nil, err
		}
	}
	q.recordEntry(ctx, vehicle, g, perms, time.Time{}, time.Time{}, 1, "ok")
	id, by := tokenID, v.RecordedBy.Hex()
	return &exec.Vinvc{VehicleTokenID: &id, Vin: &v.VIN, RecordedBy: &by, RecordedAt: &v.MeasuredAt,
		ValidFrom: &v.IssuedAt, ValidTo: &v.Expires, RawVc: raw}, nil
}

// withoutUnreadableEvidence returns sdjwt without its evidence disclosure when g does not let the caller
// read every signal of the evidence's records (a record carries every signal its device sent with it).
func (q *queryResolver) withoutUnreadableEvidence(g grants, sdjwt string) (string, error) {
	ev, err := vc.DisclosedEvidence(sdjwt)
	if err != nil || ev == nil {
		return sdjwt, err
	}
	names, err := ev.Signals(q.cfg.Catalog)
	if err != nil {
		return "", fmt.Errorf("couldn't read the signals of a stored credential's evidence: %w", err)
	}
	for _, name := range names {
		if s, ok := q.cfg.Catalog.Lookup(name); !ok || !g.signal(s) {
			return vc.Present(sdjwt, "vehicle_id", "vin")
		}
	}
	return sdjwt, nil
}

// Attestations answers DIMO's attestations for the vehicle tokenId (@requires credentials decided the
// caller may): the attestations received since its current owner got it, newest first, filtered.
func (q *queryResolver) Attestations(ctx context.Context, tokenID *int, subject *string, filter *exec.AttestationFilter) ([]*exec.Attestation, error) {
	if tokenID == nil || *tokenID < 0 {
		return nil, codedError(CodeBadRequest, "tokenId (a vehicle id) is required")
	}
	vehicle := uint64(*tokenID)
	if q.cfg.Attestations == nil {
		return nil, errors.New("graphql: no attestation store configured")
	}
	match, limit, err := attestationFilter(filter)
	if err != nil {
		return nil, err
	}
	g, err := (*resolver)(q).grantsOf(ctx, vehicle)
	if err != nil {
		return nil, err
	}
	out := []*exec.Attestation{}
	if subject == nil || *subject == strconv.FormatUint(vehicle, 10) {
		all, err := q.cfg.Attestations.List(ctx, vehicle, g.since)
		if err != nil {
			return nil, err
		}
		for _, a := range all {
			if len(out) == limit {
				break
			}
			if match(a) {
				out = append(out, attestationOf(a, *tokenID))
			}
		}
	}
	q.recordEntry(ctx, vehicle, g, []string{ledger.PermCredentials}, time.Time{}, time.Time{}, len(out), "ok")
	return out, nil
}

// attestationFilter checks filter and returns its condition and limit.
func attestationFilter(f *exec.AttestationFilter) (func(*attestation.Attestation) bool, int, error) {
	if f == nil {
		return func(*attestation.Attestation) bool { return true }, DefaultAttestations, nil
	}
	limit := DefaultAttestations
	if f.Limit != nil {
		if *f.Limit < 1 || *f.Limit > MaxAttestations {
			return nil, 0, codedError(CodeBadRequest, "filter.limit is 1 to %d", MaxAttestations)
		}
		limit = *f.Limit
	}
	var src *[20]byte
	if f.Source != nil {
		a, err := ledger.ParseAddress(*f.Source)
		if err != nil {
			return nil, 0, codedError(CodeBadRequest, "filter.source: %v", err)
		}
		b := [20]byte(a)
		src = &b
	}
	return func(a *attestation.Attestation) bool {
		switch {
		case f.ID != nil && a.ID != *f.ID,
			src != nil && [20]byte(a.Source) != *src,
			f.DataVersion != nil && a.DataVersion != *f.DataVersion,
			f.Producer != nil && a.Producer != *f.Producer,
			f.Before != nil && !a.Time.Before(*f.Before),
			f.After != nil && !a.Time.After(*f.After),
			f.Cursor != nil && !a.Time.Before(*f.Cursor):
			return false
		}
		return matchTagList(f.Tags, a.Tags)
	}, limit, nil
}

// matchTagList applies a StringArrayFilter to a list of tags: every condition set must hold, and one
// filter of or when it is set.
func matchTagList(f *exec.StringArrayFilter, tags []string) bool {
	if f == nil {
		return true
	}
	if len(f.ContainsAny) > 0 && !slices.ContainsFunc(f.ContainsAny, func(s string) bool { return slices.Contains(tags, s) }) {
		return false
	}
	for _, s := range f.ContainsAll {
		if !slices.Contains(tags, s) {
			return false
		}
	}
	if slices.ContainsFunc(f.NotContainsAny, func(s string) bool { return slices.Contains(tags, s) }) {
		return false
	}
	if len(f.NotContainsAll) > 0 && !slices.ContainsFunc(f.NotContainsAll, func(s string) bool { return !slices.Contains(tags, s) }) {
		return false
	}
	if len(f.Or) == 0 {
		return true
	}
	for i := range f.Or {
		if matchTagList(&f.Or[i], tags) {
			return true
		}
	}
	return false
}

func attestationOf(a *attestation.Attestation, tokenID int) *exec.Attestation {
	out := &exec.Attestation{ID: a.ID, VehicleTokenID: tokenID, Time: a.Time, Attestation: string(a.Data), Type: a.Type,
		Source: a.Source.Hex(), DataVersion: a.DataVersion, Signature: a.SignatureHex(), Tags: a.Tags}
	if a.Producer != "" {
		p := a.Producer
		out.Producer = &p
	}
	return out
}
