-- 0007: the latest VIN credential of each vehicle (for the GraphQL vinVCLatest) and third parties'
-- attestations (package attestation), shared by every api process.
CREATE TABLE vin_credentials (
	vehicle bigint PRIMARY KEY, caller bytea NOT NULL, issued_at bigint NOT NULL, expires bigint NOT NULL,
	vin text NOT NULL, measured_at bigint NOT NULL, recorded_by bytea NOT NULL, sdjwt text NOT NULL);
CREATE TABLE attestations (
	source bytea NOT NULL, id text NOT NULL, vehicle bigint NOT NULL, time bigint NOT NULL,
	received bigint NOT NULL, type text NOT NULL, producer text NOT NULL, data_version text NOT NULL,
	tags text[], data bytea NOT NULL, signature bytea NOT NULL, PRIMARY KEY (source, id));
CREATE INDEX attestations_vehicle ON attestations (vehicle, time);
