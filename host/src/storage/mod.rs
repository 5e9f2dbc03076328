//! The host's storage backends: an embedded SQLite store and PostgreSQL. Both implement the
//! contract of `dynabox_handler::storage` (see that module for the semantics) as async methods on
//! [`Backend`], with the same types.
//!
//! Layout, the same in both: the catalog `tables` holds each account's tables (name, description,
//! its version, the change log's last sequence number); `keyspaces` maps each table's base
//! keyspace (index name '') and index keyspaces to a storage table `ks_<n>` (or `items_<n>`, from
//! before indexes) with columns `pk`, `sk` (bytes, `sk` empty without a sort key), `doc` (the
//! document), `version`, `h` (the partition's hash, for scan segments, indexed with the key) and
//! `expires` (optional, indexed where set); `changes` holds the change logs. Table names are never
//! used as SQL identifiers; `<n>` comes from a counter that never hands out a number twice, so a
//! stale reference to a deleted table or index can never reach a newer one.
//!
//! Choices the contract leaves open, identical in both backends:
//! - Query and scan set `more` when they stopped because of the limit or the byte budget, without looking
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

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use dynabox_handler::storage::memory::MemoryStore;
use dynabox_handler::storage::{
    Committed, Expect, ItemKey, Keyspace, Page, QueryRequest, ScanRequest, SortRange, Storage, StorageError,
    StoredItem, TableChange, TableRecord, Write, WriteError, partition_hash, segment_hashes,
};

pub enum Backend {
    Embedded(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
    /// The handler's reference store (`dynabox_handler::storage::memory`), so that the one
    /// conformance suite also holds the definition of the contract to account.
    Reference(Mutex<MemoryStore>),
}

/// How long one storage call waits for a lock or a connection when nothing else is said.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Dispatches one call to the backend: the embedded store and the reference store answer at
/// once (their calls take microseconds), PostgreSQL asynchronously.
macro_rules! dispatch {
    ($backend:expr, $method:ident($($arg:expr),*)) => {
        match $backend {
            Backend::Embedded(s) => s.$method($($arg),*),
            Backend::Postgres(s) => s.$method($($arg),*).await,
            Backend::Reference(s) => s.lock().unwrap_or_else(PoisonError::into_inner).$method($($arg),*),
        }
    };
}

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

    /// The handler's reference store, empty.
    pub fn reference() -> Backend {
        Backend::Reference(Mutex::default())
    }

    /// One line for the start-up log; never contains a password.
    pub fn describe(&self) -> String {
        match self {
            Backend::Embedded(s) => s.describe(),
            Backend::Postgres(s) => s.describe(),
            Backend::Reference(_) => "reference store".to_string(),
        }
    }

