//! The embedded store: SQLite in a directory, or in memory.
//!
//! One connection behind a mutex: every operation takes microseconds, so the async methods of
//! [`super::Backend`] call these synchronous ones directly instead of moving them to a blocking
//! thread, and a single connection costs nothing in throughput.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use dynabox_handler::storage::{
    Committed, ItemKey, Keyspace, Page, QueryRequest, ScanRequest, StorageError, StoredItem, TableChange, TableRecord,
    Write, WriteError, partition_hash,
};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior};

use super::{
    CREATING_INDEXES, KeyspaceCache, KeyspaceEntry, Migration, PageBuilder, ScanParam, TableSql, checked_storage_table,
    index_column, item_write, plan, query_sql, scan_sql, write_keyspace,
};

const FILE_NAME: &str = "dynabox.sqlite3";

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("migrations/sqlite/0001_catalog.sql") },
    Migration { version: 2, sql: include_str!("migrations/sqlite/0002_version_clock.sql") },
    Migration { version: 3, sql: include_str!("migrations/sqlite/0003_accounts_keyspaces_changes.sql") },
];

/// Versions are reserved from the persistent clock this many at a time (see [`VersionClock`]).
const VERSION_BLOCK: i64 = 1024;

/// `doc` is TEXT so that SQLite's JSON functions work on it (`json_extract(doc, '$.id.S')`).
const CREATE_TABLE: &str = "CREATE TABLE {t} (pk BLOB NOT NULL, sk BLOB NOT NULL, doc TEXT NOT NULL, \
                            version INTEGER NOT NULL, h INTEGER NOT NULL, expires INTEGER, \
                            PRIMARY KEY (pk, sk)) WITHOUT ROWID;
                            CREATE INDEX {t}_segments ON {t} (h, pk, sk);
                            CREATE INDEX {t}_expiry ON {t} (expires) WHERE expires IS NOT NULL";

/// Puts bind document, hash and expiry as ?3 to ?5, the expected version (if any) as ?6 and the
/// new version (from [`VersionClock`]) as ?7; a statement need not use every number.
const SQL: TableSql<&str> = TableSql {
    get: "SELECT doc, version FROM {t} WHERE pk = ?1 AND sk = ?2",
    upsert: "INSERT INTO {t} (pk, sk, doc, h, expires, version) VALUES (?1, ?2, ?3, ?4, ?5, ?7) \
             ON CONFLICT (pk, sk) DO UPDATE SET doc = excluded.doc, expires = excluded.expires, \
             version = excluded.version",
    insert_new: "INSERT INTO {t} (pk, sk, doc, h, expires, version) VALUES (?1, ?2, ?3, ?4, ?5, ?7) \
                 ON CONFLICT (pk, sk) DO NOTHING",
    update_at: "UPDATE {t} SET doc = ?3, expires = ?5, version = ?7 WHERE pk = ?1 AND sk = ?2 AND version = ?6",
    delete: "DELETE FROM {t} WHERE pk = ?1 AND sk = ?2",
    exists: "SELECT 1 FROM {t} WHERE pk = ?1 AND sk = ?2",
    exists_at: "SELECT 1 FROM {t} WHERE pk = ?1 AND sk = ?2 AND version = ?3",
    delete_at: "DELETE FROM {t} WHERE pk = ?1 AND sk = ?2 AND version = ?3",
    // octet_length: bytes, where length() would count characters.
    stats: "SELECT count(*), coalesce(sum(octet_length(doc)), 0) FROM {t}",
};

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Locked only while `conn` is: writes are serialised by the connection anyway.
    clock: Mutex<VersionClock>,
    /// Locked only while `conn` is.
    descriptions: Mutex<DescriptionCache>,
    keyspaces: KeyspaceCache,
    dir: Option<PathBuf>,
}

/// The descriptions this process has read (absences included), valid while no other connection
/// has committed to the file: SQLite's `data_version` tells, for the price of a pragma instead of a
/// catalog read on every request. This connection's own table changes clear the entries they touch.
#[derive(Default)]
struct DescriptionCache {
    data_version: i64,
    records: HashMap<(String, String), Option<TableRecord>>,
}

