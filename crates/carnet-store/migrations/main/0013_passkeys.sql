-- Version 13: passkeys (WebAuthn) for holders (SPEC AU-1, our choice beyond the service). A
-- passkey's public key is not a secret; the private key never leaves the person's device.
-- Challenges are single use and short lived; only their SHA-256 is stored.

CREATE TABLE passkeys (
    credential_id TEXT PRIMARY KEY,
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    -- Uncompressed P-256 point (0x04 | x | y), the ES256 public key.
    public_key {{BYTES}} NOT NULL,
    sign_count BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_by_holder ON passkeys (holder_id);

CREATE TABLE webauthn_challenges (
    challenge_hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    holder_id {{UUID}},
    expires_at BIGINT NOT NULL
);
