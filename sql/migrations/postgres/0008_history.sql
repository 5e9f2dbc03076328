-- Point-in-time recovery: each table's history of item changes is numbered and stamped (in
-- milliseconds) under its row, as its change log is, so stamps follow commit order. The history
-- itself is a storage table of its own, `dynabox.<base keyspace's storage table>_h`, while it is
-- kept.
ALTER TABLE dynabox.tables
    ADD COLUMN history bigint NOT NULL DEFAULT 0,
    ADD COLUMN history_at bigint NOT NULL DEFAULT 0;
