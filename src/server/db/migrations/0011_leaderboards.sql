-- Leaderboards (src/server/leaderboard, docs/leaderboards.md).
--
-- Postgres is the source of truth; each node keeps an in-memory rank index
-- per board and period, rebuilt from these rows at start.
--
-- A board's records live in periods: expiry_time is the Unix second at
-- which the record's period ends (the board's next cron reset after the
-- write), 0 for a board without a reset schedule. Records of ended periods
-- stay, queryable by their expiry time (history).
--
-- score_time orders ties: microseconds since the epoch when the record's
-- (score, subscore) last changed, so at equal score and subscore the
-- record that got there first ranks first, then the smaller owner id.
-- version grows by one on every change of a row: a rank index applies a
-- write only when its version is newer than the one it holds, so writes
-- that commit in one order and reach the index in another converge on the
-- committed state (docs/leaderboards.md, "Consistency").
CREATE TABLE leaderboard (
    id             TEXT PRIMARY KEY CONSTRAINT leaderboard_id_len CHECK (octet_length(id) BETWEEN 1 AND 128),
    authoritative  BOOLEAN NOT NULL DEFAULT false,
    sort_order     SMALLINT NOT NULL CONSTRAINT leaderboard_sort_range CHECK (sort_order IN (0, 1)),
    operator       SMALLINT NOT NULL CONSTRAINT leaderboard_operator_range CHECK (operator BETWEEN 0 AND 3),
    reset_schedule TEXT NOT NULL DEFAULT '',
    metadata       JSONB NOT NULL DEFAULT '{}' CONSTRAINT leaderboard_metadata_object
                   CHECK (jsonb_typeof(metadata) = 'object'),
    enable_ranks   BOOLEAN NOT NULL DEFAULT true,
    create_time    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE leaderboard_record (
    leaderboard_id TEXT NOT NULL REFERENCES leaderboard (id) ON DELETE CASCADE,
    owner_id       UUID NOT NULL,
    expiry_time    BIGINT NOT NULL DEFAULT 0,
    username       TEXT NOT NULL DEFAULT '',
    score          BIGINT NOT NULL DEFAULT 0,
    subscore       BIGINT NOT NULL DEFAULT 0,
    num_score      INT NOT NULL DEFAULT 1,
    metadata       JSONB NOT NULL DEFAULT '{}' CONSTRAINT leaderboard_record_metadata_object
                   CHECK (jsonb_typeof(metadata) = 'object'),
    score_time     BIGINT NOT NULL,
    version        BIGINT NOT NULL DEFAULT 1,
    create_time    TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT leaderboard_record_pkey PRIMARY KEY (leaderboard_id, expiry_time, owner_id)
);

-- A user's records (account deletion, "my records"); lists and ranks come
-- from the rank index, so no index on the score is needed for them.
CREATE INDEX leaderboard_record_owner_idx ON leaderboard_record (owner_id, leaderboard_id);

-- Resets and tournament ends that must happen once per cluster: a node
-- that inserts the (job, fire_time) row first runs the callbacks; the
-- others see the conflict and do not (docs/leaderboards.md, "Scheduler").
CREATE TABLE leaderboard_job_run (
    job       TEXT NOT NULL,
    fire_time BIGINT NOT NULL,
    node      TEXT NOT NULL DEFAULT '',
    run_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT leaderboard_job_run_pkey PRIMARY KEY (job, fire_time)
);
