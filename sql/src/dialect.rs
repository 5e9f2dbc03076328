//! The schema, statements and migrations of each SQL dialect: the one source every store reads.
//!
//! Parameter conventions shared by both dialects, so one caller binds both:
//! - documents and descriptions are bound as text; PostgreSQL keeps them as `json` (not `jsonb`,
//!   which cannot hold U+0000) and casts (`$3::text::json`), and selects them back `::text`, so any
//!   driver (Spin's included, which reads no `json` columns) passes them through unparsed;
//! - keys are bytes, hashes, versions, counts and limits 64-bit integers;
//! - a put's new version: SQLite binds it as the statement's last parameter (the store reserves
//!   versions in blocks, see [`crate::store`]), PostgreSQL takes `nextval` of its sequence.

use crate::plan::TableSql;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A schema migration; versions start at 1 and are applied in order.
pub struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

/// The statements on the catalog, by dialect. Parameters in the order each comment gives.
pub struct Catalog {
    /// account, name, description, version → id; no row when the name is taken.
    pub insert_table: &'static str,
    /// → a description version from the item versions' clock, so it never repeats either.
    pub new_table_version: &'static str,
    /// account, name → description, version.
    pub describe_table: &'static str,
    /// account, name, version → a row when the description is at that version: versions never
    /// repeat, so this confirms a description read earlier exactly.
    pub description_at: &'static str,
    /// account, name → id, version; PostgreSQL locks the row against write groups guarded by it.
    pub table_for_update: &'static str,
    /// id, description, version.
    pub update_description: &'static str,
    /// account, start after ('' for the first page), limit → name.
    pub list_tables: &'static str,
    /// name → every account with a table of that name, in order.
    pub accounts_with_table: &'static str,
    /// account, name → id.
    pub delete_table: &'static str,
    /// table id → index name.
    pub table_indexes: &'static str,
    /// table id.
    pub delete_changes: &'static str,
    /// table id, index name → keyspace id.
    pub insert_keyspace: &'static str,
    /// keyspace id: names its storage table after the id.
    pub name_keyspace: &'static str,
    /// table id, index name → storage table.
    pub delete_keyspace: &'static str,
    /// account, table name, index name → table id, storage table.
    pub find_keyspace: &'static str,
    /// table id, version → a row when the description is at that version (PostgreSQL: FOR KEY
    /// SHARE, so an UpdateTable waits until the guarded group commits).
    pub table_at: &'static str,
    /// table id → the change log's next sequence number. The row stays locked until the group
    /// commits (PostgreSQL; SQLite's write transactions are serial), so numbers follow commit order.
    pub next_change: &'static str,
    /// table id, record: appended under the number `next_change` just gave, read from the
    /// table's row, so that both statements can be sent before either is answered.
    pub insert_change: &'static str,
    /// table id, after, limit → sequence number, record, in order.
    pub read_changes: &'static str,
    /// table id → the last sequence number the change log gave.
    pub last_change: &'static str,
    /// before (seconds since the epoch), limit: deletes up to `limit` change records written
    /// earlier, oldest first.
    pub trim_changes: &'static str,
    /// before → how many change records were written earlier.
    pub stale_changes: &'static str,
    /// → account, name of every table whose description has a time-to-live attribute.
    pub time_to_live_tables: &'static str,
    /// → account, description of every table whose description mentions an index being created
    /// (`"Status":"Creating"`); the caller decides on the parsed description. A text search, so it
    /// needs no schema of its own; the catalog is small.
    pub creating_indexes: &'static str,
    /// name, account id, sealed secret → a row when the name was free.
    pub insert_account: &'static str,
    /// name → account id, sealed secret, sealed previous secret (or null).
    pub find_account: &'static str,
    /// → name, account id, whether a previous secret works, created (seconds since the epoch).
    pub list_accounts: &'static str,
    /// name → a row when there was such an account.
    pub delete_account: &'static str,
    /// name, new sealed secret: the current secret becomes the previous one → a row when found.
    pub rotate_secret: &'static str,
    /// name → a row when found.
    pub revoke_previous_secret: &'static str,
    /// Creates a storage table `{t}`.
    pub create_storage_table: &'static str,
    /// Drops a storage table `{t}`.
    pub drop_storage_table: &'static str,
    /// Copies every row of storage table `{from}` into `{to}`.
    pub copy_items: &'static str,
    /// Lifts the per-statement time limit for the rest of the transaction, for copies that take
    /// as long as the table is large (PostgreSQL; SQLite has no such limit).
    pub unlimited_time: Option<&'static str>,
    /// account, ARN, record → backup id.
    pub insert_backup: &'static str,
    /// account, ARN → backup id, record.
    pub find_backup: &'static str,
    /// account, start after ('' for the first page), limit → ARN, record.
    pub list_backups: &'static str,
    /// account, ARN → backup id, record of the backup deleted.
    pub delete_backup: &'static str,
    /// table id, stamp (ms) → the history's next sequence number; its stamp becomes the later of
    /// the one it had and `stamp`. Locks the row until the group commits, as `next_change` does,
    /// so stamps follow commit order. SQLite only: PostgreSQL's item statement `append_history` numbers and
    /// stamps by itself without a lock on the table (see its migration 0008).
    pub next_history: Option<&'static str>,
    /// table id, moment (ms), on history `{t}_h`: once it has run, every group stamped at or
    /// before `moment` has committed, and every later one stamps after it.
    pub settle_history: &'static str,
    /// Creates the history table `{t}_h` of base storage table `{t}`.
    pub create_history: &'static str,
    /// Drops the history table of base storage table `{t}`, if it has one.
    pub drop_history: &'static str,
    /// Fills the history `{t}_h` with the items of `{t}`, under sequence number 0, stamped 0.
    pub start_history: &'static str,
    /// moment (ms): copies into storage table `{to}` the items history `{from}` holds then.
    pub restore_history: &'static str,
    /// before (ms), limit: deletes up to `limit` entries of history `{t}_h` stamped at or before
    /// `before` that no moment after it needs (see `SqlStore::fold_history`).
    pub fold_history: &'static str,
    /// to (ms), from (ms; -1 reads the whole table), start pk, start sk, limit, on history
    /// `{t}_h`: from (pk, sk) `start` on, in key order, up to `limit` keys changed in (from, to]
    /// → key, the stamp of its latest entry at or before `to`, the documents of its latest entries
    /// at or before `from` (old) and `to` (new), each null when absent or deleted; keys where
    /// both are null are left out. Read on the primary key, which resumes the read at `start`
    /// and gives each key's entries in order, so no page sorts the history.
    pub read_history: &'static str,
    /// Planner settings `read_history` runs under, in a transaction of its own, where the
    /// database would otherwise plan it badly.
    pub read_history_settings: Option<&'static str>,
    /// → account, name, description of every table whose description mentions point-in-time
    /// recovery (the caller decides on the parsed description).
    pub history_tables: &'static str,
    /// → account, ARN, record of every backup whose record says it is a SYSTEM backup.
    pub system_backups: &'static str,
}

