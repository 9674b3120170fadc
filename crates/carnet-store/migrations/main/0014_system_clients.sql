-- Version 14: establishment systems (SMART Backend Services, issue 6): registered clients with
-- their public key (JWK), the assertions they used (a `jti` is accepted once), and short-lived
-- access tokens (only their SHA-256 is stored).

CREATE TABLE system_clients (
    client_id TEXT PRIMARY KEY,
    finess TEXT NOT NULL,
    name TEXT NOT NULL,
    jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE system_assertions (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE TABLE system_tokens (
    token_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    finess TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
