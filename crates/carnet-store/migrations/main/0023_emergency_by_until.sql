-- Version 23: a professional's emergency accesses to a space found in the order of their end.
--
-- With every decision the gate reads the asking professional's running emergency access (AC-5,
-- `GATE_FACTS`: the one ending last). Through the primary key (holder_id, rpps, started_at)
-- SQLite had to sort by until_at, opening and closing a temporary b-tree for each request even
-- when there was no row: about a tenth of that statement's time on a FHIR read. This index
-- gives the rows in that order.

CREATE INDEX emergency_by_until ON emergency_accesses (holder_id, rpps, until_at);
