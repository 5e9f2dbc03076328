//! The PostgreSQL store.
//!
//! Everything dynabox creates lives in the schema `dynabox` (catalog `dynabox.tables` and
//! `dynabox.keyspaces`, change logs `dynabox.changes`, migrations `dynabox.schema_migrations`,
//! storage tables `dynabox.ks_<n>`), rather than as `dynabox_*` objects in `public`: the names
//! cannot collide with the user's tables, they do not depend on the connection's `search_path`,
//! and an operator can grant read access to (or drop) dynabox's data as one unit. Documents are
//! `json` (not `jsonb`, which cannot hold U+0000), so items can be queried with SQL:
//! `SELECT doc->'name'->>'S' FROM dynabox.ks_7`. Item versions come from the sequence
//! `dynabox.item_versions`, so no key ever gets a version twice.
//!
//! Several processes may serve one database: descriptions are read from the catalog on every
//! call, so each sees the others' CreateTable, UpdateTable and DeleteTable at once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::{BufMut, BytesMut};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction};
use dynabox_handler::storage::{
    Committed, ItemKey, Keyspace, Page, QueryRequest, ScanRequest, StorageError, StoredItem, TableChange, TableRecord,
    Write, WriteError,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, accepts, to_sql_checked};
use tokio_postgres::{NoTls, Row};

use super::{
    CREATING_INDEXES, KeyspaceCache, KeyspaceEntry, Migration, PageBuilder, ScanParam, TableSql, checked_storage_table,
    index_column, item_write, plan, query_sql, scan_sql, write_keyspace,
};

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("migrations/postgres/0001_catalog.sql") },
    Migration { version: 2, sql: include_str!("migrations/postgres/0002_item_versions.sql") },
    Migration { version: 3, sql: include_str!("migrations/postgres/0003_json_documents.sql") },
    Migration { version: 4, sql: include_str!("migrations/postgres/0004_accounts_keyspaces_changes.sql") },
];

/// Serialises migrations of processes starting together; the value is "dynabox" in ASCII.
const MIGRATION_LOCK: i64 = 0x0064_796e_6162_6f78;

const CREATE_TABLE: &str = "CREATE TABLE {t} (pk bytea NOT NULL, sk bytea NOT NULL, doc json NOT NULL, \
                            version bigint NOT NULL, h bigint NOT NULL, expires bigint, PRIMARY KEY (pk, sk));
                            CREATE INDEX ON {t} (h, pk, sk);
                            CREATE INDEX ON {t} (expires) WHERE expires IS NOT NULL";

/// Puts bind document, hash and expiry as $3 to $5, and a put at a version the version as $6.
const SQL: TableSql<&str> = TableSql {
    get: "SELECT doc, version FROM {t} WHERE pk = $1 AND sk = $2",
    upsert: "INSERT INTO {t} (pk, sk, doc, h, expires, version) \
             VALUES ($1, $2, $3, $4, $5, nextval('dynabox.item_versions')) \
             ON CONFLICT (pk, sk) DO UPDATE SET doc = EXCLUDED.doc, expires = EXCLUDED.expires, \
             version = EXCLUDED.version",
    insert_new: "INSERT INTO {t} (pk, sk, doc, h, expires, version) \
                 VALUES ($1, $2, $3, $4, $5, nextval('dynabox.item_versions')) ON CONFLICT (pk, sk) DO NOTHING",
    update_at: "UPDATE {t} SET doc = $3, h = $4, expires = $5, version = nextval('dynabox.item_versions') \
                WHERE pk = $1 AND sk = $2 AND version = $6",
    delete: "DELETE FROM {t} WHERE pk = $1 AND sk = $2",
    exists: "SELECT 1 FROM {t} WHERE pk = $1 AND sk = $2",
    exists_at: "SELECT 1 FROM {t} WHERE pk = $1 AND sk = $2 AND version = $3",
    delete_at: "DELETE FROM {t} WHERE pk = $1 AND sk = $2 AND version = $3",
    // The bytes of the documents as returned, not their compressed size on disk (pg_column_size):
    // the same measure as the read budget and the embedded store.
    stats: "SELECT count(*), coalesce(sum(octet_length(doc::text)), 0)::bigint FROM {t}",
};