const SQLITE_CATALOG: Catalog = Catalog {
    insert_table: "INSERT INTO tables (account, name, description, version) VALUES (?1, ?2, ?3, ?4) \
                   ON CONFLICT (account, name) DO NOTHING RETURNING id",
    new_table_version: "UPDATE version_clock SET reserved = reserved + 1 RETURNING reserved",
    describe_table: "SELECT description, version FROM tables WHERE account = ?1 AND name = ?2",
    description_at: "SELECT 1 FROM tables WHERE account = ?1 AND name = ?2 AND version = ?3",
    table_for_update: "SELECT id, version FROM tables WHERE account = ?1 AND name = ?2",
    update_description: "UPDATE tables SET description = ?2, version = ?3 WHERE id = ?1",
    list_tables: "SELECT name FROM tables WHERE account = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
    accounts_with_table: "SELECT account FROM tables WHERE name = ?1 ORDER BY account",
    delete_table: "DELETE FROM tables WHERE account = ?1 AND name = ?2 RETURNING id",
    table_indexes: "SELECT index_name FROM keyspaces WHERE table_id = ?1",
    delete_changes: "DELETE FROM changes WHERE table_id = ?1",
    insert_keyspace: "INSERT INTO keyspaces (table_id, index_name, storage_table) VALUES (?1, ?2, '') RETURNING id",
    name_keyspace: "UPDATE keyspaces SET storage_table = 'ks_' || id WHERE id = ?1",
    delete_keyspace: "DELETE FROM keyspaces WHERE table_id = ?1 AND index_name = ?2 RETURNING storage_table",
    find_keyspace: "SELECT k.table_id, k.storage_table FROM keyspaces AS k JOIN tables AS t ON t.id = k.table_id \
                    WHERE t.account = ?1 AND t.name = ?2 AND k.index_name = ?3",
    table_at: "SELECT 1 FROM tables WHERE id = ?1 AND version = ?2",
    next_change: "UPDATE tables SET changes = changes + 1 WHERE id = ?1 RETURNING changes",
    insert_change: "INSERT INTO changes (table_id, seq, record) SELECT id, changes, ?2 FROM tables WHERE id = ?1",
    read_changes: "SELECT seq, record FROM changes WHERE table_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    last_change: "SELECT changes FROM tables WHERE id = ?1",
    trim_changes: "DELETE FROM changes WHERE (table_id, seq) IN \
                   (SELECT table_id, seq FROM changes WHERE created < ?1 ORDER BY created LIMIT ?2)",
    stale_changes: "SELECT count(*) FROM changes WHERE created < ?1",
    time_to_live_tables: "SELECT account, name FROM tables WHERE description LIKE '%\"TimeToLiveAttribute\"%'",
    creating_indexes: "SELECT account, description FROM tables WHERE description LIKE '%\"Creating\"%'",
    insert_account: "INSERT INTO accounts (name, account_id, secret) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name) DO NOTHING RETURNING name",
    find_account: "SELECT account_id, secret, previous_secret FROM accounts WHERE name = ?1",
    list_accounts: "SELECT name, account_id, previous_secret IS NOT NULL, created FROM accounts ORDER BY name",
    delete_account: "DELETE FROM accounts WHERE name = ?1 RETURNING account_id",
    rotate_secret: "UPDATE accounts SET previous_secret = secret, secret = ?2 WHERE name = ?1 RETURNING account_id",
    revoke_previous_secret: "UPDATE accounts SET previous_secret = NULL WHERE name = ?1 RETURNING account_id",
    // `doc` is TEXT so that SQLite's JSON functions work on it (`json_extract(doc, '$.id.S')`).
    create_storage_table: "CREATE TABLE {t} (pk BLOB NOT NULL, sk BLOB NOT NULL, doc TEXT NOT NULL, \
                           version INTEGER NOT NULL, h INTEGER NOT NULL, expires INTEGER, \
                           PRIMARY KEY (pk, sk)) WITHOUT ROWID;
                           CREATE INDEX {t}_segments ON {t} (h, pk, sk);
                           CREATE INDEX {t}_expiry ON {t} (expires) WHERE expires IS NOT NULL",
    drop_storage_table: "DROP TABLE IF EXISTS {t}",
    copy_items: "INSERT INTO {to} (pk, sk, doc, version, h, expires) SELECT pk, sk, doc, version, h, expires FROM {from}",
    unlimited_time: None,
    insert_backup: "INSERT INTO backups (account, arn, record) VALUES (?1, ?2, ?3) RETURNING id",
    find_backup: "SELECT id, record FROM backups WHERE account = ?1 AND arn = ?2",
    list_backups: "SELECT arn, record FROM backups WHERE account = ?1 AND arn > ?2 ORDER BY arn LIMIT ?3",
    delete_backup: "DELETE FROM backups WHERE account = ?1 AND arn = ?2 RETURNING id, record",
    next_history: Some(
        "UPDATE tables SET history = history + 1, history_at = max(history_at, ?2) WHERE id = ?1 RETURNING history",
    ),
    // Write transactions are serial: the next stamp is simply made later than the moment.
    settle_history: "UPDATE tables SET history_at = max(history_at, ?2 + 1) WHERE id = ?1",
    create_history: "CREATE TABLE {t}_h (pk BLOB NOT NULL, sk BLOB NOT NULL, seq INTEGER NOT NULL, \
                     at INTEGER NOT NULL, doc TEXT, version INTEGER, h INTEGER, expires INTEGER, \
                     PRIMARY KEY (pk, sk, seq)) WITHOUT ROWID;
                     CREATE INDEX {t}_h_at ON {t}_h (at)",
    drop_history: "DROP TABLE IF EXISTS {t}_h",
    start_history: "INSERT INTO {t}_h (pk, sk, seq, at, doc, version, h, expires) \
                    SELECT pk, sk, 0, 0, doc, version, h, expires FROM {t}",
    // SQLite takes the other columns of an aggregate query with max() from the row with the max.
    restore_history: "INSERT INTO {to} (pk, sk, doc, version, h, expires) \
                      SELECT pk, sk, doc, version, h, expires FROM \
                      (SELECT pk, sk, doc, version, h, expires, max(seq) FROM {from}_h WHERE at <= ?1 \
                       GROUP BY pk, sk) WHERE doc IS NOT NULL",
    fold_history: "DELETE FROM {t}_h WHERE (pk, sk, seq) IN (SELECT pk, sk, seq FROM {t}_h AS o WHERE at <= ?1 AND \
                   (EXISTS (SELECT 1 FROM {t}_h AS n WHERE n.pk = o.pk AND n.sk = o.sk AND n.seq > o.seq AND n.at <= ?1) \
                    OR (doc IS NULL AND NOT EXISTS \
                        (SELECT 1 FROM {t}_h AS e WHERE e.pk = o.pk AND e.sk = o.sk AND e.seq < o.seq))) LIMIT ?2)",
    // max(seq) picks the row of the other columns, as in restore_history. A key changed in the
    // window when its latest entry is stamped after `from` (a key's stamps grow with its
    // sequence numbers).
    read_history_settings: None,
    read_history: "SELECT pk, sk, at, (SELECT e.doc FROM {t}_h AS e WHERE e.pk = n.pk AND e.sk = n.sk AND e.at <= ?2 \
                                       ORDER BY e.seq DESC LIMIT 1) AS old, doc, max(seq) \
                   FROM {t}_h AS n WHERE at <= ?1 AND (pk, sk) >= (?3, ?4) GROUP BY pk, sk \
                   HAVING at > ?2 AND (doc IS NOT NULL OR old IS NOT NULL) ORDER BY pk, sk LIMIT ?5",
    history_tables: "SELECT account, name, description FROM tables WHERE description LIKE '%\"PointInTimeRecovery\"%'",
    system_backups: "SELECT account, arn, record FROM backups WHERE record LIKE '%\"BackupType\":\"SYSTEM\"%'",
};

