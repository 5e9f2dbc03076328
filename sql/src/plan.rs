//! What a request's statements are: an item write's statement and parameters, the shape of a
//! query or scan, and how pages are read in chunks and cut, for [`crate::SqlStore`]; and
//! [`raise_unless_rows`], how a driver that pipelines makes a guard abort its transaction.

use std::borrow::Cow;
use std::ops::Bound;

use dynabox_handler::storage::{
    Expect, ItemKey, Keyspace, Page, QueryRequest, ScanRequest, SortRange, StorageError, StoredItem, Write,
    partition_hash, segment_hashes,
};

use crate::{Dialect, Guard, Param};

/// The statements on one storage table, as templates in which `{t}` stands for the table (`S` =
/// `&'static str`) or rendered for one table (`S` = `String`). Parameters, by position:
/// `get`, `exists`, `delete`: pk, sk. `exists_at`, `delete_at`: pk, sk, expected version.
/// `upsert`, `insert_new`: pk, sk, doc, hash, expiry. `update_at`: pk, sk, doc, hash, expiry,
/// expected version. `stats`: none. `expired`: now, limit. How a put gets its new version is the dialect's own.
/// Queries and scans are built per request shape by [`query_sql`] and [`scan_sql`].
pub struct TableSql<S> {
    pub get: S,
    /// Put without guard.
    pub upsert: S,
    /// Put if absent: affects no row when the key exists.
    pub insert_new: S,
    /// Put at a version: affects no row unless the key exists at that version.
    pub update_at: S,
    pub delete: S,
    /// Returns a row when the key exists.
    pub exists: S,
    /// Returns a row when the key exists at the version.
    pub exists_at: S,
    /// Delete at a version: affects no row unless the key exists at that version.
    pub delete_at: S,
    /// Item count and the sum of document byte lengths.
    pub stats: S,
    /// Keys whose expiry is at or before a time, earliest first.
    pub expired: S,
    /// table id, partition, sort: appends the item at the key (none: deleted) to the history
    /// `{t}_h` of a base keyspace, numbered and stamped as the dialect does (see
    /// `Catalog::next_history`).
    pub append_history: S,
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
            expired: r(self.expired),
            append_history: r(self.append_history),
        }
    }
}

impl TableSql<String> {
    pub fn all(&self) -> [&str; 11] {
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
            &self.expired,
            &self.append_history,
        ]
    }
}

/// What a store knows about one keyspace: its table's id, its storage table as statements name it,
/// and its statements.
pub struct KeyspaceEntry {
    pub table_id: i64,
    pub storage_table: String,
    pub sql: TableSql<String>,
}

impl KeyspaceEntry {
    /// The entry for a keyspace the catalog maps to `storage_table`.
    pub fn new(dialect: Dialect, table_id: i64, storage_table: &str) -> Result<KeyspaceEntry, StorageError> {
        let storage_table = dialect.qualified(checked_storage_table(storage_table)?);
        Ok(KeyspaceEntry { table_id, sql: dialect.items().render(&storage_table), storage_table })
    }
}

/// Storage tables are named `items_<n>` (base keyspaces of tables created before keyspaces had
/// ids of their own) or `ks_<n>`. The name is read back from the catalog and spliced into SQL,
/// so anything else there is refused rather than executed.
pub fn checked_storage_table(name: &str) -> Result<&str, StorageError> {
    match name.strip_prefix("items_").or_else(|| name.strip_prefix("ks_")) {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Ok(name),
        _ => Err(StorageError::Internal(format!("catalog names an invalid storage table {name:?}"))),
    }
}

/// How the index name of a keyspace is kept in the catalog: '' for the base keyspace (index
/// names are never empty).
pub fn index_column(keyspace: &Keyspace) -> &str {
    keyspace.index.as_deref().unwrap_or("")
}

/// The one statement that carries out an item write, and what its rows must be.
pub struct Plan<'a> {
    pub sql: &'a str,
    /// The document, partition hash and expiry, for puts.
    put: Option<(&'a [u8], i64, Option<i64>)>,
    /// The expected version, for guarded writes at a version.
    version: Option<i64>,
    /// The statement is a SELECT (a guard that writes nothing).
    pub returns_rows: bool,
    /// The rows it affects or returns when the write's expectation holds.
    pub guard: Guard,
}

impl<'a> Plan<'a> {
    /// Whether the statement puts a document.
    pub fn puts(&self) -> bool {
        self.put.is_some()
    }