/// Queries and scans read in chunks that start this small and grow fourfold, so a page that the
/// byte budget ends after a few large items does not make the server read `limit` rows.
const FIRST_CHUNK: u32 = 16;

/// Runs `$statement` (an expression that uses `$entry`, the keyspace's cache entry) on an
/// existing keyspace, and once more after a fresh lookup if its storage table is gone (another
/// process dropped it, and may have made the keyspace anew).
macro_rules! on_keyspace {
    ($store:expr, $client:expr, $account:expr, $keyspace:expr, |$entry:ident| $statement:expr) => {{
        let mut retried = false;
        loop {
            let $entry = $store.keyspace($client, $account, $keyspace).await?;
            match $statement {
                Err(e) if !retried && e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                    $store.forget($account, &$keyspace.table);
                    retried = true;
                }
                result => break result.map_err(|e| $store.failed_on($account, &$keyspace.table, e)),
            }
        }
    }};
}

pub struct PostgresStore {
    pool: Pool,
    wait_timeout: Duration,
    keyspaces: KeyspaceCache,
    location: String,
}

impl PostgresStore {
    pub(super) async fn connect(url: &str, pool_size: usize, wait_timeout: Duration) -> anyhow::Result<PostgresStore> {
        let mut config: tokio_postgres::Config = url.parse().context("parsing the PostgreSQL connection string")?;
        let location = location(&config);
        // The server enforces the timeout on every statement: a statement it cancels rolls back,
        // so a write that times out has applied nothing, which a timeout on the client side could
        // not tell. Lock waits count.
        let timeout = format!("-c statement_timeout={}", wait_timeout.as_millis());
        let options = match config.get_options() {
            Some(options) => format!("{options} {timeout}"),
            None => timeout,
        };
        config.options(&options).connect_timeout(wait_timeout);
        // Fast recycling: no test query when a connection is taken from the pool, so an item
        // operation is one round trip.
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(pool_size).build()?;
        let mut client = pool.get().await.with_context(|| format!("connecting to PostgreSQL at {location}"))?;
        migrate(&mut client).await.with_context(|| format!("migrating the schema at {location}"))?;
        drop(client);
        Ok(PostgresStore { pool, wait_timeout, keyspaces: KeyspaceCache::default(), location })
    }

    pub(super) fn describe(&self) -> String {
        format!("PostgreSQL at {}", self.location)
    }

    pub(super) async fn create_table(
        &self,
        account: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<bool, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(internal)?;
        let row = query_opt(
            &tx,
            "INSERT INTO dynabox.tables (account, name, description, version) \
             VALUES ($1, $2, $3, nextval('dynabox.item_versions')) \
             ON CONFLICT (account, name) DO NOTHING RETURNING id",
            &[&account, &name, &Json(description)],
        )
        .await
        .map_err(internal)?;
        let Some(row) = row else { return Ok(false) };
        let id: i64 = row.get(0);
        for index in std::iter::once("").chain(indexes.iter().map(String::as_str)) {
            create_keyspace(&tx, id, index).await?;
        }
        tx.commit().await.map_err(internal)?;
        Ok(true)
    }

