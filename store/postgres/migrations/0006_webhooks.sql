-- 0006: webhooks and their delivery outbox (webhook/outbox.Store), shared by every process of a cluster.
-- Times are unix milliseconds, as in the single node's webhooks.db. A pending delivery is claimed by one
-- process at a time: lease_until is when its claim runs out, so that another process takes over the
-- deliveries of one that died.
CREATE TABLE webhooks (id text PRIMARY KEY, app bytea NOT NULL, url text NOT NULL, description text NOT NULL,
	vehicles text NOT NULL, trigger jsonb NOT NULL, secret text NOT NULL, status text NOT NULL, reason text NOT NULL,
	created bigint NOT NULL, updated bigint NOT NULL);
CREATE INDEX webhooks_app ON webhooks (app, created);
CREATE TABLE webhook_deliveries (seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, webhook text NOT NULL, app bytea NOT NULL,
	vehicle bigint NOT NULL, type text NOT NULL, perms text NOT NULL, body bytea NOT NULL, status text NOT NULL,
	attempts int NOT NULL, created bigint NOT NULL, next_attempt bigint NOT NULL, lease_until bigint NOT NULL DEFAULT 0,
	last_code int NOT NULL DEFAULT 0, last_error text NOT NULL DEFAULT '', done bigint NOT NULL DEFAULT 0);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_grant ON webhook_deliveries (app, vehicle) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook, seq);
CREATE TABLE webhook_attempts (delivery text NOT NULL, time bigint NOT NULL, code int NOT NULL, error text NOT NULL,
	duration_us bigint NOT NULL);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery, time);
CREATE TABLE webhook_cursors (name text PRIMARY KEY, pos bigint NOT NULL);
