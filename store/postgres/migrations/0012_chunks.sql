-- 0012: signal values in compressed chunks (issue 16; docs/columnar.md, docs/scale.md).
--
-- The values of a closed UTC hour of one signal of one vehicle move from signals (a row per value) into
-- chunks: the sealer (store/postgres's Telemetry.Seal) encodes them with telemetry/series. chunk_sums
-- holds one narrow row per chunk — the times of its first and last value, the count, the exact sum
-- (telemetry/chunk.Sum's binary partials; numbers and booleans only), minimum and maximum (ditto), the
-- first and last value — so that a 30-day aggregation reads ~720 short rows; chunk_data holds the encoded
-- chunk. kind is the chunk's format: 0 numbers and booleans, 1 strings (string[] as JSON), 2 locations.
-- fv and lv are the first and last value as bytes: a number's big-endian float64 bits, a string's UTF-8,
-- a location's 24 bytes (telemetry.EncodeLocation).
--
-- Both are partitioned by month of start like records and signals (chunk_sums_pYYYYMM,
-- chunk_data_pYYYYMM, created on demand by the writer), a chunk never crossing an hour, so that
-- retention can drop a month whole. The rows of signals already stored are sealed by the sealer the
-- first time it runs after this migration; reads merge chunks and rows meanwhile.
CREATE TABLE chunk_sums (vehicle bigint NOT NULL, name int NOT NULL, start bigint NOT NULL, "end" bigint NOT NULL,
	cnt int NOT NULL, kind smallint NOT NULL, xsum bytea, lo double precision, hi double precision,
	fv bytea NOT NULL, lv bytea NOT NULL,
	PRIMARY KEY (vehicle, name, start)) PARTITION BY RANGE (start);
CREATE TABLE chunk_data (vehicle bigint NOT NULL, name int NOT NULL, start bigint NOT NULL, data bytea NOT NULL,
	PRIMARY KEY (vehicle, name, start)) PARTITION BY RANGE (start);
-- The XOR encoding does not compress further: keep it out of pglz.
ALTER TABLE chunk_data ALTER COLUMN data SET STORAGE EXTERNAL;
