-- Notifications (src/server/notify, docs/notifications.md): the stored
-- (persistent) notifications of a user. Live-only ones are never written.
--
-- code < 0 is reserved for the system (-1 another session took over, -2
-- friend request received, -3 friend request accepted). sender_id is NULL
-- for the system and is not a foreign key: a sender's account may go while
-- its notifications stay with their recipient.
--
-- position orders a user's list: microseconds since the epoch at insert,
-- so the cacheable cursor (position, id) names the newest seen row and a
-- later list returns only rows after it.
CREATE TABLE notification (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    subject     TEXT NOT NULL CONSTRAINT notification_subject_len
                CHECK (octet_length(subject) BETWEEN 1 AND 255),
    content     JSONB NOT NULL DEFAULT '{}',
    code        INT NOT NULL,
    sender_id   UUID NULL,
    position    BIGINT NOT NULL,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A user's notifications in create order (the list and its cursor).
CREATE INDEX notification_user_list_idx ON notification (user_id, position, id);