/// Hands out item versions that are never handed out again, by this process or another one on the
/// same file, also after a restart: blocks of [`VERSION_BLOCK`] numbers are reserved in the
/// `version_clock` row, in the same transaction as the first write that uses one, so a durable
/// version is always covered by a durable reservation. Reserving per block instead of per write
/// keeps the clock's page out of almost every commit.
#[derive(Debug, Clone, Copy)]
struct VersionClock {
    /// The next version to hand out, valid while it is at most `reserved`.
    next: i64,
    reserved: i64,
}

impl VersionClock {
    /// Nothing reserved yet: the first write reserves.
    fn new() -> Self {
        VersionClock { next: 1, reserved: 0 }
    }

    /// A version for the writes of the transaction `tx`. Changes only this copy: the caller keeps
    /// it once the transaction commits.
    fn take(&mut self, tx: &Connection) -> rusqlite::Result<i64> {
        if self.next > self.reserved {
            self.reserved = tx
                .prepare_cached("UPDATE version_clock SET reserved = reserved + ?1 RETURNING reserved")?
                .query_row([VERSION_BLOCK], |r| r.get(0))?;
            self.next = self.reserved - VERSION_BLOCK + 1;
        }
        self.next += 1;
        Ok(self.next - 1)
    }
}

impl SqliteStore {
    pub(super) fn open(dir: Option<&Path>, wait_timeout: Duration) -> anyhow::Result<SqliteStore> {
        let mut conn = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                let path = dir.join(FILE_NAME);
                let conn = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
                // WAL with synchronous=NORMAL: a commit is durable once written to the WAL, so it
                // survives a crash of the process; only a crash of the machine (power loss) may
                // lose the last commits. The database itself is never corrupted either way.
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                conn
            }
            None => Connection::open_in_memory()?,
        };
        // Another process may hold the file for a moment (a second server, an operator's shell).
        // A write that gives up waiting has applied nothing.
        conn.busy_timeout(wait_timeout)?;
        // Each keyspace has nine statements, queries and scans a few shapes more.
        conn.set_prepared_statement_cache_capacity(1024);
        // For the migration that gives existing rows their hash.
        conn.create_scalar_function("partition_hash", 1, FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
            Ok(i64::from(partition_hash(ctx.get_raw(0).as_blob()?)))
        })?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            clock: Mutex::new(VersionClock::new()),
            descriptions: Mutex::default(),
            keyspaces: KeyspaceCache::default(),
            dir: dir.map(Path::to_path_buf),
        })
    }

    pub(super) fn describe(&self) -> String {
        match &self.dir {
            Some(dir) => format!("embedded store at {}", dir.display()),
            None => "in-memory store".to_string(),
        }
    }

    pub(super) fn create_table(
        &self,
        account: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<bool, StorageError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
        let version = table_version(&tx)?;
        let id: Option<i64> = tx
            .prepare_cached(
                "INSERT INTO tables (account, name, description, version) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (account, name) DO NOTHING RETURNING id",
            )
            .and_then(|mut s| s.query_row((account, name, Text(description), version), |r| r.get(0)).optional())
            .map_err(internal)?;
        let Some(id) = id else { return Ok(false) };
        for index in std::iter::once("").chain(indexes.iter().map(String::as_str)) {
            create_keyspace(&tx, id, index)?;
        }
        tx.commit().map_err(internal)?;
        self.forget(account, name);
        Ok(true)
    }

    pub(super) fn describe_table(&self, account: &str, name: &str) -> Result<Option<TableRecord>, StorageError> {
        let conn = self.lock();
        let data_version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(internal)?;
        let mut cache = self.descriptions.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.data_version != data_version {
            *cache = DescriptionCache { data_version, records: HashMap::new() };
        }
        let id = (account.to_string(), name.to_string());
        if let Some(record) = cache.records.get(&id) {
            return Ok(record.clone());
        }
        let record = conn
            .prepare_cached("SELECT description, version FROM tables WHERE account = ?1 AND name = ?2")
            .and_then(|mut s| {
                s.query_row((account, name), |r| {
                    Ok(TableRecord { description: r.get_ref(0)?.as_bytes()?.to_vec(), version: r.get(1)? })
                })
                .optional()
            })
            .map_err(internal)?;
        cache.records.insert(id, record.clone());
        Ok(record)
    }

    /// Forgets what this process knew of a table it changed.
    fn forget(&self, account: &str, name: &str) {
        self.keyspaces.forget_table(account, name);
        let mut cache = self.descriptions.lock().unwrap_or_else(PoisonError::into_inner);
        cache.records.remove(&(account.to_string(), name.to_string()));
    }

    pub(super) fn update_table(
        &self,
        account: &str,
        name: &str,
        expected_version: u64,
        change: &TableChange<'_>,
    ) -> Result<Option<u64>, StorageError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
        let current: Option<(i64, i64)> = tx
            .prepare_cached("SELECT id, version FROM tables WHERE account = ?1 AND name = ?2")
            .and_then(|mut s| s.query_row((account, name), |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(internal)?;
        let (id, version) = current.ok_or(StorageError::NoSuchKeyspace)?;
        if version as u64 != expected_version {
            return Ok(None);
        }
        let new_version = table_version(&tx)?;
        tx.execute(
            "UPDATE tables SET description = ?2, version = ?3 WHERE id = ?1",
            (id, Text(change.description), new_version),
        )
        .map_err(internal)?;
        for index in change.drop_indexes {
            drop_keyspace(&tx, id, index)?;
        }
        for index in change.create_indexes {
            create_keyspace(&tx, id, index)?;
        }
        tx.commit().map_err(internal)?;
        self.forget(account, name);
        Ok(Some(new_version as u64))
    }

    pub(super) fn list_tables(
        &self,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name FROM tables WHERE account = ?1 AND name > coalesce(?2, '') ORDER BY name LIMIT ?3",
            )
            .map_err(internal)?;
        stmt.query_map((account, start_after, limit), |r| r.get(0)).and_then(|rows| rows.collect()).map_err(internal)
    }

    pub(super) fn delete_table(&self, account: &str, name: &str) -> Result<bool, StorageError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
        let id: Option<i64> = tx
            .prepare_cached("DELETE FROM tables WHERE account = ?1 AND name = ?2 RETURNING id")
            .and_then(|mut s| s.query_row((account, name), |r| r.get(0)).optional())
            .map_err(internal)?;
        self.forget(account, name);
        let Some(id) = id else { return Ok(false) };
        let indexes: Vec<String> = tx
            .prepare_cached("SELECT index_name FROM keyspaces WHERE table_id = ?1")
            .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect())
            .map_err(internal)?;
        for index in &indexes {
            drop_keyspace(&tx, id, index)?;
        }
        tx.execute("DELETE FROM changes WHERE table_id = ?1", [id]).map_err(internal)?;
        tx.commit().map_err(internal)?;
        Ok(true)
    }

    pub(super) fn tables_with_creating_indexes(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(CREATING_INDEXES).map_err(internal)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get_ref(1)?.as_bytes()?.to_vec())));
        rows.and_then(|rows| rows.collect()).map_err(internal)
    }

    pub(super) fn keyspace_stats(&self, account: &str, keyspace: &Keyspace) -> Result<(u64, u64), StorageError> {
        self.on_keyspace(account, keyspace, |conn, entry| {
            conn.prepare_cached(&entry.sql.stats)?
                .query_row([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))
        })
    }

    pub(super) fn get(
        &self,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
    ) -> Result<Option<StoredItem>, StorageError> {
        self.on_keyspace(account, keyspace, |conn, entry| {
            conn.prepare_cached(&entry.sql.get)?
                .query_row((&key.partition, &key.sort), |r| {
                    Ok(StoredItem {
                        key: key.clone(),
                        document: r.get_ref(0)?.as_bytes()?.to_vec(),
                        version: r.get(1)?,
                    })
                })
                .optional()
        })
    }

    pub(super) fn query(&self, account: &str, request: &QueryRequest) -> Result<Page, StorageError> {
        self.on_keyspace(account, &request.keyspace, |conn, entry| {
            let (sql, values) = query_sql(&entry.storage_table, request, |n| format!("?{n}"));
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.raw_bind_parameter(1, &request.partition)?;
            for (i, value) in values.iter().enumerate() {
                stmt.raw_bind_parameter(i + 2, value)?;
            }
            stmt.raw_bind_parameter(values.len() + 2, request.limit)?;
            collect(stmt.raw_query(), request.limit, request.byte_budget)
        })
    }

    pub(super) fn scan(&self, account: &str, request: &ScanRequest) -> Result<Page, StorageError> {
        self.on_keyspace(account, &request.keyspace, |conn, entry| {
            let (sql, params) =
                scan_sql(&entry.storage_table, request, request.after.as_ref(), request.limit, |n| format!("?{n}"));
            let mut stmt = conn.prepare_cached(&sql)?;
            for (i, param) in params.iter().enumerate() {
                match param {
                    ScanParam::Int(value) => stmt.raw_bind_parameter(i + 1, value)?,
                    ScanParam::Bytes(value) => stmt.raw_bind_parameter(i + 1, value)?,
                }
            }
            collect(stmt.raw_query(), request.limit, request.byte_budget)
        })
    }

    pub(super) fn write(&self, account: &str, writes: &[Write]) -> Result<Committed, WriteError> {
        let mut conn = self.lock();
        let mut entries = Vec::with_capacity(writes.len());
        for write in writes {
            let keyspace = &write_keyspace(write);
            entries.push(self.keyspace(&conn, account, keyspace)?);
        }
        // A transaction even for a single write: one code path, and it costs nothing measurable.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
        let mut clock = *self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        // One version for the whole group: it is new for every key the group puts.
        let version = match writes.iter().any(|w| matches!(w, Write::Put { .. })) {
            true => Some(clock.take(&tx).map_err(internal)?),
            false => None,
        };
        let mut committed = Committed::default();
        for (index, (write, entry)) in writes.iter().zip(&entries).enumerate() {
            let held = apply(&tx, write, entry, version, &mut committed).map_err(|e| self.failed(account, write, e))?;
            if !held {
                // Dropping the transaction rolls back the earlier writes of the group (and the
                // clock's reservation, which stays unused in memory too).
                return Err(WriteError::GuardFailed(index as u32));
            }
        }
        tx.commit().map_err(internal)?;
        *self.clock.lock().unwrap_or_else(PoisonError::into_inner) = clock;
        Ok(committed)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic elsewhere cannot leave the connection inconsistent: an open transaction rolls
        // back when dropped.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The keyspace from the cache, else from the catalog.
    fn keyspace(
        &self,
        conn: &Connection,
        account: &str,
        keyspace: &Keyspace,
    ) -> Result<Arc<KeyspaceEntry>, StorageError> {
        if let Some(entry) = self.keyspaces.get(account, keyspace) {
            return Ok(entry);
        }
        let row: Option<(i64, String)> = conn
            .prepare_cached(
                "SELECT k.table_id, k.storage_table FROM keyspaces AS k JOIN tables AS t ON t.id = k.table_id \
                 WHERE t.account = ?1 AND t.name = ?2 AND k.index_name = ?3",
            )
            .and_then(|mut s| {
                s.query_row((account, &keyspace.table, index_column(keyspace)), |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(internal)?;
        let (table_id, storage_table) = row.ok_or(StorageError::NoSuchKeyspace)?;
        Ok(self.keyspaces.insert(account, keyspace, entry(table_id, &storage_table)?))
    }

    /// Runs `f` on an existing keyspace, looking it up again once if its storage table is gone
    /// (another process dropped it, and may have made the keyspace anew).
    fn on_keyspace<T>(
        &self,
        account: &str,
        keyspace: &Keyspace,
        f: impl Fn(&Connection, &KeyspaceEntry) -> rusqlite::Result<T>,
    ) -> Result<T, StorageError> {
        let conn = self.lock();
        let entry = self.keyspace(&conn, account, keyspace)?;
        match f(&conn, &entry) {
            Err(e) if is_missing_table(&e) => {
                self.keyspaces.forget_table(account, &keyspace.table);
                let entry = self.keyspace(&conn, account, keyspace)?;
                f(&conn, &entry).map_err(|e| self.failed_on(account, &keyspace.table, e))
            }
            result => result.map_err(internal),
        }
    }

    /// Maps an error of a write's statement. A missing storage table means another process
    /// dropped the keyspace since this one cached it: the group fails as if it never existed.
    fn failed(&self, account: &str, write: &Write, e: rusqlite::Error) -> StorageError {
        self.failed_on(account, &write_keyspace(write).table, e)
    }

    fn failed_on(&self, account: &str, table: &str, e: rusqlite::Error) -> StorageError {
        if is_missing_table(&e) {
            self.keyspaces.forget_table(account, table);
            return StorageError::NoSuchKeyspace;
        }
        internal(e)
    }
}

fn is_missing_table(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(_, Some(message)) if message.starts_with("no such table"))
}

fn entry(table_id: i64, storage_table: &str) -> Result<KeyspaceEntry, StorageError> {
    let storage_table = checked_storage_table(storage_table)?.to_string();
    Ok(KeyspaceEntry { table_id, sql: SQL.render(&storage_table), storage_table })
}

/// A description version from the item versions' clock, so it never repeats either: taken
/// straight from the persistent counter (above every block any process holds).
fn table_version(tx: &Connection) -> Result<i64, StorageError> {
    tx.prepare_cached("UPDATE version_clock SET reserved = reserved + 1 RETURNING reserved")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(internal)
}

/// Registers a keyspace of table `table_id` (`index` '' for the base) and creates its storage
/// table, named after the keyspace's id.
fn create_keyspace(tx: &Transaction<'_>, table_id: i64, index: &str) -> Result<(), StorageError> {
    let storage_table: String = tx
        .prepare_cached(
            "INSERT INTO keyspaces (table_id, index_name, storage_table) VALUES (?1, ?2, '') \
             RETURNING 'ks_' || id",
        )
        .and_then(|mut s| s.query_row((table_id, index), |r| r.get(0)))
        .map_err(internal)?;
    tx.execute(
        "UPDATE keyspaces SET storage_table = ?3 WHERE table_id = ?1 AND index_name = ?2",
        (table_id, index, &storage_table),
    )
    .map_err(internal)?;
    tx.execute_batch(&CREATE_TABLE.replace("{t}", checked_storage_table(&storage_table)?)).map_err(internal)
}

fn drop_keyspace(tx: &Transaction<'_>, table_id: i64, index: &str) -> Result<(), StorageError> {
    let storage_table: Option<String> = tx
        .prepare_cached("DELETE FROM keyspaces WHERE table_id = ?1 AND index_name = ?2 RETURNING storage_table")
        .and_then(|mut s| s.query_row((table_id, index), |r| r.get(0)).optional())
        .map_err(internal)?;
    if let Some(storage_table) = storage_table {
        tx.execute(&format!("DROP TABLE IF EXISTS {}", checked_storage_table(&storage_table)?), [])
            .map_err(internal)?;
    }
    Ok(())
}

/// Steps through rows (pk, sk, doc, version) until the page is full: SQLite produces rows one at
/// a time, so the byte budget ends the read where it ends the page.
fn collect(mut rows: rusqlite::Rows<'_>, limit: u32, byte_budget: u32) -> rusqlite::Result<Page> {
    let mut page = PageBuilder::new(limit, byte_budget);
    while page.wants_more()
        && let Some(row) = rows.next()?
    {
        page.push(StoredItem {
            key: ItemKey { partition: row.get(0)?, sort: row.get(1)? },
            document: row.get_ref(2)?.as_bytes()?.to_vec(),
            version: row.get(3)?,
        });
    }
    Ok(page.finish())
}

/// Runs one write of a group; whether its guard held.
fn apply(
    tx: &Connection,
    write: &Write,
    entry: &KeyspaceEntry,
    new_version: Option<i64>,
    committed: &mut Committed,
) -> rusqlite::Result<bool> {
    match write {
        Write::TableAt { version, .. } => {
            let version = i64::try_from(*version).unwrap_or(-1);
            let found = tx
                .prepare_cached("SELECT 1 FROM tables WHERE id = ?1 AND version = ?2")?
                .query_row((entry.table_id, version), |_| Ok(()))
                .optional()?;
            return Ok(found.is_some());
        }
        Write::AppendChange { record, .. } => {
            let sequence: i64 = tx
                .prepare_cached("UPDATE tables SET changes = changes + 1 WHERE id = ?1 RETURNING changes")?
                .query_row([entry.table_id], |r| r.get(0))?;
            tx.prepare_cached("INSERT INTO changes (table_id, seq, record) VALUES (?1, ?2, ?3)")?.execute((
                entry.table_id,
                sequence,
                record,
            ))?;
            committed.change_sequences.push(sequence as u64);
            return Ok(true);
        }
        _ => {}
    }
    let Some(plan) = plan(write, &entry.sql) else { return Ok(true) };
    let key = item_write(write).expect("an item write").1;
    let mut stmt = tx.prepare_cached(plan.sql)?;
    stmt.raw_bind_parameter(1, &key.partition)?;
    stmt.raw_bind_parameter(2, &key.sort)?;
    if let Some((document, hash, expires)) = plan.put {
        stmt.raw_bind_parameter(3, Text(document))?;
        stmt.raw_bind_parameter(4, hash)?;
        stmt.raw_bind_parameter(5, expires)?;
        stmt.raw_bind_parameter(7, new_version.expect("a group with puts has a version"))?;
        if let Some(version) = plan.version {
            stmt.raw_bind_parameter(6, version)?;
        }
    } else if let Some(version) = plan.version {
        stmt.raw_bind_parameter(3, version)?;
    }
    let rows = match stmt.column_count() {
        0 => stmt.raw_execute()? as u64,
        _ => u64::from(stmt.raw_query().next()?.is_some()),
    };
    Ok(plan.check.holds(rows))
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        tx.execute_batch(migration.sql).with_context(|| format!("applying migration {}", migration.version))?;
        match migration.version {
            2 => start_version_clock_above_stored_versions(&tx)?,
            3 => add_hash_and_expiry_to_item_tables(&tx)?,
            _ => {}
        }
        tx.pragma_update(None, "user_version", migration.version)?;
    }
    tx.commit()?;
    Ok(())
}

/// The storage tables the catalog names.
fn storage_tables(tx: &Connection, sql: &str) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = tx.prepare(sql)?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    names.iter().map(|n| Ok(checked_storage_table(n).map_err(|e| anyhow::anyhow!("{e:?}"))?.to_string())).collect()
}

