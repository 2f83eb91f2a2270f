-- The admin console (src/server/console): its users, their sessions and the
-- audit log of every write made through it. Console users are operators, not
-- players: they share nothing with the users table.
CREATE TABLE console_user (
    id          bigserial PRIMARY KEY,
    username    text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    -- admin | developer | maintainer | read-only
    role        text NOT NULL CHECK (role IN ('admin', 'developer', 'maintainer', 'read-only')),
    password    text NOT NULL, -- argon2id string (kn_crypto_pwhash_str)
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);

-- A session is stored under the SHA-256 of its token, never the token; its
-- CSRF token is compared on every write made with the cookie.
CREATE TABLE console_session (
    token_hash  text PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES console_user (id) ON DELETE CASCADE,
    csrf        text NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    expire_time timestamptz NOT NULL
);
CREATE INDEX console_session_user_idx ON console_session (user_id);

-- Who did what, when, from where, and how it ended (0 = done, else the
-- wire code of the refusal). Users are kept by name so the log outlives them.
CREATE TABLE console_audit (
    id          bigserial PRIMARY KEY,
    time        timestamptz NOT NULL DEFAULT now(),
    username    text NOT NULL,
    role        text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    detail      text NOT NULL DEFAULT '',
    result      integer NOT NULL DEFAULT 0,
    address     text NOT NULL DEFAULT ''
);
CREATE INDEX console_audit_time_idx ON console_audit (id DESC);
