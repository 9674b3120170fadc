-- Version 18: the catalogue of referenced services and the authorisation server for apps
-- (SPEC CA-1..CA-4, issue 9).
--
-- Referencing is not health data: a publisher's application, the commission's reviews and the
-- convention are public-sector records kept in clear (JSON), every step appended to
-- `service_steps`, which the publisher reads. Accounts of the workflow (publishers, commission
-- members, decision-makers) sign in with a bearer token stored as its SHA-256.
--
-- OAuth 2.0: codes and tokens are stored as SHA-256 hashes, never in clear. A token names the
-- space it acts in (`holder_id`) and who consented (`subject_id`: the holder or their
-- representative); the categories the holder ticked live in the holder's sealed directory (the
-- app's grant), not here. `family` ties a code to every token issued from it, so a replayed
-- code or a reused refresh token revokes the whole family (RFC 9700 4.14).

CREATE TABLE referencing_accounts (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE services (
    client_id TEXT PRIMARY KEY,
    publisher_id TEXT NOT NULL REFERENCES referencing_accounts (id),
    state TEXT NOT NULL,
    record TEXT NOT NULL,
    listed_from BIGINT,
    listed_until BIGINT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX services_by_publisher ON services (publisher_id);
CREATE INDEX services_by_state ON services (state);

CREATE TABLE service_steps (
    client_id TEXT NOT NULL REFERENCES services (client_id),
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    role TEXT NOT NULL,
    step TEXT NOT NULL,
    PRIMARY KEY (client_id, seq)
);

CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    holder_id {{UUID}} NOT NULL,
    subject_id {{UUID}} NOT NULL,
    redirect_uri TEXT NOT NULL,
    challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    family TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE oauth_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    holder_id {{UUID}} NOT NULL,
    subject_id {{UUID}} NOT NULL,
    scope TEXT NOT NULL,
    family TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oauth_tokens_by_family ON oauth_tokens (family);
CREATE INDEX oauth_tokens_by_client ON oauth_tokens (client_id, holder_id);
