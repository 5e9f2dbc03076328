//! The PostgreSQL store.
//!
//! Everything dynabox creates lives in the schema `dynabox` (catalog `dynabox.tables`, migrations
//! `dynabox.schema_migrations`, item tables `dynabox.items_<n>`), rather than as `dynabox_*`
//! objects in `public`: the names cannot collide with the user's tables, they do not depend on
//! the connection's `search_path`, and an operator can grant read access to (or drop) dynabox's
//! data as one unit. Documents are `json` (not `jsonb`, which cannot hold U+0000), so items can be
//! queried with SQL: `SELECT doc->'name'->>'S' FROM dynabox.items_7`. Item versions come from the
//! sequence `dynabox.item_versions`, so no key ever gets a version twice.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::{BufMut, BytesMut};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use dynabox_handler::storage::{ItemKey, Page, ScanRequest, StorageError, StoredItem, Write, WriteError};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, accepts, to_sql_checked};
use tokio_postgres::{NoTls, Row};

use super::{Migration, PageBuilder, TableCache, TableEntry, TableSql, checked_storage_table, plan};

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("migrations/postgres/0001_catalog.sql") },
    Migration { version: 2, sql: include_str!("migrations/postgres/0002_item_versions.sql") },
    Migration { version: 3, sql: include_str!("migrations/postgres/0003_json_documents.sql") },
];

/// Serialises migrations of processes starting together; the value is "dynabox" in ASCII.
const MIGRATION_LOCK: i64 = 0x0064_796e_6162_6f78;

const CREATE_TABLE: &str = "CREATE TABLE {t} (pk bytea NOT NULL, sk bytea NOT NULL, doc json NOT NULL, \
                            version bigint NOT NULL, PRIMARY KEY (pk, sk))";

/// A scan, parameters $1 limit, $2 byte budget, then (scan_after) $3 pk, $4 sk. It walks the
/// index one key at a time, adding up document sizes, and stops at the limit or the budget, so
/// the server reads and sends only the rows of the page: a plain `LIMIT` would read `limit` rows
/// even when the budget ends the page after a few large ones. Sizes are measured as the text the
/// client receives (`octet_length(doc::text)`), so the page ends where [`PageBuilder`] ends it.
macro_rules! scan_sql {
    ($start:literal) => {
        concat!(
            "WITH RECURSIVE page AS (
                (SELECT pk, sk, doc, version, octet_length(doc::text)::bigint AS total, 1::bigint AS n
                   FROM {t} ",
            $start,
            " ORDER BY pk, sk LIMIT 1)
                UNION ALL
                SELECT next.pk, next.sk, next.doc, next.version, page.total + octet_length(next.doc::text), page.n + 1
                  FROM page CROSS JOIN LATERAL (
                      SELECT t.pk, t.sk, t.doc, t.version FROM {t} AS t
                       WHERE (t.pk, t.sk) > (page.pk, page.sk) ORDER BY t.pk, t.sk LIMIT 1) next
                 WHERE page.n < $1 AND page.total < $2
            )
            SELECT pk, sk, doc, version FROM page ORDER BY n"
        )
    };
}

const SQL: TableSql<&str> = TableSql {
    get: "SELECT doc, version FROM {t} WHERE pk = $1 AND sk = $2",
    scan: scan_sql!(""),
    scan_after: scan_sql!("WHERE (pk, sk) > ($3, $4)"),
    upsert: "INSERT INTO {t} (pk, sk, doc, version) VALUES ($1, $2, $3, nextval('dynabox.item_versions')) \
             ON CONFLICT (pk, sk) DO UPDATE SET doc = EXCLUDED.doc, version = EXCLUDED.version",
    insert_new: "INSERT INTO {t} (pk, sk, doc, version) VALUES ($1, $2, $3, nextval('dynabox.item_versions')) \
                 ON CONFLICT (pk, sk) DO NOTHING",
    update_at: "UPDATE {t} SET doc = $3, version = nextval('dynabox.item_versions') \
                WHERE pk = $1 AND sk = $2 AND version = $4",
    delete: "DELETE FROM {t} WHERE pk = $1 AND sk = $2",
    exists: "SELECT 1 FROM {t} WHERE pk = $1 AND sk = $2",
    delete_at: "DELETE FROM {t} WHERE pk = $1 AND sk = $2 AND version = $3",
    // The bytes of the documents as returned, not their compressed size on disk (pg_column_size):
    // the same measure as the scan budget and the embedded store.
    stats: "SELECT count(*), coalesce(sum(octet_length(doc::text)), 0)::bigint FROM {t}",
};

