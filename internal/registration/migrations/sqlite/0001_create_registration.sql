-- People identified at a registration desk.
CREATE TABLE registration_person (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	country       TEXT   NOT NULL,
	national_id   TEXT   NOT NULL,
	given_names   TEXT   NOT NULL,
	surname       TEXT   NOT NULL,
	date_of_birth TEXT   NOT NULL,
	created_at    BIGINT NOT NULL,
	UNIQUE (country, national_id)
);

-- Mobile IDs: a person's registration on an MSISDN and SIM, from the desk
-- to revocation. state: registering, active, suspended, revoked, failed.
-- step is where a registering one is: reset (renewal only), keys,
-- certificates, bind, supersede (renewal only), notify.
CREATE TABLE registration_mobileid (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	person_id        BIGINT NOT NULL REFERENCES registration_person (id),
	msisdn           TEXT   NOT NULL,
	iccid            TEXT   NOT NULL DEFAULT '',
	state            TEXT   NOT NULL,
	step             TEXT   NOT NULL,
	status           TEXT   NOT NULL DEFAULT '',
	doc_type         TEXT   NOT NULL,
	doc_number       TEXT   NOT NULL,
	doc_issuer       TEXT   NOT NULL,
	doc_expires      TEXT   NOT NULL,
	officer          TEXT   NOT NULL,
	desk             TEXT   NOT NULL,
	attempt          BIGINT NOT NULL DEFAULT 0,
	challenge        BLOB,
	keys_trans_id    TEXT   NOT NULL DEFAULT '',
	keys_mssp_id     TEXT   NOT NULL DEFAULT '',
	keys_result      BLOB,
	auth_serial      TEXT   NOT NULL DEFAULT '',
	sign_serial      TEXT   NOT NULL DEFAULT '',
	-- During a renewal, the certificates to revoke once the new ones work.
	old_auth_serial  TEXT   NOT NULL DEFAULT '',
	old_sign_serial  TEXT   NOT NULL DEFAULT '',
	created_at       BIGINT NOT NULL,
	updated_at       BIGINT NOT NULL
);
-- One Mobile ID in use per MSISDN (a number belongs to one person at a
-- time), and so at most one per national ID and MSISDN.
CREATE UNIQUE INDEX registration_mobileid_msisdn ON registration_mobileid (msisdn)
	WHERE state IN ('registering', 'active', 'suspended');
CREATE INDEX registration_mobileid_person ON registration_mobileid (person_id);

-- The steps of each registration and lifecycle action, with their times.
CREATE TABLE registration_event (
	mobileid_id BIGINT NOT NULL,
	at          BIGINT NOT NULL,
	step        TEXT   NOT NULL,
	message     TEXT   NOT NULL
);
CREATE INDEX registration_event_mobileid ON registration_event (mobileid_id);

-- Who did what: every officer action, append-only.
CREATE TABLE registration_audit (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	at          BIGINT NOT NULL,
	officer     TEXT   NOT NULL,
	desk        TEXT   NOT NULL,
	action      TEXT   NOT NULL,
	mobileid_id BIGINT NOT NULL DEFAULT 0,
	detail      TEXT   NOT NULL DEFAULT ''
);

-- Registration officers (the desk's users).
CREATE TABLE registration_officer (
	username      TEXT   NOT NULL PRIMARY KEY,
	name          TEXT   NOT NULL,
	desk          TEXT   NOT NULL,
	password_hash BLOB   NOT NULL,
	created_at    BIGINT NOT NULL
);
