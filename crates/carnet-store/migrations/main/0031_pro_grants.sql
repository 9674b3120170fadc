-- Version 31: the patients who authorised a professional (issue 33, AC-3).
--
-- Who the directory opens the record to, indexed by RPPS so that a professional finds the
-- patients who authorised them without typing an INS: the médecin traitant and each
-- professional grantee not blocked, with the grant's end. Written in the transaction that
-- writes the (sealed) directory, which alone decides; no health content, erased with the
-- holder (LC-7).
CREATE TABLE pro_grants (
    rpps TEXT NOT NULL,
    holder_id {{UUID}} NOT NULL,
    since BIGINT NOT NULL,
    until_at BIGINT,
    PRIMARY KEY (rpps, holder_id)
);
CREATE INDEX pro_grants_by_holder ON pro_grants (holder_id);
