-- The ETSI pass-through: an RP with the etsi service is an AP of the ID
-- Server, known by its AP_ID (empty for the others, unique otherwise).
ALTER TABLE idserver_rps ADD COLUMN ap_id TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX idserver_rps_ap_id ON idserver_rps (ap_id) WHERE ap_id <> '';

-- The AP_TransIDs each RP has used, unique per RP as the MSSP requires of
-- its APs; rp_key is the RP's hash. Rows older than 30 days are pruned.
CREATE TABLE idserver_etsi_transids (
	rp_key      TEXT   NOT NULL,
	ap_trans_id TEXT   NOT NULL,
	created_at  BIGINT NOT NULL,
	PRIMARY KEY (rp_key, ap_trans_id)
);
CREATE INDEX idserver_etsi_transids_created_at ON idserver_etsi_transids (created_at);

-- The MSSP transactions started through the pass-through and the RP that
-- started each, which alone may ask for its status or send its receipt.
-- ap_trans_id is the RP's, id_ap_trans_id the ID Server's own toward the
-- MSSP. Rows older than 30 days are pruned.
CREATE TABLE idserver_etsi_tx (
	mssp_trans_id  TEXT   NOT NULL PRIMARY KEY,
	rp_key         TEXT   NOT NULL,
	ap_trans_id    TEXT   NOT NULL,
	id_ap_trans_id TEXT   NOT NULL,
	msisdn         TEXT   NOT NULL,
	created_at     BIGINT NOT NULL
);
CREATE INDEX idserver_etsi_tx_created_at ON idserver_etsi_tx (created_at);
