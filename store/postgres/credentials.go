package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/glovebox/glovebox/attestation"
	"github.com/glovebox/glovebox/credential"
)

// Credentials keeps the latest VIN credential of each vehicle (credential.VINStore) and third parties'
// attestations (attestation.Store), in tables vin_credentials and attestations. Writes are committed with
// PostgreSQL's synchronous commit: durable when they return.
type Credentials struct{ pool *pgxpool.Pool }

var (
	_ attestation.Store   = (*Credentials)(nil)
	_ credential.VINStore = (*Credentials)(nil)
)

// NewCredentials returns the credentials store of a migrated database.
func NewCredentials(pool *pgxpool.Pool) *Credentials { return &Credentials{pool: pool} }

// PutVIN implements credential.VINStore.
func (s *Credentials) PutVIN(ctx context.Context, v credential.IssuedVIN) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO vin_credentials (vehicle, caller, issued_at, expires, vin, measured_at, recorded_by, sdjwt)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (vehicle) DO UPDATE SET caller = excluded.caller, issued_at = excluded.issued_at,
		expires = excluded.expires, vin = excluded.vin, measured_at = excluded.measured_at, recorded_by = excluded.recorded_by,
		sdjwt = excluded.sdjwt`,
		int64(v.Vehicle), v.Caller.Bytes(), v.IssuedAt.UnixMilli(), v.Expires.UnixMilli(), v.VIN, v.MeasuredAt.UnixMilli(), v.RecordedBy.Bytes(), v.SDJWT)
	if err != nil {
		return fmt.Errorf("couldn't keep the VIN credential of vehicle %d: %w", v.Vehicle, err)
	}
	return nil
}

// LatestVIN implements credential.VINStore.
func (s *Credentials) LatestVIN(ctx context.Context, vehicle uint64, since time.Time) (credential.IssuedVIN, bool, error) {
	v := credential.IssuedVIN{Vehicle: vehicle}
	var caller, by []byte
	var iat, exp, measured int64
	err := s.pool.QueryRow(ctx, `SELECT caller, issued_at, expires, vin, measured_at, recorded_by, sdjwt FROM vin_credentials
		WHERE vehicle = $1 AND issued_at >= $2`, int64(vehicle), since.UnixMilli()).Scan(&caller, &iat, &exp, &v.VIN, &measured, &by, &v.SDJWT)
	if errors.Is(err, pgx.ErrNoRows) {
		return credential.IssuedVIN{}, false, nil
	}
	if err != nil {
		return credential.IssuedVIN{}, false, fmt.Errorf("couldn't read the VIN credential of vehicle %d: %w", vehicle, err)
	}
	v.Caller, v.RecordedBy = common.BytesToAddress(caller), common.BytesToAddress(by)
	v.IssuedAt, v.Expires, v.MeasuredAt = time.UnixMilli(iat).UTC(), time.UnixMilli(exp).UTC(), time.UnixMilli(measured).UTC()
	return v, true, nil
}

// Put implements attestation.Store.
func (s *Credentials) Put(ctx context.Context, a *attestation.Attestation) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO attestations (source, id, vehicle, time, received, type, producer, data_version, tags, data, signature)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (source, id) DO NOTHING`,
		a.Source.Bytes(), a.ID, int64(a.Vehicle), a.Time.UnixMilli(), a.Received.UnixMilli(), a.Type, a.Producer, a.DataVersion, a.Tags, a.Data, a.Signature[:])
	if err != nil {
		return fmt.Errorf("couldn't store the attestation %s/%s: %w", a.Source.Hex(), a.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s/%s", attestation.ErrExists, a.Source.Hex(), a.ID)
	}
	return nil
}

// List implements attestation.Store.
func (s *Credentials) List(ctx context.Context, vehicle uint64, since time.Time) ([]*attestation.Attestation, error) {
	rows, err := s.pool.Query(ctx, `SELECT source, id, time, received, type, producer, data_version, tags, data, signature
		FROM attestations WHERE vehicle = $1 AND received >= $2 ORDER BY time DESC, received DESC, source, id`, int64(vehicle), since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("couldn't read the attestations of vehicle %d: %w", vehicle, err)
	}
	defer rows.Close()
	var out []*attestation.Attestation
	for rows.Next() {
		a := &attestation.Attestation{Vehicle: vehicle}
		var src, sig []byte
		var t, recv int64
		if err := rows.Scan(&src, &a.ID, &t, &recv, &a.Type, &a.Producer, &a.DataVersion, &a.Tags, &a.Data, &sig); err != nil {
			return nil, fmt.Errorf("couldn't read the attestations of vehicle %d: %w", vehicle, err)
		}
		a.Source, a.Time, a.Received = common.BytesToAddress(src), time.UnixMilli(t).UTC(), time.UnixMilli(recv).UTC()
		copy(a.Signature[:], sig)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Delete implements attestation.Store.
func (s *Credentials) Delete(ctx context.Context, vehicle uint64, since time.Time, source common.Address, id string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM attestations WHERE source = $1 AND id = $2 AND vehicle = $3 AND received >= $4`,
		source.Bytes(), id, int64(vehicle), since.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("couldn't delete the attestation %s/%s: %w", source.Hex(), id, err)
	}
	return tag.RowsAffected() > 0, nil
}
