-- engines: sqlite
-- Version 19: a holder's traces, documents and attachments stored together (SQLite only).
--
-- In a rowid table SQLite keeps rows in insertion order and the primary key is a separate
-- index, so reading one holder's rows meant one index descent and then one table page per row:
-- a listing of 100 documents or a page of 20 traces touched ~100 / ~20 pages scattered among
-- every other holder's rows, and the cost of a request grew with the holder's record (measured
-- under the mixed load: 12 % of the server's CPU copying pages for row lookups).
-- `WITHOUT ROWID` clusters each table on its primary key (holder_id, ...): a holder's rows
-- share a few leaf pages, found by one descent. PostgreSQL's heap tables are left as they are
-- (this migration is a no-op there).

CREATE TABLE traces_clustered (
    holder_id {{UUID}} NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    allowed BIGINT NOT NULL,
    emergency BIGINT NOT NULL,
    entry_sealed {{BYTES}} NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (holder_id, seq)
) WITHOUT ROWID;
INSERT INTO traces_clustered (holder_id, seq, at, allowed, emergency, entry_sealed, prev_hash, hash)
    SELECT holder_id, seq, at, allowed, emergency, entry_sealed, prev_hash, hash FROM traces;
DROP TABLE traces;
ALTER TABLE traces_clustered RENAME TO traces;

CREATE TABLE documents_clustered (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    id {{UUID}} NOT NULL,
    set_id {{UUID}} NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    visible_from BIGINT NOT NULL,
    notice_due_at BIGINT,
    attachment_id {{UUID}} NOT NULL,
    meta_sealed {{BYTES}} NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (holder_id, id)
) WITHOUT ROWID;
INSERT INTO documents_clustered (holder_id, id, set_id, status, created_at, visible_from,
        notice_due_at, attachment_id, meta_sealed, version)
    SELECT holder_id, id, set_id, status, created_at, visible_from, notice_due_at,
        attachment_id, meta_sealed, version FROM documents;
DROP TABLE documents;
ALTER TABLE documents_clustered RENAME TO documents;
CREATE INDEX documents_by_set ON documents (holder_id, set_id);
CREATE INDEX documents_notice_due ON documents (notice_due_at);

CREATE TABLE attachments_clustered (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    id {{UUID}} NOT NULL,
    created_at BIGINT NOT NULL,
    blob_hash TEXT NOT NULL,
    sealed_size BIGINT NOT NULL,
    meta_sealed {{BYTES}} NOT NULL,
    PRIMARY KEY (holder_id, id)
) WITHOUT ROWID;
INSERT INTO attachments_clustered (holder_id, id, created_at, blob_hash, sealed_size, meta_sealed)
    SELECT holder_id, id, created_at, blob_hash, sealed_size, meta_sealed FROM attachments;
DROP TABLE attachments;
ALTER TABLE attachments_clustered RENAME TO attachments;
CREATE INDEX attachments_by_blob ON attachments (blob_hash);
