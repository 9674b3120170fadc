-- Version 17: reimbursements of the compulsory health insurance (SPEC RB-1, RB-2), filed by the
-- insurer's feed. Everything about a line is sealed with the holder's key (act, professional,
-- amounts, the insurer's line id); in clear only the holder, the row id, the date of care
-- (days are coarse, and the period filters and the 24-month window need it) and `line_tag`, an
-- HMAC of the insurer's line id under the holder's key, unique per holder: importing the same
-- feed twice adds nothing. The tag differs from space to space, so the column links nothing
-- across holders. Erasure (LC-7) deletes the rows with the rest of the holder's.
-- (Versions 15 and 16 are other branches'; the runner applies versions independently.)

CREATE TABLE reimbursements (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    id {{UUID}} NOT NULL,
    line_tag TEXT NOT NULL,
    date_of_care BIGINT NOT NULL,
    imported_at BIGINT NOT NULL,
    line_sealed {{BYTES}} NOT NULL,
    PRIMARY KEY (holder_id, id)
);
CREATE UNIQUE INDEX reimbursements_by_tag ON reimbursements (line_tag, holder_id);
CREATE INDEX reimbursements_by_date ON reimbursements (holder_id, date_of_care);
