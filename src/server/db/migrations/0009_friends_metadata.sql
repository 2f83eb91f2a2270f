-- Friend metadata (src/server/friends, docs/friends.md): user_edge.metadata
-- (0006) becomes the owner's metadata on its edge, set by an add and by
-- kaos.friend_metadata_update / FriendsMetadataUpdate. The service accepts
-- only a JSON object of at most 16 KiB; the database holds it to the first
-- half too, so no other writer can store what a list could not return.
ALTER TABLE user_edge
    ADD CONSTRAINT user_edge_metadata_object CHECK (jsonb_typeof(metadata) = 'object');
