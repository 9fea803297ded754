-- 0002: the access log (who read what of each vehicle), shared by every api process so that an owner
-- sees every read whichever process served it.
CREATE TABLE access_log (
	seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time bigint NOT NULL, vehicle bigint NOT NULL,
	caller bytea NOT NULL, query text NOT NULL, permissions text NOT NULL, from_ms bigint, to_ms bigint,
	value_count int NOT NULL, outcome text NOT NULL);
CREATE INDEX access_log_vehicle ON access_log (vehicle, seq);
