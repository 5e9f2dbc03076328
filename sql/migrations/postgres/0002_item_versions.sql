-- Item versions come from one sequence for the whole store, so a key deleted and written again
-- never gets a version it had before (a guard holding that version would accept the new item).
-- It starts above every version already stored: until now each key counted from 1.
CREATE SEQUENCE dynabox.item_versions;

DO $$
DECLARE
    storage_table text;
    highest bigint := 0;
    stored bigint;
BEGIN
    FOR storage_table IN SELECT t.storage_table FROM dynabox.tables AS t LOOP
        EXECUTE format('SELECT coalesce(max(version), 0) FROM dynabox.%I', storage_table) INTO stored;
        highest := greatest(highest, stored);
    END LOOP;
    PERFORM setval('dynabox.item_versions', highest + 1, false);
END
$$;
