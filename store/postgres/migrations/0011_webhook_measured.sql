-- 0011: each delivery's measurement time (outbox.Delivery.Measured, unix ms, 0 for an event that carries no
-- telemetry), so that retention and erasure delete the deliveries that carried a vehicle's deleted
-- telemetry (Webhooks.Erase), as the single node's webhooks.db does. Deliveries already enqueued get it
-- from their events: a signal's or a driving event's timestamp, a trip's start, a last-seen time; a body
-- that is not such an event, or whose time is not RFC 3339, gets 0.
ALTER TABLE webhook_deliveries ADD COLUMN measured bigint NOT NULL DEFAULT 0;
CREATE FUNCTION pg_temp.glovebox_measured(body bytea) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	j jsonb;
	ts text;
BEGIN
	j := convert_from(body, 'UTF8')::jsonb;
	ts := COALESCE(j #>> '{data,signal,timestamp}', j #>> '{data,event,timestamp}', j #>> '{data,start}', j #>> '{data,lastSeen}');
	IF ts IS NULL OR ts !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$' THEN
		RETURN 0; -- not an RFC 3339 time (PostgreSQL would also read words such as 'yesterday')
	END IF;
	RETURN floor(extract(epoch FROM ts::timestamptz) * 1000)::bigint;
EXCEPTION WHEN others THEN
	RETURN 0;
END $$;
UPDATE webhook_deliveries SET measured = pg_temp.glovebox_measured(body) WHERE vehicle <> 0;
DROP FUNCTION pg_temp.glovebox_measured(bytea);
CREATE INDEX webhook_deliveries_measured ON webhook_deliveries (vehicle, measured) WHERE measured > 0;
