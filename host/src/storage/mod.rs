//! The host's storage backends: an embedded SQLite store and PostgreSQL. Both implement the
//! contract of `dynabox_handler::storage` (see that module for the semantics) as async methods on
//! [`Backend`], with the same types.
//!
//! Layout, the same in both: a catalog table maps each DynamoDB table name to its description and
//! to a storage table `items_<n>` with columns `pk`, `sk` (bytes, `sk` empty without a sort key),
//! `doc` (the DynamoDB JSON document) and `version`, primary key `(pk, sk)`. Table names are never
//! used as SQL identifiers; `<n>` comes from a counter that never hands out a number twice, so a
//! stale reference to a deleted table can never reach a newer one.
//!
//! Choices the contract leaves open, identical in both backends:
//! - Scan sets `more` when it stopped because of the limit or the byte budget, without looking
//!   whether anything follows: a page that ends exactly at the last item still says `more`, and
//!   the next scan returns an empty page with `more == false`. A byte budget of 0 still yields one
//!   item, so a scan always progresses.
//! - The writes of a group apply in order; each guard sees the effect of the earlier writes of
//!   the group. Guards are checked against the state at the moment the write runs.
//! - Documents come back byte for byte as written; their bytes are what the scan budget and
//!   `keyspace_stats` count.
//! - Versions: every put gives its key a version that key never had, from one clock per store
//!   (SQLite: a reserved block of a persistent counter; PostgreSQL: a sequence), so a guard that
//!   holds a version read before a delete can never match the key written again. Versions grow
//!   with each write of one process; across processes they are only unique. All puts of one group
//!   may share a version.

pub mod postgres;
pub mod sqlite;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dynabox_handler::storage::{Expect, ItemKey, Page, ScanRequest, StorageError, StoredItem, Write, WriteError};

pub enum Backend {
    Embedded(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
}

/// How long one storage call waits for a lock or a connection when nothing else is said.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

impl Backend {
    /// Embedded store in `dir` (created if missing; data survives restarts), or in memory when None.
    /// A call waits at most `wait_timeout` for another process's lock on the file.
    pub fn open_embedded(dir: Option<&Path>, wait_timeout: Duration) -> anyhow::Result<Backend> {
        Ok(Backend::Embedded(sqlite::SqliteStore::open(dir, wait_timeout)?))
    }

    /// Connects (pool of `pool_size` connections) and runs pending migrations. A call waits at
    /// most `wait_timeout` for a connection, and each statement runs at most that long (the server
    /// cancels it, so a write that times out is rolled back, never half-known).
    pub async fn connect_postgres(url: &str, pool_size: usize, wait_timeout: Duration) -> anyhow::Result<Backend> {
        Ok(Backend::Postgres(postgres::PostgresStore::connect(url, pool_size, wait_timeout).await?))
    }

    /// One line for the start-up log; never contains a password.
    pub fn describe(&self) -> String {
        match self {
            Backend::Embedded(s) => s.describe(),
            Backend::Postgres(s) => s.describe(),
        }
    }

    pub async fn create_table(&self, name: &str, description: &[u8]) -> Result<bool, StorageError> {
        match self {
            Backend::Embedded(s) => s.create_table(name, description),
            Backend::Postgres(s) => s.create_table(name, description).await,
        }
    }

    pub async fn describe_table(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match self {
            Backend::Embedded(s) => s.describe_table(name),
            Backend::Postgres(s) => s.describe_table(name).await,
        }
    }

    pub async fn list_tables(&self, start_after: Option<&str>, limit: u32) -> Result<Vec<String>, StorageError> {
        match self {
            Backend::Embedded(s) => s.list_tables(start_after, limit),
            Backend::Postgres(s) => s.list_tables(start_after, limit).await,
        }
    }

    pub async fn delete_table(&self, name: &str) -> Result<bool, StorageError> {
        match self {
            Backend::Embedded(s) => s.delete_table(name),
            Backend::Postgres(s) => s.delete_table(name).await,
        }
    }

    pub async fn keyspace_stats(&self, keyspace: &str) -> Result<(u64, u64), StorageError> {
        match self {
            Backend::Embedded(s) => s.keyspace_stats(keyspace),
            Backend::Postgres(s) => s.keyspace_stats(keyspace).await,
        }
    }

    pub async fn get(&self, keyspace: &str, key: &ItemKey) -> Result<Option<StoredItem>, StorageError> {
        match self {
            Backend::Embedded(s) => s.get(keyspace, key),
            Backend::Postgres(s) => s.get(keyspace, key).await,
        }
    }

    pub async fn scan(&self, request: &ScanRequest) -> Result<Page, StorageError> {
        match self {
            Backend::Embedded(s) => s.scan(request),
            Backend::Postgres(s) => s.scan(request).await,
        }
    }

