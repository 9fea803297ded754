-- 0004: driving events (telemetry.Events): those of glovebox.events records and those derived from the
-- speed signal, once per vehicle, time, name and source.
CREATE TABLE events (vehicle bigint NOT NULL, time bigint NOT NULL, name text NOT NULL, source text NOT NULL,
	duration_ns bigint NOT NULL, metadata text NOT NULL,
	PRIMARY KEY (vehicle, time, name, source));