/// Part of migration 2, which SQL alone cannot do: the storage tables are known only from the
/// catalog.
fn start_version_clock_above_stored_versions(tx: &Connection) -> anyhow::Result<()> {
    let mut highest = 0i64;
    for table in storage_tables(tx, "SELECT storage_table FROM tables")? {
        let max: i64 = tx.query_row(&format!("SELECT coalesce(max(version), 0) FROM {table}"), [], |r| r.get(0))?;
        highest = highest.max(max);
    }
    tx.execute("UPDATE version_clock SET reserved = ?1", [highest])?;
    Ok(())
}

/// Part of migration 3: every existing storage table gets the partition hash (scan segments) and
/// the expiry column, with their indexes.
fn add_hash_and_expiry_to_item_tables(tx: &Connection) -> anyhow::Result<()> {
    for t in storage_tables(tx, "SELECT storage_table FROM keyspaces")? {
        tx.execute_batch(&format!(
            "ALTER TABLE {t} ADD COLUMN h INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE {t} ADD COLUMN expires INTEGER;
             UPDATE {t} SET h = partition_hash(pk);
             CREATE INDEX {t}_segments ON {t} (h, pk, sk);
             CREATE INDEX {t}_expiry ON {t} (expires) WHERE expires IS NOT NULL;"
        ))?;
    }
    Ok(())
}

fn internal(e: rusqlite::Error) -> StorageError {
    StorageError::Internal(format!("sqlite: {e}"))
}

/// Binds UTF-8 bytes as TEXT without checking them again (documents are JSON).
struct Text<'a>(&'a [u8]);

impl ToSql for Text<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0)))
    }
}
