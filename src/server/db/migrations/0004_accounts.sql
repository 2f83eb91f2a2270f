-- The account service (src/server/account): profile fields other players see,
-- free-form metadata, and bans. disable_time NULL = not banned; set = banned
-- since then (logins and refreshes are refused, see docs/accounts.md).
ALTER TABLE users
    ADD COLUMN avatar_url   VARCHAR(512),
    ADD COLUMN lang_tag     VARCHAR(18) NOT NULL DEFAULT 'en',
    ADD COLUMN location     VARCHAR(255),
    ADD COLUMN timezone     VARCHAR(255),
    ADD COLUMN metadata     JSONB NOT NULL DEFAULT '{}'
        CONSTRAINT users_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    ADD COLUMN disable_time TIMESTAMPTZ;
