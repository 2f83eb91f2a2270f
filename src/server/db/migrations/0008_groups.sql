-- Groups (src/server/groups, docs/groups.md): named communities of users
-- with ranks.
--
-- A group's name is unique case-insensitively (lower(name)). edge_count
-- counts the members (states 0-2 of group_edge, never join requests or
-- bans) and is kept by the service under the group row's lock (SELECT ...
-- FOR UPDATE); the CHECK makes "never more than max_count" hold even
-- against a bug. creator_id is not a foreign key: a group outlives its
-- creator's account (it becomes NULL).
--
-- position orders lists: microseconds since the epoch when the group was
-- created, or when an edge last changed state, so a keyset cursor walks a
-- list without OFFSET.
CREATE TABLE groups (
    id          UUID PRIMARY KEY,
    creator_id  UUID NULL,
    name        TEXT NOT NULL CONSTRAINT groups_name_len CHECK (octet_length(name) BETWEEN 1 AND 128),
    description TEXT NOT NULL DEFAULT '',
    avatar_url  TEXT NOT NULL DEFAULT '',
    lang_tag    TEXT NOT NULL DEFAULT 'en',
    metadata    JSONB NOT NULL DEFAULT '{}' CONSTRAINT groups_metadata_object
                CHECK (jsonb_typeof(metadata) = 'object'),
    open        BOOLEAN NOT NULL DEFAULT false,
    edge_count  INT NOT NULL DEFAULT 0,
    max_count   INT NOT NULL CONSTRAINT groups_max_count_range CHECK (max_count BETWEEN 1 AND 10000),
    position    BIGINT NOT NULL,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT groups_edge_count_range CHECK (edge_count BETWEEN 0 AND max_count)
);

CREATE UNIQUE INDEX groups_name_key ON groups (lower(name));
CREATE INDEX groups_list_idx ON groups (position, id);

-- state: 0 superadmin, 1 admin, 2 member, 3 join request, 4 banned.
CREATE TABLE group_edge (
    group_id    UUID NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state       SMALLINT NOT NULL CONSTRAINT group_edge_state_range CHECK (state BETWEEN 0 AND 4),
    position    BIGINT NOT NULL,
    update_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT group_edge_pkey PRIMARY KEY (group_id, user_id)
);

-- A group's users and a user's groups, filtered by state, in cursor order.
CREATE INDEX group_edge_group_list_idx ON group_edge (group_id, state, position, user_id);
CREATE INDEX group_edge_user_list_idx ON group_edge (user_id, state, position, group_id);

-- Account deletion: before the user row goes (and its edges with it by the
-- foreign key), its groups' rows are locked in id order and each is fixed: the member count drops, a group losing its last
-- superadmin gets the oldest admin (else the oldest member) as superadmin,
-- and a group with no member left is deleted. The user's state is read
-- again by the DELETE ... RETURNING after the lock: the loop's own row may
-- be older than a change committed while it waited. Every call of the
-- service that creates or changes this user's edges locks the user row
-- first (FOR KEY SHARE), which the deletion holds, so none runs meanwhile.
CREATE FUNCTION groups_user_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    g RECORD;
    st SMALLINT;
    heir UUID;
BEGIN
    -- Every group row this touches, locked at once in id order (two
    -- deletions sharing groups then wait for each other, never deadlock).
    PERFORM 1 FROM groups
    WHERE creator_id = OLD.id OR id IN (SELECT group_id FROM group_edge WHERE user_id = OLD.id)
    ORDER BY id FOR UPDATE;
    UPDATE groups SET creator_id = NULL WHERE creator_id = OLD.id;
    FOR g IN SELECT group_id FROM group_edge WHERE user_id = OLD.id ORDER BY group_id
    LOOP
        st := NULL;
        DELETE FROM group_edge WHERE group_id = g.group_id AND user_id = OLD.id
        RETURNING state INTO st;
        CONTINUE WHEN st IS NULL;
        IF st <= 2 THEN
            UPDATE groups SET edge_count = edge_count - 1, update_time = now()
            WHERE id = g.group_id;
        END IF;
        IF st = 0 AND NOT EXISTS
            (SELECT 1 FROM group_edge WHERE group_id = g.group_id AND state = 0) THEN
            SELECT user_id INTO heir FROM group_edge
            WHERE group_id = g.group_id AND state IN (1, 2)
            ORDER BY state, position, user_id LIMIT 1;
            IF heir IS NOT NULL THEN
                UPDATE group_edge
                SET state = 0, update_time = now(),
                    position = (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
                WHERE group_id = g.group_id AND user_id = heir;
            END IF;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM group_edge WHERE group_id = g.group_id AND state <= 2) THEN
            DELETE FROM groups WHERE id = g.group_id;
        END IF;
    END LOOP;
    RETURN OLD;
END;
$$;

CREATE TRIGGER groups_user_deleted BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION groups_user_deleted();