const POSTGRES_CATALOG: Catalog = Catalog {
    insert_table: "INSERT INTO dynabox.tables (account, name, description, version) \
                   VALUES ($1, $2, $3::text::json, $4) ON CONFLICT (account, name) DO NOTHING RETURNING id",
    new_table_version: "SELECT nextval('dynabox.item_versions')",
    describe_table: "SELECT description::text, version FROM dynabox.tables WHERE account = $1 AND name = $2",
    description_at: "SELECT 1 FROM dynabox.tables WHERE account = $1 AND name = $2 AND version = $3",
    table_for_update: "SELECT id, version FROM dynabox.tables WHERE account = $1 AND name = $2 FOR UPDATE",
    update_description: "UPDATE dynabox.tables SET description = $2::text::json, version = $3 WHERE id = $1",
    list_tables: "SELECT name FROM dynabox.tables WHERE account = $1 AND name > $2 ORDER BY name LIMIT $3",
    accounts_with_table: "SELECT account FROM dynabox.tables WHERE name = $1 ORDER BY account",
    delete_table: "DELETE FROM dynabox.tables WHERE account = $1 AND name = $2 RETURNING id",
    table_indexes: "SELECT index_name FROM dynabox.keyspaces WHERE table_id = $1",
    delete_changes: "DELETE FROM dynabox.changes WHERE table_id = $1",
    insert_keyspace: "INSERT INTO dynabox.keyspaces (table_id, index_name, storage_table) VALUES ($1, $2, '') \
                      RETURNING id",
    name_keyspace: "UPDATE dynabox.keyspaces SET storage_table = 'ks_' || id WHERE id = $1",
    delete_keyspace: "DELETE FROM dynabox.keyspaces WHERE table_id = $1 AND index_name = $2 RETURNING storage_table",
    find_keyspace: "SELECT k.table_id, k.storage_table FROM dynabox.keyspaces AS k \
                    JOIN dynabox.tables AS t ON t.id = k.table_id \
                    WHERE t.account = $1 AND t.name = $2 AND k.index_name = $3",
    // KEY SHARE: enough to make UpdateTable's FOR UPDATE wait, while writers appending to the
    // change log (an UPDATE of `changes`, not of a key) still take their turns on the row.
    table_at: "SELECT 1 FROM dynabox.tables WHERE id = $1 AND version = $2 FOR KEY SHARE",
    next_change: "UPDATE dynabox.tables SET changes = changes + 1 WHERE id = $1 RETURNING changes",
    insert_change: "INSERT INTO dynabox.changes (table_id, seq, record) \
                    SELECT id, changes, $2::bytea FROM dynabox.tables WHERE id = $1",
    read_changes: "SELECT seq, record FROM dynabox.changes WHERE table_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    last_change: "SELECT changes FROM dynabox.tables WHERE id = $1",
    trim_changes: "DELETE FROM dynabox.changes WHERE (table_id, seq) IN \
                   (SELECT table_id, seq FROM dynabox.changes WHERE created < to_timestamp($1::int8) \
                    ORDER BY created LIMIT $2)",
    stale_changes: "SELECT count(*) FROM dynabox.changes WHERE created < to_timestamp($1::int8)",
    time_to_live_tables: "SELECT account, name FROM dynabox.tables \
                          WHERE description::text LIKE '%\"TimeToLiveAttribute\"%'",
    creating_indexes: "SELECT account, description::text FROM dynabox.tables \
                       WHERE description::text LIKE '%\"Creating\"%'",
    insert_account: "INSERT INTO dynabox.accounts (name, account_id, secret) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING RETURNING name",
    find_account: "SELECT account_id, secret, previous_secret FROM dynabox.accounts WHERE name = $1",
    list_accounts: "SELECT name, account_id, CASE WHEN previous_secret IS NULL THEN 0 ELSE 1 END::int8, \
                    extract(epoch FROM created)::int8 FROM dynabox.accounts ORDER BY name",
    delete_account: "DELETE FROM dynabox.accounts WHERE name = $1 RETURNING account_id",
    rotate_secret: "UPDATE dynabox.accounts SET previous_secret = secret, secret = $2 WHERE name = $1 \
                    RETURNING account_id",
    revoke_previous_secret: "UPDATE dynabox.accounts SET previous_secret = NULL WHERE name = $1 RETURNING account_id",
    create_storage_table: "CREATE TABLE {t} (pk bytea NOT NULL, sk bytea NOT NULL, doc json NOT NULL, \
                           version bigint NOT NULL, h bigint NOT NULL, expires bigint, PRIMARY KEY (pk, sk));
                           CREATE INDEX ON {t} (h, pk, sk);
                           CREATE INDEX ON {t} (expires) WHERE expires IS NOT NULL",
    drop_storage_table: "DROP TABLE IF EXISTS {t}",
    copy_items: "INSERT INTO {to} (pk, sk, doc, version, h, expires) SELECT pk, sk, doc, version, h, expires FROM {from}",
    unlimited_time: Some("SET LOCAL statement_timeout = 0"),
    insert_backup: "INSERT INTO dynabox.backups (account, arn, record) VALUES ($1, $2, $3::text::json) RETURNING id",
    find_backup: "SELECT id, record::text FROM dynabox.backups WHERE account = $1 AND arn = $2",
    list_backups: "SELECT arn, record::text FROM dynabox.backups WHERE account = $1 AND arn > $2 ORDER BY arn LIMIT $3",
    delete_backup: "DELETE FROM dynabox.backups WHERE account = $1 AND arn = $2 RETURNING id, record::text",
    next_history: None,
    settle_history: "SELECT dynabox.await_history('{t}_h'::regclass, $2) FROM dynabox.tables WHERE id = $1",
    create_history: "CREATE TABLE {t}_h (pk bytea NOT NULL, sk bytea NOT NULL, seq bigint NOT NULL, \
                     at bigint NOT NULL, doc json, version bigint, h bigint, expires bigint, \
                     PRIMARY KEY (pk, sk, seq));
                     CREATE INDEX ON {t}_h (at)",
    drop_history: "DROP TABLE IF EXISTS {t}_h",
    start_history: "INSERT INTO {t}_h (pk, sk, seq, at, doc, version, h, expires) \
                    SELECT pk, sk, 0, 0, doc, version, h, expires FROM {t}",
    restore_history: "INSERT INTO {to} (pk, sk, doc, version, h, expires) \
                      SELECT pk, sk, doc, version, h, expires FROM \
                      (SELECT DISTINCT ON (pk, sk) pk, sk, doc, version, h, expires FROM {from}_h WHERE at <= $1 \
                       ORDER BY pk, sk, seq DESC) AS latest WHERE doc IS NOT NULL",
    fold_history: "DELETE FROM {t}_h WHERE (pk, sk, seq) IN (SELECT pk, sk, seq FROM {t}_h AS o WHERE at <= $1 AND \
                   (EXISTS (SELECT 1 FROM {t}_h AS n WHERE n.pk = o.pk AND n.sk = o.sk AND n.seq > o.seq AND n.at <= $1) \
                    OR (doc IS NULL AND NOT EXISTS \
                        (SELECT 1 FROM {t}_h AS e WHERE e.pk = o.pk AND e.sk = o.sk AND e.seq < o.seq))) LIMIT $2)",
    // Not DISTINCT ON: the page's filters would need an outer query, for which PostgreSQL plans
    // the DISTINCT ON's sort over the whole history after `start`, every page. Nor a filter on
    // `at`, which lets it sort the window's entries instead of reading the primary key. An entry
    // is its key's latest at or before `to` when it has the greatest seq there, and the key
    // changed in the window when that is not its latest at or before `from`.
    // Once the history has statistics (or before, for the first runs of a connection) PostgreSQL
    // 15 plans this as a bitmap scan of everything after the start with a sort on top, and JIT-
    // compiles it: a page of 1,000 took up to 2 s on 200,000 items and an export grew with the
    // square of the table. Without bitmap scans and sorts it reads the primary key in order.
    read_history_settings: Some("SET LOCAL jit = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off"),
    read_history: "SELECT n.pk, n.sk, n.at, o.doc::text, n.doc::text FROM {t}_h AS n \
                   LEFT JOIN LATERAL (SELECT e.seq, e.doc FROM {t}_h AS e \
                                      WHERE e.pk = n.pk AND e.sk = n.sk AND e.at <= $2 ORDER BY e.seq DESC LIMIT 1) AS o \
                   ON true WHERE (n.pk, n.sk) >= ($3, $4) \
                   AND n.seq = (SELECT max(l.seq) FROM {t}_h AS l WHERE l.pk = n.pk AND l.sk = n.sk AND l.at <= $1) \
                   AND o.seq IS DISTINCT FROM n.seq AND (n.doc IS NOT NULL OR o.doc IS NOT NULL) \
                   ORDER BY n.pk, n.sk LIMIT $5",
    history_tables: "SELECT account, name, description::text FROM dynabox.tables \
                     WHERE description::text LIKE '%\"PointInTimeRecovery\"%'",
    system_backups: "SELECT account, arn, record::text FROM dynabox.backups \
                     WHERE record::text LIKE '%\"BackupType\":\"SYSTEM\"%'",
};

