-- pgbench script: what the server runs for a StorageRead of one object of
-- the caller's (statement storage_read_ids: the ids as array literals, the
-- caller's permissions in the WHERE), with -M prepared as the server
-- prepares it. Variables (-D): uid (the owner, also the caller), keys.
\set k random(0, :keys - 1)
SELECT s.collection, s.key, s.user_id, s.value::text, s.version, s.read, s.write,
  (extract(epoch FROM s.create_time) * 1000)::bigint,
  (extract(epoch FROM s.update_time) * 1000)::bigint
  FROM unnest('{bench}'::text[], ('{k' || :k || '}')::text[], ('{' || :uid || '}')::uuid[])
  WITH ORDINALITY AS i (collection, key, user_id, n)
  JOIN storage s ON s.collection = i.collection AND s.key = i.key AND s.user_id = i.user_id
  WHERE :uid::uuid IS NULL OR s.read = 2 OR (s.read = 1 AND s.user_id = :uid::uuid)
  ORDER BY i.n;
