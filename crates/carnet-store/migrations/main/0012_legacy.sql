-- Version 12: documents imported from a holder's former DMP (SPEC LC-8). One row per imported
-- document, so that running the same migration manifest again imports nothing twice, even for
-- a document its author deleted since. The XDS uniqueId is kept here only as an HMAC under the
-- vault's service key `legacy-index` (the document's sealed metadata holds it in full). No
-- foreign key to `documents`: the row outlives a deleted document on purpose; erasure (LC-7)
-- deletes it with the rest of the holder's rows.
-- (Version 11 is another branch's; the runner applies versions independently.)

CREATE TABLE legacy_documents (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    unique_id_index TEXT NOT NULL,
    document_id {{UUID}} NOT NULL,
    imported_at BIGINT NOT NULL,
    PRIMARY KEY (holder_id, unique_id_index)
);
