-- Replies, threads and attachments: a message's reply_to and thread (its root's seq), the
-- root's reply_count (kept in the appending and deleting statements), and attachments as
-- a JSON array in text (NULL when none).
ALTER TABLE messages
    ADD COLUMN reply_to    bigint,
    ADD COLUMN thread      bigint,
    ADD COLUMN reply_count integer NOT NULL DEFAULT 0,
    ADD COLUMN attachments text;
-- a thread's page: a range of (conversation, thread, seq) over replies only
CREATE INDEX messages_thread ON messages (conversation, thread, seq) WHERE thread IS NOT NULL;
