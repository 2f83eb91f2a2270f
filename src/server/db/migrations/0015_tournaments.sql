-- Tournaments (src/server/leaderboard/tournament.c, docs/leaderboards.md,
-- "Tournaments").
--
-- A tournament is a leaderboard (its row in `leaderboard`, its records in
-- `leaderboard_record`, the same rank index, operators and periods) plus
-- the settings below. Deleting the board deletes the tournament and its
-- members.
--
-- Times are Unix seconds; 0 means "none" (end_time 0: never ends;
-- duration 0: the whole period is active; max_size 0 and max_num_score 0:
-- no limit).
CREATE TABLE tournament (
    id            TEXT PRIMARY KEY REFERENCES leaderboard (id) ON DELETE CASCADE,
    category      SMALLINT NOT NULL DEFAULT 0 CONSTRAINT tournament_category_range
                  CHECK (category BETWEEN 0 AND 127),
    title         TEXT NOT NULL DEFAULT '',
    description   TEXT NOT NULL DEFAULT '',
    start_time    BIGINT NOT NULL DEFAULT 0,
    end_time      BIGINT NOT NULL DEFAULT 0,
    duration      INT NOT NULL DEFAULT 0 CONSTRAINT tournament_duration_range CHECK (duration >= 0),
    max_size      INT NOT NULL DEFAULT 0 CONSTRAINT tournament_max_size_range CHECK (max_size >= 0),
    max_num_score INT NOT NULL DEFAULT 0 CONSTRAINT tournament_max_num_score_range
                  CHECK (max_num_score >= 0),
    join_required BOOLEAN NOT NULL DEFAULT false
);

-- Listing by category and start time (keyset: category, start_time, id).
CREATE INDEX tournament_list_idx ON tournament (category, start_time, id);

-- The participants of one period (expiry_time as in leaderboard_record):
-- a join (or, when joining is not required, a first write) sets joined;
-- max_size counts the joined rows of the period, under the tournament
-- row's lock. attempts is what add_attempt added to max_num_score for this
-- owner in this period (may be negative); a row made by add_attempt alone
-- is not joined.
CREATE TABLE tournament_member (
    tournament_id TEXT NOT NULL REFERENCES tournament (id) ON DELETE CASCADE,
    expiry_time   BIGINT NOT NULL,
    owner_id      UUID NOT NULL,
    joined        BOOLEAN NOT NULL DEFAULT false,
    attempts      INT NOT NULL DEFAULT 0,
    create_time   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT tournament_member_pkey PRIMARY KEY (tournament_id, expiry_time, owner_id)
);

-- A user's memberships (account deletion).
CREATE INDEX tournament_member_owner_idx ON tournament_member (owner_id);

-- A deleted account's leaderboard records and tournament memberships go
-- with it (there is no foreign key to users: scripts may write records for
-- any UUID). Each node reads leaderboard_owner_gone from its scheduler and
-- takes those owners out of its rank indexes (docs/leaderboards.md,
-- "Deleted accounts"); rows older than a day are pruned at start.
CREATE TABLE leaderboard_owner_gone (
    seq       BIGSERIAL PRIMARY KEY,
    owner_id  UUID NOT NULL,
    gone_time TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION leaderboard_owner_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM leaderboard_record WHERE owner_id = OLD.id;
    DELETE FROM tournament_member WHERE owner_id = OLD.id;
    INSERT INTO leaderboard_owner_gone (owner_id) VALUES (OLD.id);
    RETURN OLD;
END
$$;

CREATE TRIGGER users_leaderboard_owner_gone AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION leaderboard_owner_gone();
