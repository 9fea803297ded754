package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/attestation"
	"github.com/glovebox/glovebox/credential"
)

// Credentials keeps what the credential paths need beyond the telemetry: the latest VIN credential of each
// vehicle (credential.VINStore) and third parties' attestations (attestation.Store), in its own SQLite
// file. Every write is fsynced before it returns (synchronous=FULL).
type Credentials struct{ db *sql.DB }

var (
	_ attestation.Store   = (*Credentials)(nil)
	_ credential.VINStore = (*Credentials)(nil)
)

const credentialsSchema = `
CREATE TABLE IF NOT EXISTS vin_credentials (
	vehicle INTEGER PRIMARY KEY, caller BLOB NOT NULL, issued_at INTEGER NOT NULL, expires INTEGER NOT NULL,
	vin TEXT NOT NULL, measured_at INTEGER NOT NULL, recorded_by BLOB NOT NULL, sdjwt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attestations (
	source BLOB NOT NULL, id TEXT NOT NULL, vehicle INTEGER NOT NULL, time INTEGER NOT NULL,
	received INTEGER NOT NULL, type TEXT NOT NULL, producer TEXT NOT NULL, data_version TEXT NOT NULL,
	tags TEXT NOT NULL, data BLOB NOT NULL, signature BLOB NOT NULL, PRIMARY KEY (source, id));
CREATE INDEX IF NOT EXISTS attestations_vehicle ON attestations (vehicle, time);
`

// OpenCredentials opens (creating if needed) the credentials store in the SQLite file at path.
func OpenCredentials(path string) (*Credentials, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	if _, err := db.Exec(credentialsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create the credentials schema in %s: %w", path, err)
	}
	return &Credentials{db: db}, nil
}

// Close closes the database.
func (s *Credentials) Close() error { return s.db.Close() }

// PutVIN implements credential.VINStore.
func (s *Credentials) PutVIN(ctx context.Context, v credential.IssuedVIN) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO vin_credentials (vehicle, caller, issued_at, expires, vin, measured_at, recorded_by, sdjwt)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (vehicle) DO UPDATE SET caller = excluded.caller, issued_at = excluded.issued_at,
		expires = excluded.expires, vin = excluded.vin, measured_at = excluded.measured_at, recorded_by = excluded.recorded_by,
		sdjwt = excluded.sdjwt`,
		v.Vehicle, v.Caller.Bytes(), v.IssuedAt.UnixMilli(), v.Expires.UnixMilli(), v.VIN, v.MeasuredAt.UnixMilli(), v.RecordedBy.Bytes(), v.SDJWT)
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
	err := s.db.QueryRowContext(ctx, `SELECT caller, issued_at, expires, vin, measured_at, recorded_by, sdjwt FROM vin_credentials
		WHERE vehicle = ? AND issued_at >= ?`, vehicle, since.UnixMilli()).Scan(&caller, &iat, &exp, &v.VIN, &measured, &by, &v.SDJWT)
	if errors.Is(err, sql.ErrNoRows) {
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
	tags, err := encodeTags(a.Tags)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO attestations (source, id, vehicle, time, received, type, producer, data_version, tags, data, signature)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, id) DO NOTHING`,
		a.Source.Bytes(), a.ID, a.Vehicle, a.Time.UnixMilli(), a.Received.UnixMilli(), a.Type, a.Producer, a.DataVersion, tags, a.Data, a.Signature[:])
	if err != nil {
		return fmt.Errorf("couldn't store the attestation %s/%s: %w", a.Source.Hex(), a.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("%w: %s/%s", attestation.ErrExists, a.Source.Hex(), a.ID)
	}
	return nil
}

// List implements attestation.Store.
func (s *Credentials) List(ctx context.Context, vehicle uint64, since time.Time) ([]*attestation.Attestation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT source, id, time, received, type, producer, data_version, tags, data, signature
		FROM attestations WHERE vehicle = ? AND received >= ? ORDER BY time DESC, received DESC, source, id`, vehicle, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("couldn't read the attestations of vehicle %d: %w", vehicle, err)
	}
	defer rows.Close()
	var out []*attestation.Attestation
	for rows.Next() {
		a := &attestation.Attestation{Vehicle: vehicle}
		var src, sig []byte
		var t, recv int64
		var tags string
		if err := rows.Scan(&src, &a.ID, &t, &recv, &a.Type, &a.Producer, &a.DataVersion, &tags, &a.Data, &sig); err != nil {
			return nil, fmt.Errorf("couldn't read the attestations of vehicle %d: %w", vehicle, err)
		}
		a.Source, a.Time, a.Received = common.BytesToAddress(src), time.UnixMilli(t).UTC(), time.UnixMilli(recv).UTC()
		copy(a.Signature[:], sig)
		if a.Tags, err = decodeTags(tags); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Delete implements attestation.Store.
func (s *Credentials) Delete(ctx context.Context, vehicle uint64, since time.Time, source common.Address, id string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM attestations WHERE source = ? AND id = ? AND vehicle = ? AND received >= ?`,
		source.Bytes(), id, vehicle, since.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("couldn't delete the attestation %s/%s: %w", source.Hex(), id, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// encodeTags stores tags as a JSON array, "" for none.
func encodeTags(tags []string) (string, error) {
	if tags == nil {
		return "", nil
	}
	b, err := json.Marshal(tags)
	if err != nil {
		return "", fmt.Errorf("couldn't encode tags: %w", err)
	}
	return string(b), nil
}

func decodeTags(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var tags []string
	if err := json.Unmarshal([]byte(s), &tags); err != nil {
		return nil, fmt.Errorf("bad stored tags %q: %w", s, err)
	}
	return tags, nil
}
