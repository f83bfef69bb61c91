-- The OpenID Connect clients: each is a relying party of idserver_rps
-- (rp_key), whose relyingPartyUUID is the client secret. redirect_uris is a
-- JSON array of strings.
CREATE TABLE idserver_oidc_clients (
	client_id     TEXT   NOT NULL PRIMARY KEY,
	rp_key        TEXT   NOT NULL,
	redirect_uris TEXT   NOT NULL,
	created_at    BIGINT NOT NULL
);

-- The ID token signing keys: PKCS #8 ECDSA P-256 keys sealed with AES-256-GCM
-- under the key encryption key of the configuration (nonce || ciphertext,
-- with the key ID as additional data). The newest signs; the one before it
-- stays in the JWKS so that tokens it signed still verify.
CREATE TABLE idserver_oidc_keys (
	id         TEXT   NOT NULL PRIMARY KEY,
	sealed     BLOB   NOT NULL,
	created_at BIGINT NOT NULL
);

-- Authorization requests from /authorize to the code exchange, so that any
-- node can serve each step. data is the request as JSON; code_hash is the
-- hex SHA-256 of the authorization code once it is issued, or ''.
CREATE TABLE idserver_oidc_requests (
	id         TEXT   NOT NULL PRIMARY KEY,
	code_hash  TEXT   NOT NULL,
	data       TEXT   NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX idserver_oidc_requests_code_hash ON idserver_oidc_requests (code_hash);
CREATE INDEX idserver_oidc_requests_expires_at ON idserver_oidc_requests (expires_at);

-- Access tokens, by ID (the opaque token is the ID encrypted). data is the
-- token's subject, scopes and claims as JSON.
CREATE TABLE idserver_oidc_tokens (
	id         TEXT   NOT NULL PRIMARY KEY,
	client_id  TEXT   NOT NULL,
	subject    TEXT   NOT NULL,
	data       TEXT   NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX idserver_oidc_tokens_expires_at ON idserver_oidc_tokens (expires_at);
