-- Version 28: what a professional's notice is about (S-7, AC-5, issue 33): the médecin
-- traitant told of an emergency access learns who opened the record and why. Sealed with the
-- holder's key (erased with them, LC-7); opened only for a professional who may see whose
-- record it is (`Gate::alerts`).
ALTER TABLE pro_notices ADD COLUMN detail_sealed {{BYTES}};
