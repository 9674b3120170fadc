-- Version 24: passkeys verified by webauthn-rs (AU-1).
--
-- A passkey is kept as the library's own credential (its JSON: COSE key, counter, flags), and a
-- ceremony's state between its two steps (registration, login) beside its challenge. Rows of
-- passkeys registered before keep their uncompressed P-256 point in `public_key`: they are
-- read as the same credential (`carnet-server/src/webauthn.rs`).

ALTER TABLE passkeys ADD COLUMN credential TEXT;
ALTER TABLE webauthn_challenges ADD COLUMN state TEXT;
