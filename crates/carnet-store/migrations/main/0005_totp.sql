-- Version 5: optional TOTP second factor (AU-1, our choice): the secret is sealed with the
-- holder's data key (erasure destroys it); the last accepted step prevents replays.
ALTER TABLE credentials ADD COLUMN totp_sealed {{BYTES}};
ALTER TABLE credentials ADD COLUMN totp_enabled_at BIGINT;
ALTER TABLE credentials ADD COLUMN totp_last_step BIGINT;
