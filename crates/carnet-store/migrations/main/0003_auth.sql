-- Version 3: holders' authentication (AU-1, AU-3): credentials, one-time login codes,
-- sessions, known devices, and rate-limit counters shared by every server.

CREATE TABLE credentials (
    holder_id {{UUID}} PRIMARY KEY REFERENCES holders (id),
    -- HMAC of the lower-cased login under the "login-index" service key: no login in clear.
    login_index TEXT NOT NULL UNIQUE,
    -- Argon2id PHC string (salted; the password is never stored).
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A login's second factor: a 6-digit code sent by e-mail or SMS, single use, short-lived.
CREATE TABLE login_challenges (
    id {{UUID}} PRIMARY KEY,
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    code_hmac TEXT NOT NULL,
    device_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    used_at BIGINT
);
CREATE INDEX login_challenges_by_holder ON login_challenges (holder_id);

-- Sessions: only the SHA-256 of the bearer secret is stored.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    acting_for {{UUID}} NOT NULL,
    device_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_by_holder ON sessions (holder_id);

CREATE TABLE known_devices (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    device_hash TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (holder_id, device_hash)
);

-- Fixed-window counters (per account, per address): in the database so that they hold
-- across every server behind the load balancer.
CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL
);

-- LC-4: the Carte Vitale serial number given by the roster, as an HMAC.
ALTER TABLE holders ADD COLUMN card_serial_hmac TEXT;