    pub(super) async fn describe_table(&self, account: &str, name: &str) -> Result<Option<TableRecord>, StorageError> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT description, version FROM dynabox.tables WHERE account = $1 AND name = $2",
            &[&account, &name],
        )
        .await
        .map_err(internal)?;
        Ok(row.map(|r| TableRecord { description: r.get::<_, JsonText>(0).0, version: r.get::<_, i64>(1) as u64 }))
    }

    pub(super) async fn update_table(
        &self,
        account: &str,
        name: &str,
        expected_version: u64,
        change: &TableChange<'_>,
    ) -> Result<Option<u64>, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(internal)?;
        // FOR UPDATE: waits for write groups guarded by the table's version (they hold it FOR
        // SHARE), so none commits on a description this change replaces.
        let row = query_opt(
            &tx,
            "SELECT id, version FROM dynabox.tables WHERE account = $1 AND name = $2 FOR UPDATE",
            &[&account, &name],
        )
        .await
        .map_err(internal)?;
        let row = row.ok_or(StorageError::NoSuchKeyspace)?;
        let (id, version): (i64, i64) = (row.get(0), row.get(1));
        if version as u64 != expected_version {
            return Ok(None);
        }
        // Description versions come from the item versions' sequence: they never repeat either.
        let row = query_one(
            &tx,
            "UPDATE dynabox.tables SET description = $2, version = nextval('dynabox.item_versions') \
             WHERE id = $1 RETURNING version",
            &[&id, &Json(change.description)],
        )
        .await
        .map_err(internal)?;
        let new_version: i64 = row.get(0);
        for index in change.drop_indexes {
            drop_keyspace(&tx, id, index).await?;
        }
        for index in change.create_indexes {
            create_keyspace(&tx, id, index).await?;
        }
        tx.commit().await.map_err(internal)?;
        self.forget(account, name);
        Ok(Some(new_version as u64))
    }

    pub(super) async fn list_tables(
        &self,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT name FROM dynabox.tables WHERE account = $1 AND name > coalesce($2, '') ORDER BY name LIMIT $3",
            &[&account, &start_after, &i64::from(limit)],
        )
        .await
        .map_err(internal)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(super) async fn delete_table(&self, account: &str, name: &str) -> Result<bool, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(internal)?;
        let row = query_opt(
            &tx,
            "DELETE FROM dynabox.tables WHERE account = $1 AND name = $2 RETURNING id",
            &[&account, &name],
        )
        .await
        .map_err(internal)?;
        let deleted = match row {
            Some(row) => {
                let id: i64 = row.get(0);
                let indexes = query(&tx, "SELECT index_name FROM dynabox.keyspaces WHERE table_id = $1", &[&id])
                    .await
                    .map_err(internal)?;
                for index in indexes.iter().map(|r| r.get::<_, String>(0)) {
                    drop_keyspace(&tx, id, &index).await?;
                }
                execute(&tx, "DELETE FROM dynabox.changes WHERE table_id = $1", &[&id]).await.map_err(internal)?;
                tx.commit().await.map_err(internal)?;
                true
            }
            None => false,
        };
        // After the commit, so that no concurrent lookup re-caches the table in between.
        self.forget(account, name);
        Ok(deleted)
    }

    pub(super) async fn tables_with_creating_indexes(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let client = self.client().await?;
        let sql = CREATING_INDEXES.replace("FROM tables", "FROM dynabox.tables");
        let rows = query(&client, &sql, &[]).await.map_err(internal)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get::<_, JsonText>(1).0)).collect())
    }

    pub(super) async fn keyspace_stats(&self, account: &str, keyspace: &Keyspace) -> Result<(u64, u64), StorageError> {
        let client = self.client().await?;
        let row = on_keyspace!(self, &client, account, keyspace, |entry| {
            query_one(&client, &entry.sql.stats, &[]).await
        })?;
        Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
    }

    pub(super) async fn get(
        &self,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
    ) -> Result<Option<StoredItem>, StorageError> {
        let client = self.client().await?;
        let row = on_keyspace!(self, &client, account, keyspace, |entry| {
            query_opt(&client, &entry.sql.get, &[&key.partition, &key.sort]).await
        })?;
        Ok(row.map(|r| StoredItem { key: key.clone(), document: r.get::<_, JsonText>(0).0, version: version(&r, 1) }))
    }

    pub(super) async fn query(&self, account: &str, request: &QueryRequest) -> Result<Page, StorageError> {
        let client = self.client().await?;
        let mut page = PageBuilder::new(request.limit, request.byte_budget);
        let mut chunk = QueryRequest { limit: FIRST_CHUNK, ..request.clone() };
        loop {
            chunk.limit = chunk.limit.min(request.limit - page_len(&page));
            let limit = i64::from(chunk.limit);
            let rows = on_keyspace!(self, &client, account, &request.keyspace, |entry| {
                let (sql, values) = query_sql(&entry.storage_table, &chunk, |n| format!("${n}"));
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![&chunk.partition];
                params.extend(values.iter().map(|v| v as &(dyn ToSql + Sync)));
                params.push(&limit);
                query(&client, &sql, &params).await
            })?;
            let exhausted = rows.len() < chunk.limit as usize;
            if !fill(&mut page, rows) || exhausted {
                return Ok(page.finish());
            }
            chunk.after = page.last_key();
            chunk.limit = chunk.limit.saturating_mul(4);
        }
    }

    pub(super) async fn scan(&self, account: &str, request: &ScanRequest) -> Result<Page, StorageError> {
        let client = self.client().await?;
        let mut page = PageBuilder::new(request.limit, request.byte_budget);
        let (mut after, mut chunk) = (request.after.clone(), FIRST_CHUNK);
        loop {
            chunk = chunk.min(request.limit - page_len(&page));
            let rows = on_keyspace!(self, &client, account, &request.keyspace, |entry| {
                let (sql, params) = scan_sql(&entry.storage_table, request, after.as_ref(), chunk, |n| format!("${n}"));
                let params: Vec<&(dyn ToSql + Sync)> = params
                    .iter()
                    .map(|param| match param {
                        ScanParam::Int(value) => value as &(dyn ToSql + Sync),
                        ScanParam::Bytes(value) => value,
                    })
                    .collect();
                query(&client, &sql, &params).await
            })?;
            let exhausted = rows.len() < chunk as usize;
            if !fill(&mut page, rows) || exhausted {
                return Ok(page.finish());
            }
            after = page.last_key();
            chunk = chunk.saturating_mul(4);
        }
    }

    /// A group with one item write is one statement; any other group is a transaction, rolled
    /// back (by dropping it) when a guard fails.
    pub(super) async fn write(&self, account: &str, writes: &[Write]) -> Result<Committed, WriteError> {
        let mut client = self.client().await?;
        let mut entries = Vec::with_capacity(writes.len());
        for write in writes {
            let keyspace = &write_keyspace(write);
            entries.push(self.keyspace(&client, account, keyspace).await?);
        }
        let mut committed = Committed::default();
        if let ([write @ (Write::Put { .. } | Write::Delete { .. })], [entry]) = (writes, entries.as_slice()) {
            return match self.apply(&client, account, write, entry, &mut committed).await? {
                true => Ok(committed),
                false => Err(WriteError::GuardFailed(0)),
            };
        }
        let tx = client.transaction().await.map_err(internal)?;
        for (index, (write, entry)) in writes.iter().zip(&entries).enumerate() {
            if !self.apply(&tx, account, write, entry, &mut committed).await? {
                return Err(WriteError::GuardFailed(index as u32));
            }
        }
        tx.commit().await.map_err(internal)?;
        Ok(committed)
    }

    /// Runs one write of a group; whether its guard held.
    async fn apply(
        &self,
        client: &impl GenericClient,
        account: &str,
        write: &Write,
        entry: &KeyspaceEntry,
        committed: &mut Committed,
    ) -> Result<bool, StorageError> {
        let failed = |e| self.failed(account, write, e);
        match write {
            Write::TableAt { version, .. } => {
                let version = i64::try_from(*version).unwrap_or(-1);
                // FOR SHARE: an UpdateTable waits until this group commits (see update_table).
                let sql = "SELECT 1 FROM dynabox.tables WHERE id = $1 AND version = $2 FOR SHARE";
                return Ok(query_opt(client, sql, &[&entry.table_id, &version]).await.map_err(failed)?.is_some());
            }
            Write::AppendChange { record, .. } => {
                let sql = "WITH next AS (UPDATE dynabox.tables SET changes = changes + 1 WHERE id = $1 \
                           RETURNING changes) \
                           INSERT INTO dynabox.changes (table_id, seq, record) SELECT $1, changes, $2 FROM next \
                           RETURNING seq";
                let row = query_one(client, sql, &[&entry.table_id, record]).await.map_err(failed)?;
                committed.change_sequences.push(row.get::<_, i64>(0) as u64);
                return Ok(true);
            }
            _ => {}
        }
        let Some(plan) = plan(write, &entry.sql) else { return Ok(true) };
        let key = item_write(write).expect("an item write").1;
        let put = plan.put.map(|(document, hash, expires)| (Json(document), hash, expires));
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&key.partition, &key.sort];
        if let Some((document, hash, expires)) = &put {
            params.extend([document as &(dyn ToSql + Sync), hash, expires]);
        }
        if let Some(version) = &plan.version {
            params.push(version);
        }
        let rows = execute(client, plan.sql, &params).await.map_err(failed)?;
        Ok(plan.check.holds(rows))
    }

    /// A pooled connection, waiting at most the wait timeout for one to be free.
    async fn client(&self) -> Result<Object, StorageError> {
        match tokio::time::timeout(self.wait_timeout, self.pool.get()).await {
            Ok(client) => client.map_err(internal),
            Err(_) => {
                Err(StorageError::Internal(format!("postgres: no connection free within {:?}", self.wait_timeout)))
            }
        }
    }

    /// The keyspace from the cache, else from the catalog.
    async fn keyspace(
        &self,
        client: &impl GenericClient,
        account: &str,
        keyspace: &Keyspace,
    ) -> Result<Arc<KeyspaceEntry>, StorageError> {
        if let Some(entry) = self.keyspaces.get(account, keyspace) {
            return Ok(entry);
        }
        let row = query_opt(
            client,
            "SELECT k.table_id, k.storage_table FROM dynabox.keyspaces AS k \
             JOIN dynabox.tables AS t ON t.id = k.table_id \
             WHERE t.account = $1 AND t.name = $2 AND k.index_name = $3",
            &[&account, &keyspace.table, &index_column(keyspace)],
        )
        .await
        .map_err(internal)?;
        let row = row.ok_or(StorageError::NoSuchKeyspace)?;
        Ok(self.keyspaces.insert(account, keyspace, entry(row.get(0), row.get(1))?))
    }

    /// Maps an error of a write's statement. A missing storage table means another process
    /// dropped the keyspace since this one cached it: the group fails as if it never existed.
    fn failed(&self, account: &str, write: &Write, e: tokio_postgres::Error) -> StorageError {
        self.failed_on(account, &write_keyspace(write).table, e)
    }

    fn failed_on(&self, account: &str, table: &str, e: tokio_postgres::Error) -> StorageError {
        if e.code() == Some(&SqlState::UNDEFINED_TABLE) {
            self.forget(account, table);
            return StorageError::NoSuchKeyspace;
        }
        internal(e)
    }

    /// Drops a table's keyspaces from the cache, and their statements from every pooled
    /// connection.
    fn forget(&self, account: &str, table: &str) {
        for entry in self.keyspaces.forget_table(account, table) {
            for statement in entry.sql.all() {
                self.pool.manager().statement_caches.remove(statement, &[]);
            }
        }
    }
}

