-- engines: sqlite
-- Version 20: the traces table back in rowid order (SQLite only; a no-op on PostgreSQL).
--
-- Version 19 clustered it on (holder_id, seq) with the documents and attachments. Measured on the
-- FHIR bench, where every read appends a trace: reads fell from 8,623 to ~6,200 req/s. Traces are
-- written far more often than they are listed; a clustered leaf holds a few sealed traces, so
-- appends to many holders split leaves and dirty more pages per commit than the primary-key
-- index of a rowid table (many small entries per page) and its append-only table pages. Documents
-- and attachments, read far more than written, stay clustered.

CREATE TABLE traces_rowid (
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
INSERT INTO traces_rowid (holder_id, seq, at, allowed, emergency, entry_sealed, prev_hash, hash)
    SELECT holder_id, seq, at, allowed, emergency, entry_sealed, prev_hash, hash FROM traces;
DROP TABLE traces;
ALTER TABLE traces_rowid RENAME TO traces;