/// Puts bind document, hash and expiry as ?3 to ?5, a put at a version the version as ?6, and
/// the new version last (?6, or ?7 after an expected version).
const SQLITE_ITEMS: TableSql<&str> = TableSql {
    get: "SELECT doc, version FROM {t} WHERE pk = ?1 AND sk = ?2",
    upsert: "INSERT INTO {t} (pk, sk, doc, h, expires, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (pk, sk) DO UPDATE SET doc = excluded.doc, expires = excluded.expires, \
             version = excluded.version",
    insert_new: "INSERT INTO {t} (pk, sk, doc, h, expires, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (pk, sk) DO NOTHING",
    update_at: "UPDATE {t} SET doc = ?3, h = ?4, expires = ?5, version = ?7 \
                WHERE pk = ?1 AND sk = ?2 AND version = ?6",
    delete: "DELETE FROM {t} WHERE pk = ?1 AND sk = ?2",
    exists: "SELECT 1 FROM {t} WHERE pk = ?1 AND sk = ?2",
    exists_at: "SELECT 1 FROM {t} WHERE pk = ?1 AND sk = ?2 AND version = ?3",
    delete_at: "DELETE FROM {t} WHERE pk = ?1 AND sk = ?2 AND version = ?3",
    // octet_length: bytes, where length() would count characters.
    stats: "SELECT count(*), coalesce(sum(octet_length(doc)), 0) FROM {t}",
    expired: "SELECT pk, sk FROM {t} WHERE expires <= ?1 ORDER BY expires LIMIT ?2",
    append_history: "INSERT INTO {t}_h (pk, sk, seq, at, doc, version, h, expires) \
                     SELECT ?2, ?3, t.history, t.history_at, i.doc, i.version, i.h, i.expires \
                     FROM tables AS t LEFT JOIN {t} AS i ON i.pk = ?2 AND i.sk = ?3 WHERE t.id = ?1",
};