    pub async fn create_table(
        &self,
        account: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<bool, StorageError> {
        dispatch!(self, create_table(account, name, description, indexes))
    }

    pub async fn describe_table(&self, account: &str, name: &str) -> Result<Option<TableRecord>, StorageError> {
        dispatch!(self, describe_table(account, name))
    }

    pub async fn update_table(
        &self,
        account: &str,
        name: &str,
        expected_version: u64,
        change: &TableChange<'_>,
    ) -> Result<Option<u64>, StorageError> {
        dispatch!(self, update_table(account, name, expected_version, change))
    }

    pub async fn list_tables(
        &self,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        dispatch!(self, list_tables(account, start_after, limit))
    }

    pub async fn delete_table(&self, account: &str, name: &str) -> Result<bool, StorageError> {
        dispatch!(self, delete_table(account, name))
    }

    pub async fn keyspace_stats(&self, account: &str, keyspace: &Keyspace) -> Result<(u64, u64), StorageError> {
        dispatch!(self, keyspace_stats(account, keyspace))
    }

    pub async fn get(
        &self,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
    ) -> Result<Option<StoredItem>, StorageError> {
        dispatch!(self, get(account, keyspace, key))
    }

    pub async fn query(&self, account: &str, request: &QueryRequest) -> Result<Page, StorageError> {
        dispatch!(self, query(account, request))
    }

    pub async fn scan(&self, account: &str, request: &ScanRequest) -> Result<Page, StorageError> {
        dispatch!(self, scan(account, request))
    }

    pub async fn write(&self, account: &str, writes: &[Write]) -> Result<Committed, WriteError> {
        dispatch!(self, write(account, writes))
    }

    /// (account, description) of every table that may have an index being created: the host's
    /// background worker reads them with the handler's catalog types. Not part of the handler's
    /// contract; the reference store, which no server runs on, has no worker and returns none.
    pub async fn tables_with_creating_indexes(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        match self {
            Backend::Embedded(s) => s.tables_with_creating_indexes(),
            Backend::Postgres(s) => s.tables_with_creating_indexes().await,
            Backend::Reference(_) => Ok(Vec::new()),
        }
    }
}

/// Tables whose description mentions an index being created (`"Status":"Creating"` in the
/// catalog's JSON); the worker decides on the parsed description. A text search, so it needs no
/// schema of its own; the catalog is small.
const CREATING_INDEXES: &str =
    "SELECT account, description FROM tables WHERE CAST(description AS text) LIKE '%\"Creating\"%'";

/// A schema migration; versions start at 1 and are applied in order.
struct Migration {
    version: i64,
    sql: &'static str,
}

/// The statements on one storage table, as templates in which `{t}` stands for the table (`S` =
/// `&'static str`) or rendered for one table (`S` = `String`). Parameters, by position:
/// `get`, `exists`, `delete`: pk, sk. `exists_at`, `delete_at`: pk, sk, expected version.
/// `upsert`, `insert_new`: pk, sk, doc, hash, expiry. `update_at`: pk, sk, doc, hash, expiry,
/// expected version. `stats`: none. How a put gets its new version is the dialect's own.
/// Queries and scans are built per request shape by [`query_sql`] and [`scan_sql`].
struct TableSql<S> {
    get: S,
    /// Put without guard.
    upsert: S,
    /// Put if absent: affects no row when the key exists.
    insert_new: S,
    /// Put at a version: affects no row unless the key exists at that version.
    update_at: S,
    delete: S,
    /// Returns a row when the key exists.
    exists: S,
    /// Returns a row when the key exists at the version.
    exists_at: S,
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
            upsert: r(self.upsert),
            insert_new: r(self.insert_new),
            update_at: r(self.update_at),
            delete: r(self.delete),
            exists: r(self.exists),
            exists_at: r(self.exists_at),
            delete_at: r(self.delete_at),
            stats: r(self.stats),
        }
    }
}

impl TableSql<String> {
    fn all(&self) -> [&str; 9] {
        [
            &self.get,
            &self.upsert,
            &self.insert_new,
            &self.update_at,
            &self.delete,
            &self.exists,
            &self.exists_at,
            &self.delete_at,
            &self.stats,
        ]
    }
}

/// What the process knows about one keyspace: its table's id and its statements.
struct KeyspaceEntry {
    table_id: i64,
    storage_table: String,
    sql: TableSql<String>,
}

/// (account, table, index) → [`KeyspaceEntry`], so item operations do not read the catalog.
/// Safe across processes because storage tables are never named twice: an entry another process
/// made stale (its table or index dropped) points at a table that no longer exists, and the
/// statement that finds it gone makes the backend forget the entry and look again.
/// Descriptions are cached only where another process's change is cheap to see (SQLite's
/// `data_version`); PostgreSQL reads them from the catalog on every call, so a change made by one
/// process is seen by all at once.
#[derive(Default)]
struct KeyspaceCache {
    entries: RwLock<HashMap<(String, Keyspace), Arc<KeyspaceEntry>>>,
}

impl KeyspaceCache {
    fn get(&self, account: &str, keyspace: &Keyspace) -> Option<Arc<KeyspaceEntry>> {
        self.entries.read().unwrap().get(&(account.to_string(), keyspace.clone())).cloned()
    }

    fn insert(&self, account: &str, keyspace: &Keyspace, entry: KeyspaceEntry) -> Arc<KeyspaceEntry> {
        let entry = Arc::new(entry);
        self.entries.write().unwrap().insert((account.to_string(), keyspace.clone()), entry.clone());
        entry
    }

    /// Forgets every keyspace of the table; the entries forgotten.
    fn forget_table(&self, account: &str, table: &str) -> Vec<Arc<KeyspaceEntry>> {
        let mut entries = self.entries.write().unwrap();
        let stale: Vec<_> = entries.keys().filter(|(a, k)| a == account && k.table == table).cloned().collect();
        stale.iter().filter_map(|key| entries.remove(key)).collect()
    }
}