/// Adds rows (pk, sk, doc, version) to the page; false once the page is full.
fn fill(page: &mut PageBuilder, rows: Vec<Row>) -> bool {
    for row in rows {
        if !page.wants_more() {
            return false;
        }
        page.push(StoredItem {
            key: ItemKey { partition: row.get(0), sort: row.get(1) },
            document: row.get::<_, JsonText>(2).0,
            version: version(&row, 3),
        });
    }
    page.wants_more()
}

fn page_len(page: &PageBuilder) -> u32 {
    page.len() as u32
}

fn entry(table_id: i64, storage_table: &str) -> Result<KeyspaceEntry, StorageError> {
    let storage_table = format!("dynabox.{}", checked_storage_table(storage_table)?);
    Ok(KeyspaceEntry { table_id, sql: SQL.render(&storage_table), storage_table })
}

/// Registers a keyspace of table `table_id` (`index` '' for the base) and creates its storage
/// table, named after the keyspace's id.
async fn create_keyspace(tx: &Transaction<'_>, table_id: i64, index: &str) -> Result<(), StorageError> {
    let row = query_one(
        tx,
        "WITH next AS (SELECT nextval(pg_get_serial_sequence('dynabox.keyspaces', 'id')) AS id) \
         INSERT INTO dynabox.keyspaces (id, table_id, index_name, storage_table) OVERRIDING SYSTEM VALUE \
         SELECT id, $1, $2, 'ks_' || id FROM next RETURNING storage_table",
        &[&table_id, &index],
    )
    .await
    .map_err(internal)?;
    let storage_table = format!("dynabox.{}", checked_storage_table(row.get(0))?);
    tx.batch_execute(&CREATE_TABLE.replace("{t}", &storage_table)).await.map_err(internal)
}