/// Puts bind document, hash and expiry as $3 to $5, and a put at a version the version as $6.
const POSTGRES_ITEMS: TableSql<&str> = TableSql {
    get: "SELECT doc::text, version FROM {t} WHERE pk = $1 AND sk = $2",
    upsert: "INSERT INTO {t} (pk, sk, doc, h, expires, version) \
             VALUES ($1, $2, $3::text::json, $4, $5, nextval('dynabox.item_versions')) \
             ON CONFLICT (pk, sk) DO UPDATE SET doc = EXCLUDED.doc, expires = EXCLUDED.expires, \
             version = EXCLUDED.version",
    insert_new: "INSERT INTO {t} (pk, sk, doc, h, expires, version) \
                 VALUES ($1, $2, $3::text::json, $4, $5, nextval('dynabox.item_versions')) \
                 ON CONFLICT (pk, sk) DO NOTHING",
    update_at: "UPDATE {t} SET doc = $3::text::json, h = $4, expires = $5, version = nextval('dynabox.item_versions') \
                WHERE pk = $1 AND sk = $2 AND version = $6",
    delete: "DELETE FROM {t} WHERE pk = $1 AND sk = $2",
    // FOR SHARE: a guard holds until the group commits, so no other group changes a checked item
    // in between (SQLite's write transactions are serial anyway). Two groups that check what the
    // other writes then deadlock, and one of them is told to decide again.
    exists: "SELECT 1 FROM {t} WHERE pk = $1 AND sk = $2 FOR SHARE",
    exists_at: "SELECT 1 FROM {t} WHERE pk = $1 AND sk = $2 AND version = $3 FOR SHARE",
    delete_at: "DELETE FROM {t} WHERE pk = $1 AND sk = $2 AND version = $3",
    // The bytes of the documents as returned, not their compressed size on disk (pg_column_size):
    // the same measure as the read budget and the embedded store.
    stats: "SELECT count(*), coalesce(sum(octet_length(doc::text)), 0)::bigint FROM {t}",
    expired: "SELECT pk, sk FROM {t} WHERE expires <= $1 ORDER BY expires LIMIT $2",
    append_history: "INSERT INTO {t}_h (pk, sk, seq, at, doc, version, h, expires) \
                     SELECT $2::bytea, $3::bytea, nextval('dynabox.history_entries'), dynabox.history_stamp(), \
                     i.doc, i.version, i.h, i.expires \
                     FROM dynabox.tables AS t LEFT JOIN {t} AS i ON i.pk = $2::bytea AND i.sk = $3::bytea WHERE t.id = $1",
};

