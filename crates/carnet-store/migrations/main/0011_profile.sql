-- Version 11: the medical profile (SPEC PR-1..4). Everything about an entry is sealed with the
-- holder's key (section, text, codes, author); in clear only ids, times and a version for
-- compare-and-set. Measurements keep their instant in clear (time alone says nothing) and a
-- per-holder series tag (HMAC of the LOINC code under the holder's key: the same measure has
-- a different tag in every space, so the column reveals nothing across holders) for charts.

CREATE TABLE profile_entries (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    id {{UUID}} NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    entry_sealed {{BYTES}} NOT NULL,
    PRIMARY KEY (holder_id, id)
);

CREATE TABLE measurements (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    id {{UUID}} NOT NULL,
    series TEXT NOT NULL,
    at BIGINT NOT NULL,
    value_sealed {{BYTES}} NOT NULL,
    PRIMARY KEY (holder_id, id)
);
CREATE INDEX measurements_by_series ON measurements (holder_id, series, at);
