-- Issue 32: the language of the messages a holder receives (mails in one language, not both).
ALTER TABLE notification_preferences ADD COLUMN language TEXT NOT NULL DEFAULT 'fr';
