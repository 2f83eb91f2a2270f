-- Friends (src/server/friends, docs/friends.md): one row per direction of a
-- relationship between two users.
--
-- state, as seen by the source: 0 friend (mutual), 1 invite sent, 2 invite
-- received, 3 blocked (by the source). A friendship or an invite is always
-- two rows (0/0 or 1/2); a block is one row, the source's, and the other
-- direction is removed (unless the other user blocked back).
--
-- position orders a user's list: microseconds since the epoch when the row
-- last changed state, so newest changes list last within a state and a
-- keyset cursor (state, position, destination_id) walks it without OFFSET.
CREATE TABLE user_edge (
    source_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    destination_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state          SMALLINT NOT NULL CONSTRAINT user_edge_state_range CHECK (state BETWEEN 0 AND 3),
    position       BIGINT NOT NULL,
    metadata       JSONB NOT NULL DEFAULT '{}',
    create_time    TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT user_edge_pkey PRIMARY KEY (source_id, destination_id),
    CONSTRAINT user_edge_not_self CHECK (source_id <> destination_id)
);

-- A user's list, filtered by state, in cursor order.
CREATE INDEX user_edge_list_idx ON user_edge (source_id, state, position, destination_id);

-- Deleting a user deletes the edges that point at them through the foreign key.
CREATE INDEX user_edge_destination_idx ON user_edge (destination_id);
