-- Version 15: secure messaging (SPEC MS-1..4). Subjects, texts, senders and attachment names
-- are sealed with the holder's key; attachments are ordinary sealed attachments (same checks
-- and encryption as documents). In clear: ids, times, whether the holder's side wrote a
-- message and when it was read (read receipts), whether the counterpart ended the
-- conversation, and the counterpart's directory key (`rpps:…` / `finess:…`), which the
-- counterpart's inbox needs, as `pro_notices` does.

CREATE TABLE conversations (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    id {{UUID}} NOT NULL,
    counterpart TEXT NOT NULL,
    ended BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    meta_sealed {{BYTES}} NOT NULL,
    PRIMARY KEY (holder_id, id)
);
CREATE INDEX conversations_by_counterpart ON conversations (counterpart, updated_at);

CREATE TABLE messages (
    holder_id {{UUID}} NOT NULL REFERENCES holders (id),
    conversation_id {{UUID}} NOT NULL,
    id {{UUID}} NOT NULL,
    sent_at BIGINT NOT NULL,
    from_holder_side BIGINT NOT NULL,
    read_at BIGINT,
    body_sealed {{BYTES}} NOT NULL,
    PRIMARY KEY (holder_id, id)
);
CREATE INDEX messages_by_conversation ON messages (holder_id, conversation_id, id);
