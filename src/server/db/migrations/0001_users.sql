-- Users and the devices that log in as them.
CREATE TABLE users (
    id           UUID PRIMARY KEY,
    username     VARCHAR(128) NOT NULL CONSTRAINT users_username_key UNIQUE,
    display_name VARCHAR(255),
    create_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE user_device (
    id          VARCHAR(128) CONSTRAINT user_device_pkey PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX user_device_user_id_idx ON user_device (user_id);
