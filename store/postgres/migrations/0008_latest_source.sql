-- 0008: the newest value of each signal of a vehicle from each source (the device that signed its record),
-- for signalsLatest's source filter (telemetry.Reader.LatestFrom). Values stored before this migration
-- are not attributed: a source's latest values start with its next record.
CREATE TABLE latest_source (vehicle bigint NOT NULL, source bytea NOT NULL, name int NOT NULL, time bigint NOT NULL,
	num float8, str text, loc bytea, PRIMARY KEY (vehicle, source, name));
