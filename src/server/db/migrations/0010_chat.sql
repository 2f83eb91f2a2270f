-- Chat (src/server/chat, docs/chat.md): the stored messages of chat
-- channels, and each channel's message counter.
--
-- A channel id is text ("2...<room>", "3.<group id>..", "4.<user id>.<user
-- id>."); a channel has a chat_channel row once a message was stored in it.
-- Storing a message takes the next sequence from that row in the same
-- transaction (UPDATE ... RETURNING locks the row until commit), so within a
-- channel sequences are gapless at commit time and a reader paging forward
-- after sequence N never misses a message that commits later with a
-- smaller number. Removed messages leave a gap.
--
-- sender_id is NULL for the server and is not a foreign key: a sender's
-- account may go while the conversation stays.
CREATE TABLE chat_channel (
    id       TEXT PRIMARY KEY,
    sequence BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE message (
    id          UUID PRIMARY KEY,
    channel_id  TEXT NOT NULL REFERENCES chat_channel (id) ON DELETE CASCADE,
    sequence    BIGINT NOT NULL,
    code        INT NOT NULL DEFAULT 0,
    sender_id   UUID NULL,
    username    TEXT NOT NULL DEFAULT '',
    content     JSONB NOT NULL DEFAULT '{}',
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT message_channel_sequence UNIQUE (channel_id, sequence)
);
