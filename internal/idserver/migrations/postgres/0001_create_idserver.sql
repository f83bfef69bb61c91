-- The relying parties the ID Server serves. rp_key is the hex SHA-256 of the
-- relyingPartyUUID, which is a shared secret and is not stored itself;
-- services and allowed_ips are JSON arrays of strings.
CREATE TABLE idserver_rps (
	rp_key       TEXT   NOT NULL PRIMARY KEY,
	name         TEXT   NOT NULL,
	services     TEXT   NOT NULL,
	allowed_ips  TEXT   NOT NULL,
	rate_limit   DOUBLE PRECISION NOT NULL,
	burst        BIGINT NOT NULL,
	confirmation TEXT   NOT NULL,
	created_at   BIGINT NOT NULL
);

-- Authentication and signature sessions. They live for five minutes after
-- created_at (expires_at) and are pruned afterwards. state is RUNNING or
-- COMPLETE; result is a MID end result, or INTERNAL_ERROR.
CREATE TABLE idserver_sessions (
	id             TEXT   NOT NULL PRIMARY KEY,
	rp_key         TEXT   NOT NULL,
	kind           TEXT   NOT NULL,
	phone          TEXT   NOT NULL,
	national_id    TEXT   NOT NULL,
	hash           BYTEA   NOT NULL,
	hash_type      TEXT   NOT NULL,
	language       TEXT   NOT NULL,
	display_text   TEXT   NOT NULL,
	display_format TEXT   NOT NULL,
	vc             TEXT   NOT NULL,
	ap_trans_id    TEXT   NOT NULL,
	mssp_trans_id  TEXT   NOT NULL,
	state          TEXT   NOT NULL,
	result         TEXT   NOT NULL,
	sig_value      BYTEA   NOT NULL,
	sig_alg        TEXT   NOT NULL,
	cert           BYTEA   NOT NULL,
	created_at     BIGINT NOT NULL,
	expires_at     BIGINT NOT NULL,
	finished_at    BIGINT NOT NULL
);
CREATE INDEX idserver_sessions_expires_at ON idserver_sessions (expires_at);
CREATE INDEX idserver_sessions_state ON idserver_sessions (state);
