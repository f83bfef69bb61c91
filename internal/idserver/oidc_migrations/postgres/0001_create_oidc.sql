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
	sealed     BYTEA   NOT NULL,
	created_at BIGINT NOT NULL
);
