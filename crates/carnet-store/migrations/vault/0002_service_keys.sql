-- Version 2: service-wide secret keys (blind-index and code HMAC keys), wrapped by the
-- master key like data keys, so rotation covers them and they never sit in the main database.
CREATE TABLE service_keys (
    name TEXT PRIMARY KEY,
    kid TEXT NOT NULL,
    wrapped {{BYTES}} NOT NULL,
    created_at BIGINT NOT NULL
);