async fn drop_keyspace(tx: &Transaction<'_>, table_id: i64, index: &str) -> Result<(), StorageError> {
    let row = query_opt(
        tx,
        "DELETE FROM dynabox.keyspaces WHERE table_id = $1 AND index_name = $2 RETURNING storage_table",
        &[&table_id, &index],
    )
    .await
    .map_err(internal)?;
    if let Some(row) = row {
        let sql = format!("DROP TABLE IF EXISTS dynabox.{}", checked_storage_table(row.get(0))?);
        tx.batch_execute(&sql).await.map_err(internal)?;
    }
    Ok(())
}

fn version(row: &Row, column: usize) -> u64 {
    // Versions come from a sequence that starts at 1.
    row.get::<_, i64>(column) as u64
}

/// Applies pending migrations in one transaction. `pg_advisory_xact_lock` (not `pg_advisory_lock`)
/// makes processes starting together wait for each other, and is released by the commit or
/// rollback, so a failed migration cannot leave a pooled connection holding the lock.
async fn migrate(client: &mut Object) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS dynabox;
         CREATE TABLE IF NOT EXISTS dynabox.schema_migrations (
             version bigint PRIMARY KEY,
             applied timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await?;
    let applied: i64 =
        tx.query_one("SELECT coalesce(max(version), 0) FROM dynabox.schema_migrations", &[]).await?.get(0);
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        tx.batch_execute(migration.sql).await.with_context(|| format!("applying migration {}", migration.version))?;
        tx.execute("INSERT INTO dynabox.schema_migrations (version) VALUES ($1)", &[&migration.version]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `host:port/database` for the log, from the parsed config so that no password can slip in.
fn location(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let database = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("{}/{database}", hosts.join(","))
}

async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    client.query(&client.prepare_cached(sql).await?, params).await
}

async fn query_opt(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, tokio_postgres::Error> {
    client.query_opt(&client.prepare_cached(sql).await?, params).await
}

async fn query_one(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, tokio_postgres::Error> {
    client.query_one(&client.prepare_cached(sql).await?, params).await
}

/// Rows affected, or returned by a SELECT.
async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    client.execute(&client.prepare_cached(sql).await?, params).await
}

fn internal<E: std::error::Error + Send + Sync + 'static>(e: E) -> StorageError {
    // `{:#}` prints the cause chain: tokio-postgres alone says just "db error".
    StorageError::Internal(format!("postgres: {:#}", anyhow::Error::new(e)))
}

/// JSON text bound as `json`, whose binary format is the text itself, so documents pass through
/// the host without ever being parsed.
#[derive(Debug)]
struct Json<'a>(&'a [u8]);

impl ToSql for Json<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_slice(self.0);
        Ok(IsNull::No)
    }

    accepts!(JSON);
    to_sql_checked!();
}

/// A `json` column read as its text.
struct JsonText(Vec<u8>);

impl<'a> FromSql<'a> for JsonText {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(JsonText(raw.to_vec()))
    }

    accepts!(JSON);
}
