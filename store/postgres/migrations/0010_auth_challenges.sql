-- 0010: the outstanding sign-in challenges (package auth/challenge), shared by every api process of a
-- cluster, so that a challenge fetched from one process is answered at any other. A row lives until its
-- deadline or the exchange that deletes it; lookups ignore rows past their deadline, and each new
-- challenge deletes a bounded number of them.
CREATE TABLE auth_challenges (
	nonce text PRIMARY KEY, address bytea NOT NULL, deadline timestamptz NOT NULL);
CREATE INDEX auth_challenges_deadline ON auth_challenges (deadline);
