-- 0013: five-minute slot summaries of large chunks of numbers (issue 16; docs/columnar.md, docs/scale.md).
--
-- slots is telemetry/series's AppendSlots encoding of a chunk's values summarized per five-minute slot of
-- its hour (count, first and last time and value, minimum, maximum, exact sum), written for chunks of
-- numbers and booleans of at least series.MinSlotValues values and NULL for the others. It lives in
-- chunk_data beside the blob rather than in chunk_sums, which stays narrow for the scans of whole-chunk
-- summaries; the blob, larger, is the column TOAST moves out of the row, so that selecting slots alone
-- reads no TOAST page. Partitions (chunk_data_pYYYYMM) take the column from their parent.
--
-- Every writer of chunks (the sealer, retention cutting a chunk) writes slots from now on. Chunks written
-- before this migration have slots NULL, and are read by decoding, as before, until the sealer has filled
-- them in (below).
ALTER TABLE chunk_data ADD COLUMN slots bytea;
-- Float bits do not compress either.
ALTER TABLE chunk_data ALTER COLUMN slots SET STORAGE EXTERNAL;

-- The sealer fills in the slots of the chunks sealed before this migration (Telemetry.FillSlots), a batch
-- per transaction in key order, keeping here the key of the last chunk it reached, until done: once per
-- database, whatever the number of processes. A database without chunks has nothing to fill.
CREATE TABLE chunk_slot_fill (one boolean PRIMARY KEY DEFAULT true CHECK (one),
	vehicle bigint, name int, start bigint, done boolean NOT NULL);
INSERT INTO chunk_slot_fill (done) SELECT NOT EXISTS (SELECT 1 FROM chunk_sums);
