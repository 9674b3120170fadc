-- Version 25: the patients whose INS a professional presented (issue 33, ID-1).
--
-- A professional who looked a patient up by INS (read on the Vitale card or returned by the
-- INSi teleservice) sees whose record it is for a day (`identity::PRESENTED_INS_SECONDS`),
-- and finds them again among their recent patients. No health content: who, whom, when;
-- erased with the holder (LC-7).
CREATE TABLE pro_patients (
    rpps TEXT NOT NULL,
    holder_id {{UUID}} NOT NULL,
    presented_at BIGINT NOT NULL,
    PRIMARY KEY (rpps, holder_id)
);
CREATE INDEX pro_patients_by_holder ON pro_patients (holder_id);
