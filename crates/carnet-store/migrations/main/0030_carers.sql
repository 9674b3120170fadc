-- Version 30: carers (MI-5).
--
-- A holder's invitation to a carer: the one-time code's hash, what it offers (sealed with the
-- holder's key), usable for a week. Consumed by the carer's acceptance.
CREATE TABLE carer_invitations (
    code_hash TEXT PRIMARY KEY,
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    invitation_sealed {{BYTES}} NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX carer_invitations_by_holder ON carer_invitations (holder_id);

-- The carers of a space: the directory's carer grants (sealed in access_policies, which decide),
-- indexed so that a carer finds the spaces they help. Written in the same transaction as the
-- directory.
CREATE TABLE carers (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    carer_id {{UUID}} NOT NULL REFERENCES holders (id),
    since BIGINT NOT NULL,
    until_at BIGINT,
    PRIMARY KEY (holder_id, carer_id)
);
CREATE INDEX carers_by_carer ON carers (carer_id);

-- A session acting in a space its person helps as a carer (not as a representative).
ALTER TABLE sessions ADD COLUMN as_carer BIGINT NOT NULL DEFAULT 0;
