-- Version 16: the health agenda (SPEC AG-1..3). An event (title, times, recurrence, reminders,
-- author) is sealed with the holder's key. In clear: ids, a version for compare-and-set, and
-- when the event's next reminder falls due, which the reminder job finds by index and moves
-- on by compare-and-set (a reminder is queued once, in the same transaction that moves it).
-- Calendar feeds (AG-3): only the SHA-256 of their secret token is stored.

CREATE TABLE agenda_events (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    id {{UUID}} NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    next_reminder_at BIGINT,
    event_sealed {{BYTES}} NOT NULL,
    PRIMARY KEY (holder_id, id)
);
CREATE INDEX agenda_reminders_due ON agenda_events (next_reminder_at) WHERE next_reminder_at IS NOT NULL;

CREATE TABLE agenda_feeds (
    token_hash TEXT PRIMARY KEY,
    id {{UUID}} NOT NULL,
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    created_by {{UUID}} NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX agenda_feeds_by_holder ON agenda_feeds (holder_id);
