-- The catalog: one row per DynamoDB table. Items live in `storage_table`, created alongside.
-- Identity values, and so storage table names, are never handed out twice.
-- COLLATE "C": names compare by bytes, the order list_tables needs, whatever the database locale.
CREATE TABLE dynabox.tables (
    name          text COLLATE "C" PRIMARY KEY,
    id            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    storage_table text GENERATED ALWAYS AS ('items_' || id) STORED,
    description   jsonb NOT NULL,
    created       timestamptz NOT NULL DEFAULT now()
);
