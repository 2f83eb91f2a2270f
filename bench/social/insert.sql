-- pgbench script: what the server runs for one persistent notification
-- (src/server/notify/notify.c, statement notify_insert inside kn_db_begin /
-- kn_db_commit: a send's persistent notifications are one transaction, even
-- when there is only one), with -M prepared as the server prepares it.
-- The server generates the id ($1, a v4 UUID) in C; pgbench has no UUIDs of
-- its own, so gen_random_uuid() stands in for it: the same random
-- distribution in the primary key, generated on the other side.
-- Variables (-D), the server's parameters: uid (the recipient), subject,
-- content (the JSON text the RPC makes), code, sender (a user id).
-- run.sh repeats the INSERT for --batch N (one transaction, as the server
-- does for a batch) and drops BEGIN/COMMIT for the insert-only row.
BEGIN;
INSERT INTO notification (id, user_id, subject, content, code, sender_id, position)
  VALUES (gen_random_uuid(), :uid, :subject, :content::jsonb, :code::int, NULLIF(:sender, '')::uuid,
  (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
  RETURNING floor(extract(epoch FROM create_time))::bigint;
COMMIT;