const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("../migrations/sqlite/0001_catalog.sql") },
    Migration { version: 2, sql: include_str!("../migrations/sqlite/0002_version_clock.sql") },
    Migration { version: 3, sql: include_str!("../migrations/sqlite/0003_accounts_keyspaces_changes.sql") },
    Migration { version: 4, sql: include_str!("../migrations/sqlite/0004_credentials.sql") },
    Migration { version: 5, sql: include_str!("../migrations/sqlite/0005_changes_by_age.sql") },
    Migration { version: 6, sql: include_str!("../migrations/sqlite/0006_backups.sql") },
    Migration { version: 7, sql: include_str!("../migrations/sqlite/0007_history.sql") },
];

const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("../migrations/postgres/0001_catalog.sql") },
    Migration { version: 2, sql: include_str!("../migrations/postgres/0002_item_versions.sql") },
    Migration { version: 3, sql: include_str!("../migrations/postgres/0003_json_documents.sql") },
    Migration { version: 4, sql: include_str!("../migrations/postgres/0004_accounts_keyspaces_changes.sql") },
    Migration { version: 5, sql: include_str!("../migrations/postgres/0005_credentials.sql") },
    Migration { version: 6, sql: include_str!("../migrations/postgres/0006_changes_by_age.sql") },
    Migration { version: 7, sql: include_str!("../migrations/postgres/0007_backups.sql") },
    Migration { version: 8, sql: include_str!("../migrations/postgres/0008_history.sql") },
];

