-- pgbench script: what the server runs for one wallet update
-- (src/server/economy/wallet.c, statement wallet_update: one statement, so
-- no BEGIN/COMMIT), with -M prepared as the server prepares it. The user is
-- the client's own ("b0000000-...-<client_id>", made by run.sh); the only
-- difference from the server's statement is that pgbench builds that id
-- from :client_id in SQL (pgbench variables are numbers).
-- Variables (-D): ledger (true or false).
WITH u AS (UPDATE users SET wallet = kaos_wallet_apply(wallet, '{"coins": 1, "gems": 2}'::jsonb, false),
  update_time = now()
  WHERE id = ('b0000000-0000-4000-8000-' || lpad(:client_id::text, 12, '0'))::uuid RETURNING wallet),
 l AS (INSERT INTO wallet_ledger (user_id, changeset, metadata)
  SELECT ('b0000000-0000-4000-8000-' || lpad(:client_id::text, 12, '0'))::uuid,
  '{"coins": 1, "gems": 2}'::jsonb, '{"bench": true}'::jsonb FROM u WHERE :ledger RETURNING id)
SELECT u.wallet::text, (SELECT id FROM l) FROM u;
