-- Storage objects (src/server/storage, docs/storage.md): JSON objects named
-- by (collection, key, owner).
--
-- System objects belong to the nil UUID. It gets a row in users so that one
-- foreign key covers every owner: an object can never outlive its user (ON
-- DELETE CASCADE, no trigger to forget) and the server cannot write for a
-- user that does not exist. The row can never log in: it has no device,
-- email, custom id or password, and its username '' is one no client can
-- ask for (an empty username means "generate one"). Never delete it: that
-- would delete every system object.
INSERT INTO users (id, username)
VALUES ('00000000-0000-0000-0000-000000000000', '')
ON CONFLICT (id) DO NOTHING;

CREATE TABLE storage (
    -- COLLATE "C": keys compare and sort as bytes, so list order and cursors
    -- do not depend on the database's locale.
    collection  TEXT COLLATE "C" NOT NULL
                CONSTRAINT storage_collection_size CHECK (octet_length(collection) BETWEEN 1 AND 128),
    key         TEXT COLLATE "C" NOT NULL
                CONSTRAINT storage_key_size CHECK (octet_length(key) BETWEEN 1 AND 128),
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    value       JSONB NOT NULL CONSTRAINT storage_value_object CHECK (jsonb_typeof(value) = 'object'),
    -- first 32 hex characters of SHA-256 of the canonical value (kn_storage.h)
    version     TEXT NOT NULL,
    read        SMALLINT NOT NULL CONSTRAINT storage_read_range CHECK (read BETWEEN 0 AND 2),
    write       SMALLINT NOT NULL CONSTRAINT storage_write_range CHECK (write BETWEEN 0 AND 1),
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Serves reads by id and both listings of one owner's collection (by key)
    -- and, for the server, of a whole collection (by owner, key).
    CONSTRAINT storage_pkey PRIMARY KEY (collection, user_id, key)
);

-- A client listing a whole collection sees only public objects: walk just those.
CREATE INDEX storage_public_idx ON storage (collection, user_id, key) WHERE read = 2;

-- Deleting a user deletes their objects through the foreign key.
CREATE INDEX storage_user_id_idx ON storage (user_id);
