-- 0003: snapshots of the ledger state, written now and then by the sequencer, so that a process starting
-- restores the newest one and replays only the entries after it instead of the whole log.
CREATE TABLE identity_snapshots (size bigint PRIMARY KEY, data bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now());
