-- 0013: five-minute slot summaries of large chunks of numbers (issue 16; docs/columnar.md, docs/scale.md).
--
-- slots is telemetry/series's AppendSlots encoding of a chunk's values summarized per five-minute slot of
-- its hour (count, first and last time and value, minimum, maximum, exact sum), written for chunks of
-- numbers and booleans of at least series.MinSlotValues values and NULL for the others. It lives in
-- chunk_data beside the blob rather than in chunk_sums, which stays narrow for the scans of whole-chunk
-- summaries; the blob, larger, is the column TOAST moves out of the row, so that selecting slots alone
-- reads no TOAST page. Partitions (chunk_data_pYYYYMM) take the column from their parent.
--
-- Chunks written before this migration keep slots NULL and are read by decoding, as before; the sealer
-- writes slots whenever it writes an hour again (a late value), and so does retention when it cuts a chunk.
ALTER TABLE chunk_data ADD COLUMN slots bytea;
-- Float bits do not compress either.
ALTER TABLE chunk_data ALTER COLUMN slots SET STORAGE EXTERNAL;
