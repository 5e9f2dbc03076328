-- On-demand backups: the record the handler wrote, and the table's items of that moment, copied
-- into storage table `dynabox.bk_<id>` of the same shape as a keyspace's. A backup belongs to its
-- account, not to its table: it outlives the table.
CREATE TABLE dynabox.backups (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account text COLLATE "C" NOT NULL,
    arn     text COLLATE "C" NOT NULL,
    record  json NOT NULL,
    UNIQUE (account, arn)
);
