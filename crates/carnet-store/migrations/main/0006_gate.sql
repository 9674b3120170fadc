-- Version 6: the gate's storage (AC-3..8): each space's authorisation directory, sealed, and
-- the access traces, a hash chain per holder. Trace entries are sealed with the holder's key;
-- the chain hashes the sealed bytes, so it still verifies after crypto-shredding.

CREATE TABLE access_policies (
    holder_id {{UUID}} PRIMARY KEY REFERENCES holders (id),
    policy_sealed {{BYTES}} NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE traces (
    holder_id {{UUID}} NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    allowed BIGINT NOT NULL,
    emergency BIGINT NOT NULL,
    entry_sealed {{BYTES}} NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (holder_id, seq)
);
