-- Version 10: how each holder wants to be told of accesses and new documents (SPEC AC-6,
-- DM-7): by e-mail and/or SMS. The space itself always shows them (live, server-sent events).
-- Absent row: e-mail only. Two flags, no health data.

CREATE TABLE notification_preferences (
    holder_id {{UUID}} PRIMARY KEY,
    email BIGINT NOT NULL,
    sms BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The gate asks, on every access, whether a notice already waits to be sent (to collapse it):
-- only unsent rows matter, whatever the size of the outbox's history.
CREATE INDEX outbox_waiting ON outbox (holder_id, kind, channel) WHERE sent_at IS NULL;
