-- Refresh tokens still valid: one row per session id. Refreshing consumes the
-- row (rotation: an old refresh token is refused); logout deletes it.
CREATE TABLE user_session (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  TIMESTAMPTZ NOT NULL,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX user_session_user_id_idx ON user_session (user_id);
