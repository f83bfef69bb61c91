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
-- number). state: sent, delivered, answered, validated, failed. status is
-- the TS 102 204 code the AP sees now (504 while pending). request and
-- result are JSON; card is the VMAC response as the SIM sent it.
CREATE TABLE mssp_tx (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	trans_id    TEXT    NOT NULL UNIQUE,
	ap_id       TEXT    NOT NULL,
	ap_trans_id TEXT    NOT NULL,
	kind        TEXT    NOT NULL,
	msisdn      TEXT    NOT NULL,
	mode        TEXT    NOT NULL,
	ap_url      TEXT    NOT NULL DEFAULT '',
	state       TEXT    NOT NULL,
	status      BIGINT  NOT NULL,
	detail      BIGINT  NOT NULL DEFAULT 0,
	message     TEXT    NOT NULL DEFAULT '',
	counter     BIGINT  NOT NULL DEFAULT 0,
	tx_ref      BIGINT  NOT NULL DEFAULT 0,
	message_id  BIGINT  NOT NULL DEFAULT 0,
	request     BLOB    NOT NULL,
	card        BLOB,
	result      BLOB,
	created_at  BIGINT  NOT NULL,
	deadline    BIGINT  NOT NULL,
	updated_at  BIGINT  NOT NULL,
	finished_at BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX mssp_tx_pending ON mssp_tx (msisdn, state);
CREATE INDEX mssp_tx_message ON mssp_tx (message_id);
CREATE INDEX mssp_tx_deadline ON mssp_tx (state, deadline);

-- One outstanding SIM request per user: a row while a transaction holds
-- the user's SIM.
CREATE TABLE mssp_active (
	msisdn TEXT   NOT NULL PRIMARY KEY,
	tx_id  BIGINT NOT NULL
);

-- The steps of each transaction with their times, for audit and the
-- operations view.
CREATE TABLE mssp_tx_event (
	tx_id  BIGINT NOT NULL,
	at     BIGINT NOT NULL,
	state  TEXT   NOT NULL,
	status BIGINT NOT NULL
);
CREATE INDEX mssp_tx_event_tx ON mssp_tx_event (tx_id);

-- MSS_Notification callbacks (asynchServerServer) still to deliver.
CREATE TABLE mssp_notify (
	tx_id    BIGINT NOT NULL PRIMARY KEY,
	attempts BIGINT NOT NULL DEFAULT 0,
	next_at  BIGINT NOT NULL,
	last_err TEXT   NOT NULL DEFAULT ''
);
