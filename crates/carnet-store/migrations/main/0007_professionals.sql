-- Version 7: the directory of professionals (RPPS) and establishments (FINESS) (issue 4).
-- Public directory data (the national "annuaire santé"), not health data: stored in clear.
CREATE TABLE organisations (
    finess TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE professionals (
    rpps TEXT PRIMARY KEY,
    family_name TEXT NOT NULL,
    given_name TEXT NOT NULL,
    profession TEXT NOT NULL,
    specialty TEXT,
    role TEXT NOT NULL,
    finess TEXT REFERENCES organisations (finess),
    updated_at BIGINT NOT NULL
);
CREATE INDEX professionals_by_organisation ON professionals (finess);
