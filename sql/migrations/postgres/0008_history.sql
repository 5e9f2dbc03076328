-- Point-in-time recovery. A table's history is a storage table of its own,
-- `dynabox.<base keyspace's storage table>_h`, while it is kept. Its entries are numbered by one
-- sequence and stamped with the database's clock, in milliseconds, when a transaction appends its
-- first entry: all of a transaction's entries share that stamp. A transaction appends after it
-- has written (and locked) its items, so a later writer of a key, which waited for the earlier
-- one to commit, stamps and numbers after it: no lock on the table is needed.
CREATE SEQUENCE dynabox.history_entries;

CREATE FUNCTION dynabox.history_stamp() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT COALESCE(
        NULLIF(current_setting('dynabox.history_stamp', true), '')::bigint,
        set_config('dynabox.history_stamp',
                   floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint::text, true)::bigint)
$$;

-- Returns once every transaction that stamped (or will stamp) an entry of `history` at or
-- before `moment` has ended: first the clock passes the moment (at most 5 s away), so later
-- appenders stamp after it; then the transactions that have appended to `history` (they hold its
-- RowExclusiveLock to their end) are waited for, and no others: a long unrelated transaction,
-- such as a backup's copy, does not hold a restore up.
CREATE FUNCTION dynabox.await_history(history regclass, moment bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    appending text[];
BEGIN
    PERFORM pg_sleep(least(5, greatest(0,
        (moment + 1 - floor(extract(epoch FROM clock_timestamp()) * 1000)) / 1000.0)));
    appending := ARRAY(SELECT virtualtransaction FROM pg_locks
                       WHERE relation = history AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid());
    WHILE EXISTS (SELECT 1 FROM pg_locks WHERE relation = history AND virtualtransaction = ANY(appending)) LOOP
        PERFORM pg_sleep(0.001);
    END LOOP;
END
$$;
