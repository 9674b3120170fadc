-- Version 26: finding a professional by name, profession and town (issue 32, AC-3).
--
-- The holder looks a professional up as people think of them, not by an 11-digit RPPS: the
-- directory keeps the practice's town and two search keys (lower case, accents folded, by
-- `directory::search_key`), the name's searched by prefix through its index, ordered byte by
-- byte on both engines (PostgreSQL: COLLATE "C"). Public data.
ALTER TABLE professionals ADD COLUMN town TEXT;
ALTER TABLE professionals ADD COLUMN name_key TEXT {{BYTEWISE}} NOT NULL DEFAULT '';
ALTER TABLE professionals ADD COLUMN town_key TEXT NOT NULL DEFAULT '';
-- Rows imported before: their family name in lower case (ASCII; a re-import folds accents).
UPDATE professionals SET name_key = LOWER(family_name);
CREATE INDEX professionals_by_name ON professionals (name_key);
