-- 0008: the OpenID Provider's flow state (package connect/flowstate), shared by every api process of a
-- cluster: open consent screens, authorization codes, refresh-token families and used client assertion
-- ids. Screens, codes and refresh tokens are keyed by the SHA-256 of the secret, never the secret. Every
-- row carries the instant it is forgotten (forget_at); lookups ignore rows past it, and writes delete
-- them a bounded number at a time.
CREATE TABLE connect_pending (
	id bytea PRIMARY KEY, request bytea NOT NULL, expires_at bigint NOT NULL, forget_at timestamptz NOT NULL);
CREATE INDEX connect_pending_forget ON connect_pending (forget_at);
CREATE TABLE connect_families (
	id text PRIMARY KEY, revoked boolean NOT NULL DEFAULT false, forget_at timestamptz NOT NULL);
CREATE INDEX connect_families_forget ON connect_families (forget_at);
CREATE TABLE connect_codes (
	code bytea PRIMARY KEY, request bytea NOT NULL, owner bytea NOT NULL, vehicles bigint[] NOT NULL,
	auth_time timestamptz NOT NULL, deadline timestamptz NOT NULL, used boolean NOT NULL DEFAULT false,
	family text, forget_at timestamptz NOT NULL);
CREATE INDEX connect_codes_forget ON connect_codes (forget_at);
-- used_seq orders a family's used tokens (the newest flowstate.MaxUsedRefresh are kept), even when two
-- were used at the same instant.
CREATE SEQUENCE connect_used_seq;
CREATE TABLE connect_refresh (
	hash bytea PRIMARY KEY, family text NOT NULL REFERENCES connect_families ON DELETE CASCADE,
	request bytea NOT NULL, owner bytea NOT NULL, vehicles bigint[] NOT NULL, deadline timestamptz NOT NULL,
	used_seq bigint, forget_at timestamptz NOT NULL);
CREATE INDEX connect_refresh_forget ON connect_refresh (forget_at);
CREATE INDEX connect_refresh_used ON connect_refresh (family, used_seq) WHERE used_seq IS NOT NULL;
CREATE TABLE connect_access (
	family text NOT NULL REFERENCES connect_families ON DELETE CASCADE, jti text NOT NULL,
	expiry timestamptz NOT NULL, PRIMARY KEY (family, jti));
CREATE INDEX connect_access_expiry ON connect_access (expiry);
CREATE TABLE connect_assertions (key text PRIMARY KEY, expiry timestamptz NOT NULL);
CREATE INDEX connect_assertions_expiry ON connect_assertions (expiry);
-- Access tokens revoked (a reused code or refresh token, or POST /oauth/revoke), in order, for every
-- process to read (FlowState.Revocations) and refuse; forgotten once the token expired.
CREATE TABLE connect_revoked (seq bigserial PRIMARY KEY, jti text NOT NULL, expiry timestamptz NOT NULL);
CREATE INDEX connect_revoked_expiry ON connect_revoked (expiry);