/// Storage tables are named `items_<n>` (base keyspaces of tables created before keyspaces had
/// ids of their own) or `ks_<n>`. The name is read back from the catalog and spliced into SQL,
/// so anything else there is refused rather than executed.
fn checked_storage_table(name: &str) -> Result<&str, StorageError> {
    match name.strip_prefix("items_").or_else(|| name.strip_prefix("ks_")) {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Ok(name),
        _ => Err(StorageError::Internal(format!("catalog names an invalid storage table {name:?}"))),
    }
}

/// How the index name of a keyspace is kept in the catalog: '' for the base keyspace (index
/// names are never empty).
fn index_column(keyspace: &Keyspace) -> &str {
    keyspace.index.as_deref().unwrap_or("")
}

/// The one statement that carries out an item write, and how to tell whether its guard held.
struct Plan<'a> {
    sql: &'a str,
    /// The document, partition hash and expiry, for puts.
    put: Option<(&'a [u8], i64, Option<i64>)>,
    /// The expected version, for guarded writes at a version.
    version: Option<i64>,
    check: Check,
}

enum Check {
    None,
    /// The guard held when the statement affected (or returned) one row.
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

/// The statement for an item write (`Put`, `Delete` or `Check`); `None` for a check that
/// expects nothing, which needs no statement.
fn plan<'a>(write: &'a Write, sql: &'a TableSql<String>) -> Option<Plan<'a>> {
    // No stored version is negative, so a version beyond i64 simply never matches.
    let at = |v: u64| Some(i64::try_from(v).unwrap_or(-1));
    let plan = |sql, put, version, check| Some(Plan { sql, put, version, check });
    match write {
        Write::Put { key, document, expect, expires_at, .. } => {
            let put = Some((
                document.as_slice(),
                i64::from(partition_hash(&key.partition)),
                expires_at.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
            ));
            match *expect {
                Expect::Anything => plan(&sql.upsert, put, None, Check::None),
                Expect::Absent => plan(&sql.insert_new, put, None, Check::OneRow),
                Expect::Version(v) => plan(&sql.update_at, put, at(v), Check::OneRow),
            }
        }
        Write::Delete { expect, .. } => match *expect {
            Expect::Anything => plan(&sql.delete, None, None, Check::None),
            Expect::Absent => plan(&sql.exists, None, None, Check::NoRow),
            Expect::Version(v) => plan(&sql.delete_at, None, at(v), Check::OneRow),
        },
        Write::Check { expect, .. } => match *expect {
            Expect::Anything => None,
            Expect::Absent => plan(&sql.exists, None, None, Check::NoRow),
            Expect::Version(v) => plan(&sql.exists_at, None, at(v), Check::OneRow),
        },
        Write::TableAt { .. } | Write::AppendChange { .. } => unreachable!("not an item write"),
    }
}

/// The keyspace a write needs: its item's, or (table guards, change logs) its table's base keyspace,
/// which also leads to the table's id.
fn write_keyspace(write: &Write) -> Cow<'_, Keyspace> {
    match write {
        Write::TableAt { table, .. } | Write::AppendChange { table, .. } => Cow::Owned(Keyspace::table(table)),
        _ => Cow::Borrowed(item_write(write).expect("an item write").0),
    }
}

/// The keyspace and key of an item write.
fn item_write(write: &Write) -> Option<(&Keyspace, &ItemKey)> {
    match write {
        Write::Put { keyspace, key, .. } | Write::Delete { keyspace, key, .. } | Write::Check { keyspace, key, .. } => {
            Some((keyspace, key))
        }
        Write::TableAt { .. } | Write::AppendChange { .. } => None,
    }
}

/// Placeholders: `?N` (SQLite) or `$N` (PostgreSQL), numbered from 1.
type Placeholder = fn(usize) -> String;

