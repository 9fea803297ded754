-- 0001: the log, telemetry records with their derived signal tables, and the sequencer lease.

-- The Merkle log (C2SP tlog-tiles). Entries by index; stored hashes by golang.org/x/mod/sumdb/tlog's
-- stored-hash index (the hash tiles are read from them); every checkpoint the sequencer signed.
CREATE TABLE log_meta (origin text PRIMARY KEY);
CREATE TABLE log_entries (idx bigint PRIMARY KEY, data bytea NOT NULL);
CREATE TABLE log_hashes (idx bigint PRIMARY KEY, hash bytea NOT NULL);
CREATE TABLE log_checkpoints (size bigint PRIMARY KEY, note bytea NOT NULL, epoch bigint NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now());

-- The sequencer lease: one row. A process becomes the sequencer by taking the advisory lock and then
-- bumping epoch; every append checks, in its own transaction, that epoch is still its own (fencing).
CREATE TABLE sequencer_lease (id int PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL, holder text NOT NULL,
	url text NOT NULL, since timestamptz NOT NULL DEFAULT now());
INSERT INTO sequencer_lease (id, epoch, holder, url) VALUES (1, 0, '', '');

-- Telemetry. record_keys makes (source, id) unique across every partition of records (a unique index on a
-- partitioned table must include the partition key): a record is stored when its key is new; the digest
-- (SHA-256 of the event bytes) tells a duplicate from a conflict.
CREATE TABLE record_keys (source bytea NOT NULL, id text NOT NULL, digest bytea NOT NULL, time bigint NOT NULL,
	PRIMARY KEY (source, id));
CREATE SEQUENCE records_seq;
-- Records as received, partitioned by month of the record's time (unix ms); partitions are created on
-- demand by the writer (records_pYYYYMM).
CREATE TABLE records (
	seq bigint NOT NULL DEFAULT nextval('records_seq'), source bytea NOT NULL, id text NOT NULL,
	vehicle bigint NOT NULL, time bigint NOT NULL, received bigint NOT NULL, pairing bigint NOT NULL,
	event bytea NOT NULL, signature bytea NOT NULL,
	PRIMARY KEY (time, seq)) PARTITION BY RANGE (time);
CREATE INDEX records_vehicle_time ON records (vehicle, time, seq);

-- Derived from the records in the same transaction that stores them. One column per kind of value:
-- num for numbers and booleans (0/1), str for strings (string[] as a JSON array), loc for locations
-- (telemetry.EncodeLocation's 24 bytes).
CREATE TABLE names (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE signals (vehicle bigint NOT NULL, name int NOT NULL, time bigint NOT NULL,
	num double precision, str text, loc bytea,
	PRIMARY KEY (vehicle, name, time)) PARTITION BY RANGE (time);
CREATE TABLE latest (vehicle bigint NOT NULL, name int NOT NULL, time bigint NOT NULL,
	num double precision, str text, loc bytea,
	PRIMARY KEY (vehicle, name));
