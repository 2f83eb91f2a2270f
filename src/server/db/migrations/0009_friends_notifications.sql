-- Friend metadata and notifications to everyone (docs/friends.md,
-- docs/notifications.md).
--
-- user_edge.metadata (0006) becomes the owner's metadata on its edge, set
-- by an add and by kaos.friend_metadata_update / FriendsMetadataUpdate.
-- The service accepts only a JSON object of at most 16 KiB; the database
-- holds it to the first half too, so no other writer can store what a list
-- could not return.
ALTER TABLE user_edge
    ADD CONSTRAINT user_edge_metadata_object CHECK (jsonb_typeof(metadata) = 'object');

-- A notification sent to every user (kn_notify_send_all) is stored once per
-- user by one INSERT ... SELECT under one id, so the copy pushed live to
-- every connection names the row each user lists and deletes. An id is
-- therefore unique per user, not across users; every query already names
-- the user (list, delete).
ALTER TABLE notification DROP CONSTRAINT notification_pkey;
ALTER TABLE notification ADD CONSTRAINT notification_pkey PRIMARY KEY (user_id, id);
