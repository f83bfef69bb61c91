-- Customers of the demo bank, one per OpenID Connect subject (sub), with
-- the claims of their latest login.
CREATE TABLE bank_customers (
	id                  INTEGER PRIMARY KEY AUTOINCREMENT,
	subject             TEXT   NOT NULL UNIQUE,
	name                TEXT   NOT NULL,
	given_name          TEXT   NOT NULL,
	family_name         TEXT   NOT NULL,
	phone               TEXT   NOT NULL,
	national_id         TEXT   NOT NULL,
	national_id_country TEXT   NOT NULL,
	created_at          BIGINT NOT NULL,
	updated_at          BIGINT NOT NULL
);

-- One current account per customer, opened at the first login. balance is
-- in cents.
CREATE TABLE bank_accounts (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id BIGINT NOT NULL UNIQUE REFERENCES bank_customers (id),
	iban        TEXT   NOT NULL UNIQUE,
	currency    TEXT   NOT NULL,
	balance     BIGINT NOT NULL,
	created_at  BIGINT NOT NULL
);

-- Logged-in browsers, by the SHA-256 (hex) of the session cookie.
CREATE TABLE bank_sessions (
	id_hash     TEXT   PRIMARY KEY,
	customer_id BIGINT NOT NULL REFERENCES bank_customers (id),
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL
);
CREATE INDEX bank_sessions_expires ON bank_sessions (expires_at);

-- Logins under way at the OpenID provider, by the SHA-256 (hex) of the
-- login cookie: the state, nonce and PKCE verifier the callback checks.
CREATE TABLE bank_logins (
	id_hash    TEXT   PRIMARY KEY,
	state      TEXT   NOT NULL,
	nonce      TEXT   NOT NULL,
	verifier   TEXT   NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX bank_logins_expires ON bank_logins (expires_at);

-- Payments: state pending (the phone is asked), booked or failed (result
-- says why). document is the payment order as signed, hash its SHA-256.
CREATE TABLE bank_payments (
	id            TEXT   PRIMARY KEY,
	account_id    BIGINT NOT NULL REFERENCES bank_accounts (id),
	state         TEXT   NOT NULL,
	result        TEXT   NOT NULL DEFAULT '',
	payee_name    TEXT   NOT NULL,
	payee_iban    TEXT   NOT NULL,
	amount        BIGINT NOT NULL,
	currency      TEXT   NOT NULL,
	reference     TEXT   NOT NULL,
	document      BLOB   NOT NULL,
	hash          BLOB   NOT NULL,
	vc            TEXT   NOT NULL,
	mid_session   TEXT   NOT NULL,
	cert          BLOB   NOT NULL,
	signature     BLOB,
	sig_algorithm TEXT   NOT NULL DEFAULT '',
	signer_name   TEXT   NOT NULL DEFAULT '',
	created_at    BIGINT NOT NULL,
	completed_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX bank_payments_account ON bank_payments (account_id, created_at);
