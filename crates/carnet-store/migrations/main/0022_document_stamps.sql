-- Version 22: a stamp per holder that changes with every change to their documents.
--
-- A listing opens every document row of a record (sealed metadata: one AES-GCM open and one
-- JSON parse per row) to decide what the caller may see before it counts and pages (S-1,
-- S-2), so its cost grew with the record. A server now keeps the rows it opened in memory
-- (`documents::DocCache`), valid while this stamp is the one it read before reading them.
-- Every transaction that inserts, updates or deletes a holder's document rows bumps it
-- (erasure too), so a row changed by another server is never served from a cache.
-- No row means no change since this version: stamp 0. It holds no health data.

CREATE TABLE document_stamps (
    holder_id {{UUID}} PRIMARY KEY,
    stamp BIGINT NOT NULL
);
