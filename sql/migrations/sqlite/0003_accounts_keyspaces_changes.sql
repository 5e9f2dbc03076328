-- Storage contract v2: tables belong to an account and carry a version and a change-log counter;
-- each table has keyspaces (its items, and one per index) with storage tables of their own; change
-- logs live in `changes`. Existing tables belong to the local account of the open policy, and
-- keep their storage tables as their base keyspaces. (The item tables' new columns are added by
-- the migration's Rust part: SQL cannot name them.)
CREATE TABLE tables_v2 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    changes     INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (account, name)
);
INSERT INTO tables_v2 (id, account, name, description, created)
    SELECT id, '000000000000', name, description, created FROM tables;
-- Ids are never handed out twice, also not those of tables deleted before this migration.
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'tables_v2', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'tables_v2');
UPDATE sqlite_sequence
    SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'tables'), 0))
    WHERE name = 'tables_v2';

-- index_name is '' for the base keyspace (index names are never empty).
CREATE TABLE keyspaces (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    table_id      INTEGER NOT NULL,
    index_name    TEXT NOT NULL,
    storage_table TEXT NOT NULL,
    UNIQUE (table_id, index_name)
);
INSERT INTO keyspaces (table_id, index_name, storage_table) SELECT id, '', storage_table FROM tables;

DROP TABLE tables;
ALTER TABLE tables_v2 RENAME TO tables;

CREATE TABLE changes (
    table_id INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    record   BLOB NOT NULL,
    created  INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (table_id, seq)
) WITHOUT ROWID;
