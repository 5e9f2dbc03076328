-- Point-in-time recovery: each table's history of item changes is numbered and stamped (in
-- milliseconds) under its row, as its change log is, so stamps follow commit order. The history
-- itself is a storage table of its own, `<base keyspace's storage table>_h`, while it is kept.
ALTER TABLE tables ADD COLUMN history INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tables ADD COLUMN history_at INTEGER NOT NULL DEFAULT 0;
