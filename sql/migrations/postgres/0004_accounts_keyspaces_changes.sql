-- Storage contract v2: tables belong to an account and carry a version and a change-log counter;
-- each table has keyspaces (its items, and one per index) with storage tables of their own, whose
-- rows carry the partition's hash (scan segments) and an optional expiry; change logs live in
-- `dynabox.changes`. Existing tables belong to the local account of the open policy and keep their
-- storage tables as their base keyspaces.
ALTER TABLE dynabox.tables
    ADD COLUMN account text COLLATE "C" NOT NULL DEFAULT '000000000000',
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN changes bigint NOT NULL DEFAULT 0;
ALTER TABLE dynabox.tables ALTER COLUMN account DROP DEFAULT;
ALTER TABLE dynabox.tables DROP CONSTRAINT tables_pkey;
ALTER TABLE dynabox.tables ADD PRIMARY KEY (account, name);

-- index_name is '' for the base keyspace (index names are never empty).
CREATE TABLE dynabox.keyspaces (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_id      bigint NOT NULL,
    index_name    text COLLATE "C" NOT NULL,
    storage_table text NOT NULL,
    UNIQUE (table_id, index_name)
);
INSERT INTO dynabox.keyspaces (table_id, index_name, storage_table)
    SELECT id, '', storage_table FROM dynabox.tables;
ALTER TABLE dynabox.tables DROP COLUMN storage_table;

CREATE TABLE dynabox.changes (
    table_id bigint NOT NULL,
    seq      bigint NOT NULL,
    record   bytea NOT NULL,
    created  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_id, seq)
);

-- FNV-1a over the partition bytes, as dynabox_handler::storage::partition_hash computes it; used
-- here only to give existing rows their hash (the server computes it for new rows).
CREATE FUNCTION dynabox.partition_hash(key bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    hash bigint := 2166136261;
BEGIN
    FOR i IN 0 .. length(key) - 1 LOOP
        hash := ((hash # get_byte(key, i)) * 16777619) % 4294967296;
    END LOOP;
    RETURN hash;
END
$$;

DO $$
DECLARE
    storage_table text;
BEGIN
    FOR storage_table IN SELECT k.storage_table FROM dynabox.keyspaces AS k LOOP
        EXECUTE format('ALTER TABLE dynabox.%I ADD COLUMN h bigint, ADD COLUMN expires bigint', storage_table);
        EXECUTE format('UPDATE dynabox.%I SET h = dynabox.partition_hash(pk)', storage_table);
        EXECUTE format('ALTER TABLE dynabox.%I ALTER COLUMN h SET NOT NULL', storage_table);
        EXECUTE format('CREATE INDEX ON dynabox.%I (h, pk, sk)', storage_table);
        EXECUTE format('CREATE INDEX ON dynabox.%I (expires) WHERE expires IS NOT NULL', storage_table);
    END LOOP;
END
$$;
