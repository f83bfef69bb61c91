-- Mobile users as the MSSP knows them: the keys their SIM generated at
-- registration and the certificates the CA issued for those keys.
-- state: 'keys' (keys generated, no certificates yet) or 'active'.
CREATE TABLE mssp_users (
	msisdn     TEXT   NOT NULL PRIMARY KEY,
	iccid      TEXT   NOT NULL,
	state      TEXT   NOT NULL,
	auth_alg   BIGINT NOT NULL,
	auth_spki  BLOB   NOT NULL,
	auth_cert  BLOB,
	sign_alg   BIGINT NOT NULL,
	sign_spki  BLOB   NOT NULL,
	sign_cert  BLOB,
	nospam     TEXT   NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL
);

-- Transactions: one row per AP request that reaches a SIM (or a test
-- number). state: sent, delivered, answered, validated, failed; the time
-- of each step is in its own column (0 until it happens). status is the
-- TS 102 204 code the AP sees now (504 while pending). request and result
-- are JSON; card is the VMAC response as the SIM sent it. The table has no
-- index that a state change touches: what the engine looks up while a
-- transaction runs is in mssp_pending.
CREATE TABLE mssp_tx (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	trans_id     TEXT    NOT NULL UNIQUE,
	ap_id        TEXT    NOT NULL,
	ap_trans_id  TEXT    NOT NULL,
	kind         TEXT    NOT NULL,
	msisdn       TEXT    NOT NULL,
	mode         TEXT    NOT NULL,
	ap_url       TEXT    NOT NULL DEFAULT '',
	state        TEXT    NOT NULL,
	status       BIGINT  NOT NULL,
	detail       BIGINT  NOT NULL DEFAULT 0,
	message      TEXT    NOT NULL DEFAULT '',
	counter      BIGINT  NOT NULL DEFAULT 0,
	tx_ref       BIGINT  NOT NULL DEFAULT 0,
	message_id   BIGINT  NOT NULL DEFAULT 0,
	request      BLOB    NOT NULL,
	card         BLOB,
	result       BLOB,
	created_at   BIGINT  NOT NULL,
	deadline     BIGINT  NOT NULL,
	updated_at   BIGINT  NOT NULL,
	delivered_at BIGINT  NOT NULL DEFAULT 0,
	answered_at  BIGINT  NOT NULL DEFAULT 0,
	finished_at  BIGINT  NOT NULL DEFAULT 0
);
-- An AP asks for a transaction by its own AP_TransID (registration
-- results); neither column ever changes.
CREATE INDEX mssp_tx_ap ON mssp_tx (ap_id, ap_trans_id);

-- The transactions that have not ended, with what finds them: the SIM's
-- answer (msisdn), the SMSC's receipt (message_id), the time-out sweep
-- (deadline) and the recovery of answers nobody completed (answered_at).
CREATE TABLE mssp_pending (
	tx_id       BIGINT NOT NULL PRIMARY KEY,
	msisdn      TEXT   NOT NULL,
	message_id  BIGINT NOT NULL DEFAULT 0,
	deadline    BIGINT NOT NULL,
	answered_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX mssp_pending_msisdn ON mssp_pending (msisdn);
CREATE INDEX mssp_pending_message ON mssp_pending (message_id);
CREATE INDEX mssp_pending_deadline ON mssp_pending (deadline);

-- One outstanding SIM request per user: a row while a transaction holds
-- the user's SIM.
CREATE TABLE mssp_active (
	msisdn TEXT   NOT NULL PRIMARY KEY,
	tx_id  BIGINT NOT NULL
);

-- MSS_Notification callbacks (asynchServerServer) still to deliver.
CREATE TABLE mssp_notify (
	tx_id    BIGINT NOT NULL PRIMARY KEY,
	attempts BIGINT NOT NULL DEFAULT 0,
	next_at  BIGINT NOT NULL,
	last_err TEXT   NOT NULL DEFAULT ''
);
