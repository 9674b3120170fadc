-- Version 4: OpenID Connect logins (FranceConnect for holders, Pro Santé Connect for
-- professionals): pending authorisation requests, and links from a provider's subject to a
-- holder. An identity index (HMAC of birth name, first given name, birth date, sex) lets a
-- first FranceConnect login find the holder's space without any identity in clear.

ALTER TABLE holders ADD COLUMN identity_index TEXT;
CREATE INDEX holders_by_identity ON holders (identity_index);

CREATE TABLE oidc_requests (
    state_hash TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE oidc_links (
    provider TEXT NOT NULL,
    subject_index TEXT NOT NULL,
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject_index)
);
