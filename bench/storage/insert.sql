-- pgbench script: what the server runs for one unconditional single-object
-- StorageWrite (src/server/storage/storage.c, statement storage_upsert; one
-- object is one statement, so no BEGIN/COMMIT), with -M prepared as the
-- server prepares it.
-- Variables (-D): uid (an existing user), keys (key range), value (JSON text).
\set k random(0, :keys - 1)
INSERT INTO storage (collection, key, user_id, value, version, read, write)
  VALUES ('bench', 'k' || :k, :uid, :value::jsonb, '0123456789abcdef0123456789abcdef', 1, 1)
  ON CONFLICT (collection, user_id, key) DO UPDATE SET value = EXCLUDED.value,
  version = EXCLUDED.version, read = EXCLUDED.read, write = EXCLUDED.write,
  update_time = now() WHERE storage.write > 0 OR NOT true RETURNING version;