    /// The parameters, in the order of [`TableSql`]; `new_version` where the dialect binds it.
    pub fn params(&self, key: &'a ItemKey, new_version: Option<i64>) -> Result<Vec<Param<'a>>, StorageError> {
        let mut params = vec![Param::Bytes(&key.partition), Param::Bytes(&key.sort)];
        if let Some((document, hash, expires)) = self.put {
            let document = std::str::from_utf8(document)
                .map_err(|_| StorageError::Internal("a document is not UTF-8".to_string()))?;
            params.extend([Param::Text(document), Param::Int(hash), expires.map_or(Param::Null, Param::Int)]);
        }
        if let Some(version) = self.version {
            params.push(Param::Int(version));
        }
        if let Some(version) = new_version.filter(|_| self.puts()) {
            params.push(Param::Int(version));
        }
        Ok(params)
    }
}

/// `sql` (PostgreSQL; a SELECT, or a write that gains `RETURNING 1`) as a statement that divides
/// by zero unless it returns (`one_row`) or does not return (`!one_row`) a row: a guard that
/// fails aborts the transaction by itself, so a driver can send the `COMMIT` with the group's
/// statements, which then rolls back.
pub fn raise_unless_rows(sql: &str, one_row: bool) -> String {
    let divisor = if one_row { "count(*)::int" } else { "(1 - count(*)::int)" };
    if sql.starts_with("SELECT") {
        format!("SELECT 1 / {divisor} FROM ({sql}) guarded")
    } else {
        format!("WITH guarded AS ({sql} RETURNING 1) SELECT 1 / {divisor} FROM guarded")
    }
}

/// The statement for an item write (`Put`, `Delete` or `Check`); `None` for a check that
/// expects nothing, which needs no statement.
pub fn plan<'a>(write: &'a Write, sql: &'a TableSql<String>) -> Option<Plan<'a>> {
    // No stored version is negative, so a version beyond i64 simply never matches.
    let at = |v: u64| Some(i64::try_from(v).unwrap_or(-1));
    let plan = |sql: &'a String, put, version, guard| {
        Some(Plan { sql, put, version, returns_rows: sql.starts_with("SELECT"), guard })
    };
    match write {
        Write::Put { key, document, expect, expires_at, .. } => {
            let put = Some((
                document.as_slice(),
                i64::from(partition_hash(&key.partition)),
                expires_at.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
            ));
            match *expect {
                Expect::Anything => plan(&sql.upsert, put, None, Guard::None),
                Expect::Absent => plan(&sql.insert_new, put, None, Guard::OneRow),
                Expect::Version(v) => plan(&sql.update_at, put, at(v), Guard::OneRow),
            }
        }
        Write::Delete { expect, .. } => match *expect {
            Expect::Anything => plan(&sql.delete, None, None, Guard::None),
            Expect::Absent => plan(&sql.exists, None, None, Guard::NoRow),
            Expect::Version(v) => plan(&sql.delete_at, None, at(v), Guard::OneRow),
        },
        Write::Check { expect, .. } => match *expect {
            Expect::Anything => None,
            Expect::Absent => plan(&sql.exists, None, None, Guard::NoRow),
            Expect::Version(v) => plan(&sql.exists_at, None, at(v), Guard::OneRow),
        },
        Write::TableAt { .. } | Write::AppendChange { .. } | Write::AppendHistory { .. } => {
            unreachable!("not an item write")
        }
    }
}

/// The keyspace a write needs: its item's, or (table guards, change logs, history) its table's base keyspace,
/// which also leads to the table's id.
pub fn write_keyspace(write: &Write) -> Cow<'_, Keyspace> {
    match write {
        Write::TableAt { table, .. } | Write::AppendChange { table, .. } | Write::AppendHistory { table, .. } => {
            Cow::Owned(Keyspace::table(table))
        }
        _ => Cow::Borrowed(item_write(write).expect("an item write").0),
    }
}

/// The keyspace and key of an item write.
pub fn item_write(write: &Write) -> Option<(&Keyspace, &ItemKey)> {
    match write {
        Write::Put { keyspace, key, .. } | Write::Delete { keyspace, key, .. } | Write::Check { keyspace, key, .. } => {
            Some((keyspace, key))
        }
        Write::TableAt { .. } | Write::AppendChange { .. } | Write::AppendHistory { .. } => None,
    }
}

/// The columns queries and scans select: pk, sk, doc (as text), version.
fn item_columns(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "pk, sk, doc, version",
        Dialect::Postgres => "pk, sk, doc::text, version",
    }
}

/// The sort-key bounds of a query, a prefix turned into a range.
pub fn sort_bounds(sort: &SortRange) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    match sort {
        SortRange::All => (Bound::Unbounded, Bound::Unbounded),
        SortRange::Prefix(prefix) => {
            (Bound::Included(prefix.clone()), successor(prefix).map_or(Bound::Unbounded, Bound::Excluded))
        }
        SortRange::Between(lower, upper) => (lower.clone(), upper.clone()),
    }
}

/// The least byte string greater than every string that starts with `prefix`, if any.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let end = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut next = prefix[..=end].to_vec();
    next[end] += 1;
    Some(next)
}

