-- 0005: what the retention sweeper and erasures deleted (telemetry.Deleter), per vehicle and job, counted
-- in the transactions that delete; dirty while derived rows were deleted and the latest values not yet
-- recomputed from what remains.
CREATE TABLE deletions (vehicle bigint NOT NULL, job text NOT NULL, records bigint NOT NULL DEFAULT 0,
	vals bigint NOT NULL DEFAULT 0, events bigint NOT NULL DEFAULT 0, completed_at bigint NOT NULL DEFAULT 0,
	swept_at bigint NOT NULL DEFAULT 0, dirty boolean NOT NULL DEFAULT false,
	PRIMARY KEY (vehicle, job));
