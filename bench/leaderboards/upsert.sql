-- pgbench script: what the server runs for one LeaderboardRecordWrite on a
-- "set" board (src/server/leaderboard/leaderboard.c, statement lb_write, one
-- statement, no BEGIN/COMMIT), with -M prepared as the server prepares it.
-- The same CASE expressions as the server's, so the database does the same
-- work; the server adds the rank index and the protocol.
-- Variables (-D): owners (owner range, one per SDK client on the server side).
\set o random(1, :owners)
\set s random(0, 100000)
\set t random(1, 1000000000000)
INSERT INTO leaderboard_record AS r (leaderboard_id, owner_id, expiry_time, username, score,
  subscore, metadata, score_time)
  VALUES ('bench', ('00000000-0000-4000-8000-' || lpad(:o::text, 12, '0'))::uuid, 0, '', :s, 0,
  '{}', :t)
  ON CONFLICT (leaderboard_id, expiry_time, owner_id) DO UPDATE SET
  username = coalesce(NULL, r.username),
  score = CASE 1 WHEN 0 THEN r.score WHEN 1 THEN :s::bigint ELSE r.score END,
  subscore = CASE 1 WHEN 0 THEN r.subscore WHEN 1 THEN 0 ELSE r.subscore END,
  metadata = coalesce(NULL::jsonb, r.metadata),
  score_time = CASE WHEN (:s::bigint, 0::bigint) = (r.score, r.subscore) THEN r.score_time
  ELSE :t END,
  num_score = r.num_score + 1, version = r.version + 1, update_time = now()
  RETURNING owner_id::text, username, score, subscore, num_score, metadata::text,
  floor(extract(epoch FROM create_time))::bigint, floor(extract(epoch FROM update_time))::bigint,
  expiry_time, score_time, version;
