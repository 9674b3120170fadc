-- Version 21: the chain heads a checkpoint must cover, in a table without an index (SPEC AC-7).
--
-- `trace_heads_pending` (version 9) had a primary key on (holder_id, seq): every trace batch
-- inserted one entry per chain into that index, at a random place (holders are spread over the
-- whole key space), so each commit dirtied one more random index page per trace and wrote it to
-- the WAL (measured on the FHIR read bench: the appends without it served 10 % more reads).
-- `trace_heads_moved` has no key: rows are appended at the table's end. A checkpoint reads
-- the newest seq per holder (one scan of what accumulated since the previous checkpoint) and
-- deletes the rows of the holders it covered.
--
-- The old table's rows are copied, not moved: on SQLite the old table may live in the trace
-- file and this one is created in the main file, and SQLite does not commit two WAL files at
-- once, so this migration writes the main file only. The old table is dropped after the
-- migration has committed (`Db::drop_retired_tables`).

CREATE TABLE trace_heads_moved (
    holder_id {{UUID}} NOT NULL,
    seq BIGINT NOT NULL
);
INSERT INTO trace_heads_moved (holder_id, seq)
    SELECT holder_id, seq FROM trace_heads_pending;
