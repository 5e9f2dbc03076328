-- The catalog: one row per DynamoDB table. Items live in `storage_table`, created alongside.
-- AUTOINCREMENT: ids, and so storage table names, are never handed out twice.
-- `name` compares with BINARY collation, i.e. by bytes, the order list_tables needs.
CREATE TABLE tables (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    storage_table TEXT GENERATED ALWAYS AS ('items_' || id) STORED,
    description   TEXT NOT NULL,
    created       INTEGER NOT NULL DEFAULT (unixepoch())
);