/// A query's SQL over the storage table `table`, and the byte values to bind after the partition
/// (`$1`); the row limit is the last parameter.
fn query_sql(table: &str, request: &QueryRequest, placeholder: Placeholder) -> (String, Vec<Vec<u8>>) {
    let mut sql = format!("SELECT pk, sk, doc, version FROM {table} WHERE pk = {}", placeholder(1));
    let mut values = Vec::new();
    let mut condition = |op: &str, value: &[u8]| {
        values.push(value.to_vec());
        sql.push_str(&format!(" AND sk {op} {}", placeholder(values.len() + 1)));
    };
    let (lower, upper) = match &request.sort {
        SortRange::All => (Bound::Unbounded, Bound::Unbounded),
        SortRange::Prefix(prefix) => {
            (Bound::Included(prefix.clone()), successor(prefix).map_or(Bound::Unbounded, Bound::Excluded))
        }
        SortRange::Between(lower, upper) => (lower.clone(), upper.clone()),
    };
    match &lower {
        Bound::Included(v) => condition(">=", v),
        Bound::Excluded(v) => condition(">", v),
        Bound::Unbounded => {}
    }
    match &upper {
        Bound::Included(v) => condition("<=", v),
        Bound::Excluded(v) => condition("<", v),
        Bound::Unbounded => {}
    }
    if let Some(after) = &request.after {
        condition(if request.forward { ">" } else { "<" }, &after.sort);
    }
    let direction = if request.forward { "ASC" } else { "DESC" };
    sql.push_str(&format!(" ORDER BY sk {direction} LIMIT {}", placeholder(values.len() + 2)));
    (sql, values)
}

/// The least byte string greater than every string that starts with `prefix`, if any.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let end = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut next = prefix[..=end].to_vec();
    next[end] += 1;
    Some(next)
}

/// A value a scan binds.
enum ScanParam<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

/// A scan's SQL over `table` and the values to bind, in order: a whole keyspace is read in key
/// order (on the primary key), a segment of several in (hash, key) order (on the hash index),
/// each resuming strictly after `after`.
fn scan_sql<'a>(
    table: &str,
    request: &ScanRequest,
    after: Option<&'a ItemKey>,
    limit: u32,
    placeholder: Placeholder,
) -> (String, Vec<ScanParam<'a>>) {
    let mut params = Vec::new();
    let mut bind = |param: ScanParam<'a>| {
        params.push(param);
        placeholder(params.len())
    };
    let mut conditions = Vec::new();
    let order = match request.total_segments > 1 {
        true => {
            let (start, end) = segment_hashes(request.segment, request.total_segments);
            conditions.push(format!("h >= {}", bind(ScanParam::Int(start as i64))));
            conditions.push(format!("h < {}", bind(ScanParam::Int(end as i64))));
            if let Some(key) = after {
                let hash = bind(ScanParam::Int(i64::from(partition_hash(&key.partition))));
                let (pk, sk) = (bind(ScanParam::Bytes(&key.partition)), bind(ScanParam::Bytes(&key.sort)));
                conditions.push(format!("(h, pk, sk) > ({hash}, {pk}, {sk})"));
            }
            "h, pk, sk"
        }
        false => {
            if let Some(key) = after {
                let (pk, sk) = (bind(ScanParam::Bytes(&key.partition)), bind(ScanParam::Bytes(&key.sort)));
                conditions.push(format!("(pk, sk) > ({pk}, {sk})"));
            }
            "pk, sk"
        }
    };
    let limit = bind(ScanParam::Int(i64::from(limit)));
    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    (format!("SELECT pk, sk, doc, version FROM {table}{filter} ORDER BY {order} LIMIT {limit}"), params)
}

/// Collects a page and decides where it stops (see the module doc for `more`).
struct PageBuilder {
    page: Page,
    limit: usize,
    byte_budget: u64,
    bytes: u64,
}

impl PageBuilder {
    fn new(limit: u32, byte_budget: u32) -> Self {
        PageBuilder {
            page: Page { items: Vec::new(), more: limit == 0 },
            limit: limit as usize,
            byte_budget: u64::from(byte_budget),
            bytes: 0,
        }
    }

    /// Whether the page takes another item.
    fn wants_more(&self) -> bool {
        !self.page.more
    }

    fn len(&self) -> usize {
        self.page.items.len()
    }

    /// The key of the last item taken: where the next read of the same page resumes.
    fn last_key(&self) -> Option<ItemKey> {
        self.page.items.last().map(|item| item.key.clone())
    }

    /// Adds the next item in read order.
    fn push(&mut self, item: StoredItem) {
        self.bytes += item.document.len() as u64;
        self.page.items.push(item);
        self.page.more = self.page.items.len() >= self.limit || self.bytes >= self.byte_budget;
    }

    fn finish(self) -> Page {
        self.page
    }
}
