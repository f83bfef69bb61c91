-- The MSSP's SIM registry. keys is AES-256-GCM under the configured
-- key-encryption key (nonce || ciphertext), with the ICCID as additional data.
CREATE TABLE mssp_sims (
	iccid       TEXT   NOT NULL PRIMARY KEY,
	imsi        TEXT   NOT NULL,
	msisdn      TEXT   NOT NULL UNIQUE,
	tar         TEXT   NOT NULL,
	kic         BIGINT NOT NULL,
	kid         BIGINT NOT NULL,
	keys        BLOB   NOT NULL,
	counter     BIGINT NOT NULL DEFAULT 0,
	imported_at BIGINT NOT NULL
);
