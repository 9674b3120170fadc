-- Version 9: signed Merkle checkpoints over the trace chains (SPEC AC-7, SECURITY S-5).
-- A checkpoint is a Merkle tree over the heads (holder, seq, hash) of the chains that moved
-- since the previous checkpoint, its root signed with Ed25519. Nothing here is health data:
-- holder ids, sequence numbers and chain hashes are already in clear in `traces`.

CREATE TABLE trace_checkpoints (
    number BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    -- Base64 SHA-256 of the previous checkpoint's signed text (32 zero bytes for the first).
    prev TEXT NOT NULL,
    size BIGINT NOT NULL,
    -- Base64 Merkle root (RFC 6962 hashing) over the leaves, sorted by holder id.
    root TEXT NOT NULL,
    -- Base64 Ed25519 signature of the checkpoint's text.
    signature TEXT NOT NULL
);

CREATE TABLE trace_checkpoint_leaves (
    checkpoint BIGINT NOT NULL REFERENCES trace_checkpoints (number),
    holder_id {{UUID}} NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (checkpoint, holder_id)
);

-- Chain heads not yet covered by a checkpoint: each trace append inserts its new head (never
-- updates, so appends and checkpoints do not wait on each other); the next checkpoint takes
-- the newest per holder and deletes what it covered. Its cost follows activity, not the
-- number of holders.
CREATE TABLE trace_heads_pending (
    holder_id {{UUID}} NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (holder_id, seq)
);

-- Chains written before this version: the first checkpoint covers them all.
INSERT INTO trace_heads_pending (holder_id, seq)
    SELECT holder_id, MAX(seq) FROM traces GROUP BY holder_id;
