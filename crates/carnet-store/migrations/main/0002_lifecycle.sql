-- Version 2: lifecycle (LC-1..7), roster identity index, representatives (MI), outbox.

-- When the current lifecycle state began, and when its automatic transition is due (the
-- end of the opposition window, the end of the archive period); NULL when none is.
ALTER TABLE holders ADD COLUMN state_since BIGINT NOT NULL DEFAULT 0;
ALTER TABLE holders ADD COLUMN due_at BIGINT;
-- HMAC-SHA256 of the INS under the vault's "ins-index" key: finds a holder by INS
-- (idempotent roster import, professionals' search) without storing the INS in clear.
ALTER TABLE holders ADD COLUMN ins_index TEXT;
-- For minors: when they turn 18 (MI-3); NULL for adults. Only this instant is in clear.
ALTER TABLE holders ADD COLUMN majority_at BIGINT;
-- Provisional activation code (LC-2, LC-4): HMAC under the "activation-code" key, expiry.
ALTER TABLE holders ADD COLUMN activation_code_hmac TEXT;
ALTER TABLE holders ADD COLUMN activation_code_expires_at BIGINT;

CREATE UNIQUE INDEX holders_by_ins ON holders (ins_index);
CREATE INDEX holders_due ON holders (due_at);
CREATE INDEX holders_majority ON holders (majority_at);

-- Legal representatives of a minor or a protected adult (MI-1, MI-4), carers (MI-5).
CREATE TABLE representatives (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    representative_id {{UUID}} NOT NULL REFERENCES holders (id),
    kind TEXT NOT NULL,
    since BIGINT NOT NULL,
    until_at BIGINT,
    PRIMARY KEY (holder_id, representative_id)
);
CREATE INDEX representatives_by_representative ON representatives (representative_id);

-- Transactional outbox: messages to send (e-mail, SMS, post), written in the same
-- transaction as the change that causes them, delivered at least once by a job.
CREATE TABLE outbox (
    id {{UUID}} PRIMARY KEY,
    holder_id {{UUID}} NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    payload_sealed {{BYTES}} NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    claimed_until BIGINT,
    sent_at BIGINT
);
CREATE INDEX outbox_pending ON outbox (sent_at, next_attempt_at);
CREATE INDEX outbox_by_holder ON outbox (holder_id);
