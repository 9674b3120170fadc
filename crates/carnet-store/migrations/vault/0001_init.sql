-- Carnet key vault, version 1. Lives in its own database (by default DATA_DIR/keys.db), apart
-- from the main database and the blob store, so that a backup of those two never holds the
-- keys that open them: destroying a holder's row here erases the holder everywhere (LC-7).

-- One row per master key that has ever wrapped data keys here: a canary sealed with the key
-- lets the server tell "wrong master key" from "corrupt data" at start.
CREATE TABLE master_keys (
    kid TEXT PRIMARY KEY,
    canary {{BYTES}} NOT NULL,
    created_at BIGINT NOT NULL
);

-- One data key per holder, wrapped (AES-256-GCM) by the master key `kid`.
CREATE TABLE holder_keys (
    holder_id {{UUID}} PRIMARY KEY,
    kid TEXT NOT NULL,
    wrapped {{BYTES}} NOT NULL,
    created_at BIGINT NOT NULL
);