/// A query's SQL over the storage table `table` and its parameters: the partition, the sort
/// bounds (from [`sort_bounds`]), the resume key `after` and the row limit `limit`.
pub fn query_sql<'a>(
    dialect: Dialect,
    table: &str,
    request: &'a QueryRequest,
    bounds: &'a (Bound<Vec<u8>>, Bound<Vec<u8>>),
    after: Option<&'a ItemKey>,
    limit: u32,
) -> (String, Vec<Param<'a>>) {
    let mut sql = format!("SELECT {} FROM {table} WHERE pk = {}", item_columns(dialect), dialect.placeholder(1));
    let mut params = vec![Param::Bytes(&request.partition)];
    let mut condition = |op: &str, value: &'a [u8]| {
        params.push(Param::Bytes(value));
        sql.push_str(&format!(" AND sk {op} {}", dialect.placeholder(params.len())));
    };
    match &bounds.0 {
        Bound::Included(v) => condition(">=", v),
        Bound::Excluded(v) => condition(">", v),
        Bound::Unbounded => {}
    }
    match &bounds.1 {
        Bound::Included(v) => condition("<=", v),
        Bound::Excluded(v) => condition("<", v),
        Bound::Unbounded => {}
    }
    if let Some(after) = after {
        condition(if request.forward { ">" } else { "<" }, &after.sort);
    }
    let direction = if request.forward { "ASC" } else { "DESC" };
    params.push(Param::Int(i64::from(limit)));
    sql.push_str(&format!(" ORDER BY sk {direction} LIMIT {}", dialect.placeholder(params.len())));
    (sql, params)
}

/// A scan's SQL over `table` and its parameters: a whole keyspace is read in key order (on the
/// primary key), a segment of several in (hash, key) order (on the hash index), each resuming
/// strictly after `after`, at most `limit` rows.
pub fn scan_sql<'a>(
    dialect: Dialect,
    table: &str,
    request: &ScanRequest,
    after: Option<&'a ItemKey>,
    limit: u32,
) -> (String, Vec<Param<'a>>) {
    let mut params = Vec::new();
    let mut bind = |param: Param<'a>| {
        params.push(param);
        dialect.placeholder(params.len())
    };
    let mut conditions = Vec::new();
    let order = match request.total_segments > 1 {
        true => {
            let (start, end) = segment_hashes(request.segment, request.total_segments);
            conditions.push(format!("h >= {}", bind(Param::Int(start as i64))));
            conditions.push(format!("h < {}", bind(Param::Int(end as i64))));
            if let Some(key) = after {
                let hash = bind(Param::Int(i64::from(partition_hash(&key.partition))));
                let (pk, sk) = (bind(Param::Bytes(&key.partition)), bind(Param::Bytes(&key.sort)));
                conditions.push(format!("(h, pk, sk) > ({hash}, {pk}, {sk})"));
            }
            "h, pk, sk"
        }
        false => {
            if let Some(key) = after {
                let (pk, sk) = (bind(Param::Bytes(&key.partition)), bind(Param::Bytes(&key.sort)));
                conditions.push(format!("(pk, sk) > ({pk}, {sk})"));
            }
            "pk, sk"
        }
    };
    let limit = bind(Param::Int(i64::from(limit)));
    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    let columns = item_columns(dialect);
    (format!("SELECT {columns} FROM {table}{filter} ORDER BY {order} LIMIT {limit}"), params)
}

/// Reads one page of a query or scan in chunks of rows that start small and grow fourfold, so
/// a page that the byte budget ends after a few large items does not read `limit` rows, and a
/// long page takes few statements. Collects the page and decides where it stops (see the crate
/// doc for `more`).
pub struct ChunkedRead {
    page: Page,
    limit: u32,
    byte_budget: u64,
    bytes: u64,
    chunk: u32,
    after: Option<ItemKey>,
    exhausted: bool,
}

/// Rows of the first chunk.
const FIRST_CHUNK: u32 = 16;

impl ChunkedRead {
    /// A page of at most `limit` items and about `byte_budget` bytes, resuming after `after`.
    pub fn new(limit: u32, byte_budget: u32, after: Option<ItemKey>) -> Self {
        ChunkedRead {
            page: Page { items: Vec::new(), more: limit == 0 },
            limit,
            byte_budget: u64::from(byte_budget),
            bytes: 0,
            chunk: FIRST_CHUNK / 4,
            after,
            exhausted: false,
        }
    }

    /// The next chunk to read: at most this many rows, resuming after that key; `None` once the
    /// page is complete.
    pub fn next_chunk(&mut self) -> Option<(u32, Option<&ItemKey>)> {
        if self.page.more || self.exhausted {
            return None;
        }
        self.chunk = self.chunk.saturating_mul(4).min(self.limit - self.page.items.len() as u32);
        Some((self.chunk, self.after.as_ref()))
    }

    /// Adds the rows of the chunk just read, in read order.
    pub fn add(
        &mut self,
        items: impl ExactSizeIterator<Item = Result<StoredItem, StorageError>>,
    ) -> Result<(), StorageError> {
        self.exhausted = items.len() < self.chunk as usize;
        for item in items {
            if self.page.more {
                break;
            }
            let item = item?;
            self.bytes += item.document.len() as u64;
            self.page.items.push(item);
            self.page.more = self.page.items.len() >= self.limit as usize || self.bytes >= self.byte_budget;
        }
        self.after = self.page.items.last().map(|item| item.key.clone());
        Ok(())
    }

    pub fn finish(self) -> Page {
        self.page
    }
}
