-- Carnet main database, version 1.
-- Portable SQL: {{UUID}} and {{BYTES}} are replaced per dialect (SQLite: BLOB, BLOB;
-- PostgreSQL: UUID, BYTEA). Times are BIGINT microseconds since the Unix epoch (UTC).
-- Health data is never stored in clear: *_sealed columns hold AEAD ciphertexts under the
-- holder's data key (see carnet-store/src/crypto.rs). Keys of holder tables lead with
-- holder_id so distributed engines (Citus, CockroachDB) can shard on the holder.

CREATE TABLE holders (
    id {{UUID}} PRIMARY KEY,
    lifecycle TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    admin_sealed {{BYTES}} NOT NULL
);

CREATE TABLE attachments (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    id {{UUID}} NOT NULL,
    created_at BIGINT NOT NULL,
    blob_hash TEXT NOT NULL,
    sealed_size BIGINT NOT NULL,
    meta_sealed {{BYTES}} NOT NULL,
    PRIMARY KEY (holder_id, id)
);

CREATE INDEX attachments_by_blob ON attachments (blob_hash);
