-- Documents and descriptions become `json`: `jsonb` cannot hold the string U+0000, which DynamoDB
-- items may contain. `json` keeps the text as written (so documents come back byte for byte, as
-- from the embedded store) and still answers SQL's JSON operators.
DO $$
DECLARE
    storage_table text;
BEGIN
    FOR storage_table IN SELECT t.storage_table FROM dynabox.tables AS t LOOP
        EXECUTE format('ALTER TABLE dynabox.%I ALTER COLUMN doc TYPE json USING doc::json', storage_table);
    END LOOP;
END
$$;

ALTER TABLE dynabox.tables ALTER COLUMN description TYPE json USING description::json;