pub struct PostgresStore {
    pool: Pool,
    wait_timeout: Duration,
    tables: TableCache,
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
        Ok(PostgresStore { pool, wait_timeout, tables: TableCache::default(), location })
    }

    pub(super) fn describe(&self) -> String {
        format!("PostgreSQL at {}", self.location)
    }

    pub(super) async fn create_table(&self, name: &str, description: &[u8]) -> Result<bool, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(internal)?;
        let row = query_opt(
            &tx,
            "INSERT INTO dynabox.tables (name, description) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING \
             RETURNING storage_table",
            &[&name, &Json(description)],
        )
        .await
        .map_err(internal)?;
        let Some(row) = row else { return Ok(false) };
        let entry = entry(row.get(0), description.to_vec())?;
        tx.batch_execute(&CREATE_TABLE.replace("{t}", &qualified(row.get(0))?)).await.map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        self.tables.insert(name, entry);
        Ok(true)
    }

    pub(super) async fn describe_table(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        // The handler describes the table on every request: a cache hit takes no connection.
        if let Some(entry) = self.tables.get(name) {
            return Ok(Some(entry.description.clone()));
        }
        let client = self.client().await?;
        Ok(self.table(&client, name).await?.map(|t| t.description.clone()))
    }

    pub(super) async fn list_tables(&self, start_after: Option<&str>, limit: u32) -> Result<Vec<String>, StorageError> {
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT name FROM dynabox.tables WHERE name > coalesce($1, '') ORDER BY name LIMIT $2",
            &[&start_after, &i64::from(limit)],
        )
        .await
        .map_err(internal)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(super) async fn delete_table(&self, name: &str) -> Result<bool, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(internal)?;
        let row = query_opt(&tx, "DELETE FROM dynabox.tables WHERE name = $1 RETURNING storage_table", &[&name])
            .await
            .map_err(internal)?;
        let deleted = match row {
            Some(row) => {
                tx.batch_execute(&format!("DROP TABLE IF EXISTS {}", qualified(row.get(0))?))
                    .await
                    .map_err(internal)?;
                tx.commit().await.map_err(internal)?;
                true
            }
            None => false,
        };
        // After the commit, so that no concurrent lookup re-caches the table in between.
        self.forget(name);
        Ok(deleted)
    }

    pub(super) async fn keyspace_stats(&self, keyspace: &str) -> Result<(u64, u64), StorageError> {
        let client = self.client().await?;
        let table = self.existing_table(&client, keyspace).await?;
        let row = query_one(&client, &table.sql.stats, &[]).await.map_err(|e| self.failed(keyspace, e))?;
        Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
    }

    pub(super) async fn get(&self, keyspace: &str, key: &ItemKey) -> Result<Option<StoredItem>, StorageError> {
        let client = self.client().await?;
        let table = self.existing_table(&client, keyspace).await?;
        let row = query_opt(&client, &table.sql.get, &[&key.partition, &key.sort])
            .await
            .map_err(|e| self.failed(keyspace, e))?;
        Ok(row.map(|r| StoredItem { key: key.clone(), document: r.get::<_, JsonText>(0).0, version: version(&r, 1) }))
    }

    pub(super) async fn scan(&self, request: &ScanRequest) -> Result<Page, StorageError> {
        let client = self.client().await?;
        let table = self.existing_table(&client, &request.keyspace).await?;
        let (limit, budget) = (i64::from(request.limit), i64::from(request.byte_budget));
        let rows = match &request.after {
            None => query(&client, &table.sql.scan, &[&limit, &budget]).await,
            Some(after) => {
                query(&client, &table.sql.scan_after, &[&limit, &budget, &after.partition, &after.sort]).await
            }
        }
        .map_err(|e| self.failed(&request.keyspace, e))?;
        let mut page = PageBuilder::new(request);
        for row in rows {
            if !page.wants_more() {
                break;
            }
            page.push(StoredItem {
                key: ItemKey { partition: row.get(0), sort: row.get(1) },
                document: row.get::<_, JsonText>(2).0,
                version: version(&row, 3),
            });
        }
        Ok(page.finish())
    }

    /// One write is one statement; a group is a transaction, rolled back (by dropping it) when a
    /// guard fails.
    pub(super) async fn write(&self, writes: &[Write]) -> Result<(), WriteError> {
        let mut client = self.client().await?;
        let mut tables = Vec::with_capacity(writes.len());
        for write in writes {
            tables.push(self.existing_table(&client, &write.keyspace).await?);
        }
        if let ([write], [table]) = (writes, tables.as_slice()) {
            return match self.apply(&client, write, table).await? {
                true => Ok(()),
                false => Err(WriteError::GuardFailed(0)),
            };
        }
        let tx = client.transaction().await.map_err(internal)?;
        for (index, (write, table)) in writes.iter().zip(&tables).enumerate() {
            if !self.apply(&tx, write, table).await? {
                return Err(WriteError::GuardFailed(index as u32));
            }
        }
        tx.commit().await.map_err(internal)?;
        Ok(())
    }

    /// Runs the statement of one write; whether its guard held.
    async fn apply(
        &self,
        client: &impl GenericClient,
        write: &Write,
        table: &TableEntry,
    ) -> Result<bool, StorageError> {
        let plan = plan(write, &table.sql);
        let document = plan.document.map(Json);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&write.key.partition, &write.key.sort];
        if let Some(document) = &document {
            params.push(document);
        }
        if let Some(version) = &plan.version {
            params.push(version);
        }
        let rows = execute(client, plan.sql, &params).await.map_err(|e| self.failed(&write.keyspace, e))?;
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

    /// The table from the cache, else from the catalog.
    async fn table(&self, client: &impl GenericClient, name: &str) -> Result<Option<Arc<TableEntry>>, StorageError> {
        if let Some(entry) = self.tables.get(name) {
            return Ok(Some(entry));
        }
        let row = query_opt(client, "SELECT storage_table, description FROM dynabox.tables WHERE name = $1", &[&name])
            .await
            .map_err(internal)?;
        match row {
            Some(row) => Ok(Some(self.tables.insert(name, entry(row.get(0), row.get::<_, JsonText>(1).0)?))),
            None => Ok(None),
        }
    }

    async fn existing_table(&self, client: &impl GenericClient, name: &str) -> Result<Arc<TableEntry>, StorageError> {
        self.table(client, name).await?.ok_or(StorageError::NoSuchKeyspace)
    }

    /// Maps an error of a statement on table `name`. A missing storage table means another
    /// process deleted the table since this one cached it.
    fn failed(&self, name: &str, e: tokio_postgres::Error) -> StorageError {
        if e.code() == Some(&SqlState::UNDEFINED_TABLE) {
            self.forget(name);
            return StorageError::NoSuchKeyspace;
        }
        internal(e)
    }

    /// Drops a table from the cache, and its statements from every pooled connection.
    fn forget(&self, name: &str) {
        if let Some(entry) = self.tables.remove(name) {
            for sql in entry.sql.all() {
                self.pool.manager().statement_caches.remove(sql, &[]);
            }
        }
    }
}

fn entry(storage_table: &str, description: Vec<u8>) -> Result<TableEntry, StorageError> {
    Ok(TableEntry { description, sql: SQL.render(&qualified(storage_table)?) })
}

fn qualified(storage_table: &str) -> Result<String, StorageError> {
    Ok(format!("dynabox.{}", checked_storage_table(storage_table)?))
}

fn version(row: &Row, column: usize) -> u64 {
    // Versions start at 1 and only grow.
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
