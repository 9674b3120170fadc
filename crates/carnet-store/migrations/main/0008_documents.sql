-- Version 8: professionals' sessions (AU-2), emergency accesses (AC-5), documents of the
-- shared medical record (DM-1..8).

-- Professionals' sessions: only the SHA-256 of the bearer secret is stored.
CREATE TABLE pro_sessions (
    token_hash TEXT PRIMARY KEY,
    rpps TEXT NOT NULL REFERENCES professionals (rpps),
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX pro_sessions_by_rpps ON pro_sessions (rpps);

-- AC-5: a declared emergency opens the record to one professional for a bounded time. The
-- stated reason is sealed with the holder's key (it may say something about their health).
CREATE TABLE emergency_accesses (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    rpps TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    until_at BIGINT NOT NULL,
    reason_sealed {{BYTES}} NOT NULL,
    PRIMARY KEY (holder_id, rpps, started_at)
);

-- Documents: everything about one is sealed in meta_sealed (title, class, author, flags...);
-- in clear only what paging, versions and the DM-6 job need. Content lives in `attachments`.
CREATE TABLE documents (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    id {{UUID}} NOT NULL,
    set_id {{UUID}} NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- DM-6: before this instant the holder does not see it; the waiting notice is due at
    -- notice_due_at (NULL once sent or not needed).
    visible_from BIGINT NOT NULL,
    notice_due_at BIGINT,
    attachment_id {{UUID}} NOT NULL,
    meta_sealed {{BYTES}} NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (holder_id, id)
);
CREATE INDEX documents_by_set ON documents (holder_id, set_id);
CREATE INDEX documents_notice_due ON documents (notice_due_at);


-- S-7: notices for professionals (the médecin traitant is told of emergency accesses to
-- their patient's record). No health content: a kind and the space concerned.
CREATE TABLE pro_notices (
    rpps TEXT NOT NULL,
    id {{UUID}} NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    holder_id {{UUID}} NOT NULL,
    PRIMARY KEY (rpps, id)
);
