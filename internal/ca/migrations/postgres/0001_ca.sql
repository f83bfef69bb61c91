-- Every certificate the CA issued, including its own OCSP responder and
-- TSA certificates. serial is lower-case hex without leading zeros.
-- status: good, revoked or on_hold. revoked_at is the CRL revocationDate
-- (kept when a hold becomes a revocation); invalid_since the invalidity
-- date given to Revoke. Times are Unix microseconds.
CREATE TABLE ca_certificate (
    serial        TEXT    NOT NULL PRIMARY KEY,
    profile       TEXT    NOT NULL,
    subject_cn    TEXT    NOT NULL,
    country       TEXT    NOT NULL,
    national_id   TEXT    NOT NULL,
    iccid         TEXT    NOT NULL,
    der           BYTEA   NOT NULL,
    not_before    BIGINT  NOT NULL,
    not_after     BIGINT  NOT NULL,
    issued_at     BIGINT  NOT NULL,
    status        TEXT    NOT NULL,
    revoked_at    BIGINT,
    reason        INTEGER,
    invalid_since BIGINT
);
CREATE INDEX ca_certificate_person ON ca_certificate (country, national_id, issued_at);
CREATE INDEX ca_certificate_iccid ON ca_certificate (iccid) WHERE iccid <> '';
CREATE INDEX ca_certificate_not_good ON ca_certificate (revoked_at) WHERE status <> 'good';

-- The newest CRL, a single row. number is the last cRLNumber issued (0:
-- none yet); incrementing it serialises CRL issuance across processes.
CREATE TABLE ca_crl (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    number      BIGINT  NOT NULL,
    this_update BIGINT  NOT NULL,
    next_update BIGINT  NOT NULL,
    der         BYTEA
);
INSERT INTO ca_crl (id, number, this_update, next_update) VALUES (1, 0, 0, 0);
