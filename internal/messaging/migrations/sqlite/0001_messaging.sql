-- Outbox: one row per MT message; its short messages are rows of
-- messaging_segment. A message is open while outcome is NULL; once the
-- outcome is known it waits for the Handler until handled_at is set.
CREATE TABLE messaging_outbox (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn              TEXT    NOT NULL,
    esm_class           INTEGER NOT NULL,
    protocol_id         INTEGER NOT NULL,
    data_coding         INTEGER NOT NULL,
    registered_delivery INTEGER NOT NULL,
    segments            INTEGER NOT NULL,
    created_at          BIGINT  NOT NULL,
    valid_until         BIGINT  NOT NULL,
    outcome             INTEGER,
    outcome_at          BIGINT,
    handled_at          BIGINT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_at             BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX messaging_outbox_open ON messaging_outbox (valid_until) WHERE outcome IS NULL;
CREATE INDEX messaging_outbox_unhandled ON messaging_outbox (next_at) WHERE outcome IS NOT NULL AND handled_at IS NULL;
CREATE INDEX messaging_outbox_handled ON messaging_outbox (handled_at) WHERE handled_at IS NOT NULL;

-- One row per short message (submit_sm). state: queued, inflight (claimed
-- by owner until lease_until), accepted (smsc_id known), delivered, failed.
CREATE TABLE messaging_segment (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   BIGINT  NOT NULL REFERENCES messaging_outbox (id),
    seq          INTEGER NOT NULL,
    ud           BLOB    NOT NULL,
    state        TEXT    NOT NULL,
    owner        TEXT,
    lease_until  BIGINT,
    next_at      BIGINT  NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    bind         TEXT,
    smsc         TEXT,
    smsc_id      TEXT,
    submitted_at BIGINT,
    -- submit_status: command_status of a refused submit_sm;
    -- receipt_state and net_err: message_state and network_error_code
    -- (type << 16 | code) of its final receipt.
    submit_status BIGINT,
    receipt_state INTEGER,
    net_err      INTEGER,
    done_at      BIGINT,
    UNIQUE (message_id, seq)
);
CREATE INDEX messaging_segment_ready ON messaging_segment (next_at) WHERE state IN ('queued', 'inflight');
CREATE INDEX messaging_segment_smsc_id ON messaging_segment (smsc_id) WHERE smsc_id IS NOT NULL;

-- Delivery receipts as received, before they are matched to a segment.
CREATE TABLE messaging_receipt_in (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    smsc        TEXT    NOT NULL,
    smsc_id     TEXT    NOT NULL,
    state       INTEGER NOT NULL,
    net_err     INTEGER,
    received_at BIGINT  NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     BIGINT  NOT NULL
);
CREATE INDEX messaging_receipt_in_next ON messaging_receipt_in (next_at);

-- MO segments of concatenated messages that are not complete yet. ref is
-- the concatenation reference, plus 65536 for a 16-bit reference.
CREATE TABLE messaging_mo_partial (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    sender   TEXT    NOT NULL,
    ref      INTEGER NOT NULL,
    total    INTEGER NOT NULL,
    first_at BIGINT  NOT NULL,
    UNIQUE (sender, ref, total)
);
CREATE INDEX messaging_mo_partial_first ON messaging_mo_partial (first_at);

CREATE TABLE messaging_mo_segment (
    partial_id  BIGINT  NOT NULL REFERENCES messaging_mo_partial (id),
    seq         INTEGER NOT NULL,
    recipient   TEXT    NOT NULL,
    data_coding INTEGER NOT NULL,
    ud          BLOB    NOT NULL,
    received_at BIGINT  NOT NULL,
    PRIMARY KEY (partial_id, seq)
);

-- Complete MOs waiting for the Handler; the row is deleted in the
-- transaction that hands it over.
CREATE TABLE messaging_mo (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sender      TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    secured     INTEGER NOT NULL,
    packet      BLOB,
    text        TEXT,
    segments    INTEGER NOT NULL,
    received_at BIGINT  NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     BIGINT  NOT NULL
);
CREATE INDEX messaging_mo_next ON messaging_mo (next_at);
