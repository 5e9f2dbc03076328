-- On-demand backups: the record the handler wrote (JSON), and the table's items of that moment,
-- copied into storage table `bk_<id>` of the same shape as a keyspace's. A backup belongs to its
-- account, not to its table: it outlives the table.
CREATE TABLE backups (
    id      INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    arn     TEXT NOT NULL,
    record  TEXT NOT NULL,
    UNIQUE (account, arn)
);
