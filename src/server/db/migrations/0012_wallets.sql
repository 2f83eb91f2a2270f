-- Wallets and their ledger (src/server/economy, docs/economy.md).
--
-- A wallet is a JSON object on the user's row, currency -> balance, every
-- balance an integer that fits a signed 64-bit number. It lives on users
-- (as in Nakama) so that reading an account reads its wallet in the same
-- row, and deleting a user deletes the wallet.
--
-- kaos_wallet_apply adds a changeset to a wallet. It is called in the SET
-- of the UPDATE that changes the row, so under concurrency Postgres
-- evaluates it again on the newest committed wallet once the row lock is
-- granted (READ COMMITTED re-check): increments never get lost. A refusal
-- is raised with SQLSTATE class KN, whose three digits are the wire code
-- (KN009 FAILED_PRECONDITION, KN011 OUT_OF_RANGE), so the statement and
-- any transaction around it fail as a whole and kn_db hands the message to
-- the service.
ALTER TABLE users ADD COLUMN wallet JSONB NOT NULL DEFAULT '{}'
    CONSTRAINT users_wallet_object CHECK (jsonb_typeof(wallet) = 'object');

CREATE FUNCTION kaos_wallet_apply(wallet JSONB, changeset JSONB, allow_negative BOOLEAN)
RETURNS JSONB LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    c RECORD;
    v NUMERIC;
BEGIN
    FOR c IN SELECT key, value FROM jsonb_each(changeset) ORDER BY key LOOP
        v := COALESCE((wallet -> c.key)::numeric, 0) + (c.value)::numeric;
        IF v > 9223372036854775807 OR v < -9223372036854775808 THEN
            RAISE EXCEPTION USING ERRCODE = 'KN011', MESSAGE = format(
                'currency "%s" would overflow: %s %s %s is outside the signed 64-bit range',
                c.key, COALESCE((wallet -> c.key)::numeric, 0),
                CASE WHEN (c.value)::numeric < 0 THEN '-' ELSE '+' END, abs((c.value)::numeric));
        END IF;
        IF v < 0 AND NOT allow_negative THEN
            RAISE EXCEPTION USING ERRCODE = 'KN009', MESSAGE = format(
                'currency "%s" would go below zero: balance %s, change %s',
                c.key, COALESCE((wallet -> c.key)::numeric, 0), c.value);
        END IF;
        wallet := jsonb_set(wallet, ARRAY[c.key], to_jsonb(v));
    END LOOP;
    RETURN wallet;
END
$$;

-- One row per wallet update that asked for it. create_time is the clock
-- time of the insert (not the transaction's start), so the entries of one
-- batch are ordered too; listings walk (create_time, id) newest first.
CREATE TABLE wallet_ledger (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    changeset   JSONB NOT NULL,
    metadata    JSONB NOT NULL DEFAULT '{}'
                CONSTRAINT wallet_ledger_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    create_time TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    update_time TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX wallet_ledger_user_time_idx ON wallet_ledger (user_id, create_time DESC, id DESC);