    pub async fn write(&self, writes: &[Write]) -> Result<(), WriteError> {
        match self {
            Backend::Embedded(s) => s.write(writes),
            Backend::Postgres(s) => s.write(writes).await,
        }
    }
}

/// A schema migration; versions start at 1 and are applied in order.
struct Migration {
    version: i64,
    sql: &'static str,
}

/// The statements on one storage table, as templates in which `{t}` stands for the table (`S` =
/// `&'static str`) or rendered for one table (`S` = `String`). Parameters, by position:
/// `get`, `exists`, `delete`: pk, sk. `upsert`, `insert_new`: pk, sk, doc.
/// `update_at`: pk, sk, doc, expected version. `delete_at`: pk, sk, expected version. `stats`: none.
/// `scan`, `scan_after`, and how a put gets its new version: dialect-specific, see the backend.
struct TableSql<S> {
    get: S,
    scan: S,
    scan_after: S,
    /// Put without guard.
    upsert: S,
    /// Put if absent: affects no row when the key exists.
    insert_new: S,
    /// Put at a version: affects no row unless the key exists at that version.
    update_at: S,
    delete: S,
    /// Returns a row when the key exists (the guard of a delete expecting absence).
    exists: S,
    /// Delete at a version: affects no row unless the key exists at that version.
    delete_at: S,
    /// Item count and the sum of document byte lengths.
    stats: S,
}

impl TableSql<&'static str> {
    fn render(&self, table: &str) -> TableSql<String> {
        let r = |template: &str| template.replace("{t}", table);
        TableSql {
            get: r(self.get),
            scan: r(self.scan),
            scan_after: r(self.scan_after),
            upsert: r(self.upsert),
            insert_new: r(self.insert_new),
            update_at: r(self.update_at),
            delete: r(self.delete),
            exists: r(self.exists),
            delete_at: r(self.delete_at),
            stats: r(self.stats),
        }
    }
}

impl TableSql<String> {
    fn all(&self) -> [&str; 10] {
        [
            &self.get,
            &self.scan,
            &self.scan_after,
            &self.upsert,
            &self.insert_new,
            &self.update_at,
            &self.delete,
            &self.exists,
            &self.delete_at,
            &self.stats,
        ]
    }
}

/// What the process knows about one table: enough to serve items without reading the catalog.
struct TableEntry {
    description: Vec<u8>,
    sql: TableSql<String>,
}

/// Table name → [`TableEntry`], so item operations never read the catalog. Only this process's
/// own create/delete invalidate it, plus a statement that finds its storage table gone; another
/// replica's delete is noticed that way, a change it makes otherwise goes unseen.
// TODO: cross-replica coherence (PostgreSQL LISTEN/NOTIFY on catalog changes) comes later.
#[derive(Default)]
struct TableCache {
    tables: RwLock<HashMap<String, Arc<TableEntry>>>,
}

impl TableCache {
    fn get(&self, name: &str) -> Option<Arc<TableEntry>> {
        self.tables.read().unwrap().get(name).cloned()
    }

    fn insert(&self, name: &str, entry: TableEntry) -> Arc<TableEntry> {
        let entry = Arc::new(entry);
        self.tables.write().unwrap().insert(name.to_string(), entry.clone());
        entry
    }

    fn remove(&self, name: &str) -> Option<Arc<TableEntry>> {
        self.tables.write().unwrap().remove(name)
    }
}

/// Storage tables are named `items_<n>`. The name is read back from the catalog and spliced into
/// SQL, so anything else there is refused rather than executed.
fn checked_storage_table(name: &str) -> Result<&str, StorageError> {
    match name.strip_prefix("items_") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Ok(name),
        _ => Err(StorageError::Internal(format!("catalog names an invalid storage table {name:?}"))),
    }
}

/// The one statement that carries out a write, and how to tell whether its guard held.
struct Plan<'a> {
    sql: &'a str,
    /// The document, for puts.
    document: Option<&'a [u8]>,
    /// The expected version, for guarded writes at a version.
    version: Option<i64>,
    check: Check,
}

enum Check {
    None,
    /// The guard held when the statement affected one row.
    OneRow,
    /// The guard held when the statement returned no row.
    NoRow,
}

impl Check {
    fn holds(&self, rows: u64) -> bool {
        match self {
            Check::None => true,
            Check::OneRow => rows == 1,
            Check::NoRow => rows == 0,
        }
    }
}

fn plan<'a>(write: &'a Write, sql: &'a TableSql<String>) -> Plan<'a> {
    // No stored version is negative, so a version beyond i64 simply never matches.
    let at = |v: u64| Some(i64::try_from(v).unwrap_or(-1));
    let (sql, version, check) = match (&write.document, write.expect) {
        (Some(_), Expect::Anything) => (&sql.upsert, None, Check::None),
        (Some(_), Expect::Absent) => (&sql.insert_new, None, Check::OneRow),
        (Some(_), Expect::Version(v)) => (&sql.update_at, at(v), Check::OneRow),
        (None, Expect::Anything) => (&sql.delete, None, Check::None),
        (None, Expect::Absent) => (&sql.exists, None, Check::NoRow),
        (None, Expect::Version(v)) => (&sql.delete_at, at(v), Check::OneRow),
    };
    Plan { sql, document: write.document.as_deref(), version, check }
}

/// Collects a scan page and decides where it stops (see the module doc for `more`).
struct PageBuilder {
    page: Page,
    limit: usize,
    byte_budget: u64,
    bytes: u64,
}

impl PageBuilder {
    fn new(request: &ScanRequest) -> Self {
        PageBuilder {
            page: Page { items: Vec::new(), more: request.limit == 0 },
            limit: request.limit as usize,
            byte_budget: u64::from(request.byte_budget),
            bytes: 0,
        }
    }

    /// Whether the page takes another item.
    fn wants_more(&self) -> bool {
        !self.page.more
    }

    /// Adds the next item in key order.
    fn push(&mut self, item: StoredItem) {
        self.bytes += item.document.len() as u64;
        self.page.items.push(item);
        self.page.more = self.page.items.len() >= self.limit || self.bytes >= self.byte_budget;
    }

    fn finish(self) -> Page {
        self.page
    }
}
