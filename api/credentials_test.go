package api

import (
	"errors"
	"testing"
	"time"

	"github.com/glovebox/glovebox/credential"
)

// FuzzParseCredentialRequest: the request parser never crashes, refuses only with the errors the API maps
// to its documented codes, and a request it and Validate accept is well formed.
func FuzzParseCredentialRequest(f *testing.F) {
	f.Add([]byte(`{"type":"odometer","at":"2026-03-01T00:00:00Z"}`))
	f.Add([]byte(`{"type":"mileage","from":"2026-03-01T00:00:00Z","to":"2026-05-31T23:59:59.999+02:00"}`))
	f.Add([]byte(`{"type":"movement","from":"2026-03-01T00:00:00Z","to":"2026-03-01T00:00:00Z"}`))
	f.Add([]byte(`{"type":"vin","holder_key":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}`))
	f.Add([]byte(`{"type":"vin","holder_key":{"kty":"EC"}}`))
	f.Add([]byte(`{"type":null}`))
	f.Add([]byte(`{}{}`))
	f.Add([]byte(`[]`))
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	known := []error{errMalformedRequest, credential.ErrUnknownType, credential.ErrMissingTime, credential.ErrInvertedTime,
		credential.ErrBadHolderKey}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseCredentialRequest(body)
		if err == nil {
			err = req.Validate(now)
		}
		if err != nil {
			for _, k := range known {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("an error without a code: %v", err)
		}
		switch req.Type {
		case credential.TypeOdometer:
			if req.At == nil {
				t.Fatal("an odometer request without at")
			}
		case credential.TypeMileage, credential.TypeMovement:
			if req.From == nil || req.To == nil || !req.From.Before(*req.To) {
				t.Fatalf("a %s request over %v–%v", req.Type, req.From, req.To)
			}
		case credential.TypeVIN:
		default:
			t.Fatalf("type %q accepted", req.Type)
		}
		if req.HolderKey != nil && !req.HolderKey.IsPublic() {
			t.Fatal("a private holder key accepted")
		}
	})
}
