-- depends: 0005_messaging
-- Issue 15: NEW_MESSAGE notifications leave the send transaction. The send statement only
-- counts the message on the recipient's participant row (same transaction, so as durable as
-- the message); a coalescing writer turns what accumulated per conversation into one batched
-- notification shortly after (server/domain/notifications.py, flush_message_notifications).
-- A process that dies before its writer ran leaves the counts here for any node's writer.
ALTER TABLE conversation_participants
    ADD COLUMN notify_count integer NOT NULL DEFAULT 0 CHECK (notify_count >= 0),
    -- The latest message counted (the notification's preview).
    ADD COLUMN notify_message_id uuid;
-- The writer's scan and the "settle before reading" probe of one user: only pending rows.
CREATE INDEX conversation_participants_notify_idx
    ON conversation_participants (user_id) WHERE notify_count > 0;
-- Statistics for the new column now: a planner that guesses 7 % pending scans the table.
ANALYZE conversation_participants;