/// Serialises PostgreSQL migrations of processes starting together; "dynabox" in ASCII.
pub const POSTGRES_MIGRATION_LOCK: i64 = 0x0064_796e_6162_6f78;

impl Dialect {
    pub fn catalog(self) -> &'static Catalog {
        match self {
            Dialect::Sqlite => &SQLITE_CATALOG,
            Dialect::Postgres => &POSTGRES_CATALOG,
        }
    }

    pub fn items(self) -> &'static TableSql<&'static str> {
        match self {
            Dialect::Sqlite => &SQLITE_ITEMS,
            Dialect::Postgres => &POSTGRES_ITEMS,
        }
    }

    pub fn migrations(self) -> &'static [Migration] {
        match self {
            Dialect::Sqlite => SQLITE_MIGRATIONS,
            Dialect::Postgres => POSTGRES_MIGRATIONS,
        }
    }

    /// The `n`th positional parameter, from 1.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// Starts a transaction that writes: SQLite takes the write lock at once, so a transaction
    /// never fails half-way for want of it.
    pub fn begin(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// The storage table as statements name it.
    pub fn qualified(self, storage_table: &str) -> String {
        match self {
            Dialect::Sqlite => storage_table.to_string(),
            Dialect::Postgres => format!("dynabox.{storage_table}"),
        }
    }

    /// Whether a put binds its new version (SQLite), rather than the statement taking it.
    pub fn binds_new_version(self) -> bool {
        self == Dialect::Sqlite
    }
}
