-- The application providers the MSSP serves. password_hash is bcrypt;
-- version grows on every change, so that a node's cache of verified
-- passwords notices changes made by other nodes. client_certs (hex SHA-256
-- fingerprints), profiles and url_prefixes are JSON arrays of strings.
CREATE TABLE mssp_aps (
	id            TEXT             NOT NULL PRIMARY KEY,
	name          TEXT             NOT NULL,
	password_hash TEXT             NOT NULL,
	version       BIGINT           NOT NULL,
	client_certs  TEXT             NOT NULL,
	profiles      TEXT             NOT NULL,
	rate_limit    DOUBLE PRECISION NOT NULL,
	burst         BIGINT           NOT NULL,
	url_prefixes  TEXT             NOT NULL,
	disabled      BIGINT           NOT NULL,
	created_at    BIGINT           NOT NULL
);

-- The AP_TransIDs each AP has used, kept for the retention period so that
-- none is accepted twice.
CREATE TABLE mssp_ap_transids (
	ap_id         TEXT             NOT NULL,
	trans_id      TEXT             NOT NULL,
	instant       BIGINT           NOT NULL,
	reserved_at   BIGINT           NOT NULL,
	PRIMARY KEY (ap_id, trans_id)
);
CREATE INDEX mssp_ap_transids_reserved_at ON mssp_ap_transids (reserved_at);
