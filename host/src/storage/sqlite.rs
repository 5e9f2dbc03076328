//! The embedded store: SQLite in a directory, or in memory.
//!
//! One connection behind a mutex: every operation takes microseconds, so the async methods of
//! [`super::Backend`] call these synchronous ones directly instead of moving them to a blocking
//! thread, and a single connection costs nothing in throughput.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use dynabox_handler::storage::{ItemKey, Page, ScanRequest, StorageError, StoredItem, Write, WriteError};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql, TransactionBehavior};

use super::{Migration, PageBuilder, TableCache, TableEntry, TableSql, checked_storage_table, plan};

const FILE_NAME: &str = "dynabox.sqlite3";

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("migrations/sqlite/0001_catalog.sql") },
    Migration { version: 2, sql: include_str!("migrations/sqlite/0002_version_clock.sql") },
];

/// Versions are reserved from the persistent clock this many at a time (see [`VersionClock`]).
const VERSION_BLOCK: i64 = 1024;

/// `doc` is TEXT so that SQLite's JSON functions work on it (`json_extract(doc, '$.id.S')`).
const CREATE_TABLE: &str = "CREATE TABLE {t} (pk BLOB NOT NULL, sk BLOB NOT NULL, doc TEXT NOT NULL, \
                            version INTEGER NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID";

/// Scan parameters: ?1 limit, then (scan_after) ?2 pk, ?3 sk. The byte budget is applied while
/// stepping through the rows, which SQLite produces one at a time. Puts take the new version as
/// their last parameter (from [`VersionClock`]).
const SQL: TableSql<&str> = TableSql {
    get: "SELECT doc, version FROM {t} WHERE pk = ?1 AND sk = ?2",
    scan: "SELECT pk, sk, doc, version FROM {t} ORDER BY pk, sk LIMIT ?1",
    scan_after: "SELECT pk, sk, doc, version FROM {t} WHERE (pk, sk) > (?2, ?3) ORDER BY pk, sk LIMIT ?1",
    upsert: "INSERT INTO {t} (pk, sk, doc, version) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (pk, sk) DO UPDATE SET doc = excluded.doc, version = excluded.version",
    insert_new: "INSERT INTO {t} (pk, sk, doc, version) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (pk, sk) DO NOTHING",
    update_at: "UPDATE {t} SET doc = ?3, version = ?5 WHERE pk = ?1 AND sk = ?2 AND version = ?4",
    delete: "DELETE FROM {t} WHERE pk = ?1 AND sk = ?2",
    exists: "SELECT 1 FROM {t} WHERE pk = ?1 AND sk = ?2",
    delete_at: "DELETE FROM {t} WHERE pk = ?1 AND sk = ?2 AND version = ?3",
    // octet_length: bytes, where length() would count characters.
    stats: "SELECT count(*), coalesce(sum(octet_length(doc)), 0) FROM {t}",
};

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Locked only while `conn` is: writes are serialised by the connection anyway.
    clock: Mutex<VersionClock>,
    tables: TableCache,
    dir: Option<PathBuf>,
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
    /// A version for the writes of the transaction `tx`. Changes only this copy: the caller keeps
    /// it once the transaction commits.
    /// Nothing reserved yet: the first write reserves.
    fn new() -> Self {
        VersionClock { next: 1, reserved: 0 }
    }

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
        // Each table has ten statements; the default cache of 16 would thrash with two tables.
        conn.set_prepared_statement_cache_capacity(1024);
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            clock: Mutex::new(VersionClock::new()),
            tables: TableCache::default(),
            dir: dir.map(Path::to_path_buf),
        })
    }

    pub(super) fn describe(&self) -> String {
        match &self.dir {
            Some(dir) => format!("embedded store at {}", dir.display()),
            None => "in-memory store".to_string(),
        }
    }

    pub(super) fn create_table(&self, name: &str, description: &[u8]) -> Result<bool, StorageError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
        let storage_table: Option<String> = tx
            .prepare_cached(
                "INSERT INTO tables (name, description) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING \
                 RETURNING storage_table",
            )
            .and_then(|mut s| s.query_row((name, Text(description)), |r| r.get(0)).optional())
            .map_err(internal)?;
        let Some(storage_table) = storage_table else { return Ok(false) };
        let entry = entry(&storage_table, description.to_vec())?;
        tx.execute(&CREATE_TABLE.replace("{t}", &storage_table), []).map_err(internal)?;
        tx.commit().map_err(internal)?;
        self.tables.insert(name, entry);
        Ok(true)
    }

    pub(super) fn describe_table(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.table(&self.lock(), name)?.map(|t| t.description.clone()))
    }

    pub(super) fn list_tables(&self, start_after: Option<&str>, limit: u32) -> Result<Vec<String>, StorageError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT name FROM tables WHERE name > coalesce(?1, '') ORDER BY name LIMIT ?2")
            .map_err(internal)?;
        stmt.query_map((start_after, limit), |r| r.get(0)).and_then(|rows| rows.collect()).map_err(internal)
    }

    pub(super) fn delete_table(&self, name: &str) -> Result<bool, StorageError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
        let storage_table: Option<String> = tx
            .prepare_cached("DELETE FROM tables WHERE name = ?1 RETURNING storage_table")
            .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
            .map_err(internal)?;
        self.tables.remove(name);
        let Some(storage_table) = storage_table else { return Ok(false) };
        let storage_table = checked_storage_table(&storage_table)?;
        tx.execute(&format!("DROP TABLE IF EXISTS {storage_table}"), []).map_err(internal)?;
        tx.commit().map_err(internal)?;
        Ok(true)
    }

    pub(super) fn keyspace_stats(&self, keyspace: &str) -> Result<(u64, u64), StorageError> {
        self.on_table(&self.lock(), keyspace, |conn, sql| {
            conn.prepare_cached(&sql.stats)?
                .query_row([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))
        })
    }

    pub(super) fn get(&self, keyspace: &str, key: &ItemKey) -> Result<Option<StoredItem>, StorageError> {
        self.on_table(&self.lock(), keyspace, |conn, sql| {
            conn.prepare_cached(&sql.get)?
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

    pub(super) fn scan(&self, request: &ScanRequest) -> Result<Page, StorageError> {
        self.on_table(&self.lock(), &request.keyspace, |conn, sql| {
            let mut page = PageBuilder::new(request);
            let mut stmt;
            let mut rows = match &request.after {
                None => {
                    stmt = conn.prepare_cached(&sql.scan)?;
                    stmt.query((request.limit,))?
                }
                Some(after) => {
                    stmt = conn.prepare_cached(&sql.scan_after)?;
                    stmt.query((request.limit, &after.partition, &after.sort))?
                }
            };
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
        })
    }

    pub(super) fn write(&self, writes: &[Write]) -> Result<(), WriteError> {
        let mut conn = self.lock();
        let tables = writes.iter().map(|w| self.existing_table(&conn, &w.keyspace)).collect::<Result<Vec<_>, _>>()?;
        // A transaction even for a single write: one code path, and it costs nothing measurable.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
        let mut clock = *self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        // One version for the whole group: it is new for every key the group puts.
        let version = match writes.iter().any(|w| w.document.is_some()) {
            true => Some(clock.take(&tx).map_err(internal)?),
            false => None,
        };
        for (index, (write, table)) in writes.iter().zip(&tables).enumerate() {
            let held = apply(&tx, write, table, version).map_err(|e| self.failed(&write.keyspace, e))?;
            if !held {
                // Dropping the transaction rolls back the earlier writes of the group (and the
                // clock's reservation, which stays unused in memory too).
                return Err(WriteError::GuardFailed(index as u32));
            }
        }
        tx.commit().map_err(internal)?;
        *self.clock.lock().unwrap_or_else(PoisonError::into_inner) = clock;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic elsewhere cannot leave the connection inconsistent: an open transaction rolls
        // back when dropped.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The table from the cache, else from the catalog.
    fn table(&self, conn: &Connection, name: &str) -> Result<Option<Arc<TableEntry>>, StorageError> {
        if let Some(entry) = self.tables.get(name) {
            return Ok(Some(entry));
        }
        let row: Option<(String, Vec<u8>)> = conn
            .prepare_cached("SELECT storage_table, description FROM tables WHERE name = ?1")
            .and_then(|mut s| s.query_row([name], |r| Ok((r.get(0)?, r.get_ref(1)?.as_bytes()?.to_vec()))).optional())
            .map_err(internal)?;
        match row {
            Some((storage_table, description)) => {
                Ok(Some(self.tables.insert(name, entry(&storage_table, description)?)))
            }
            None => Ok(None),
        }
    }

    fn existing_table(&self, conn: &Connection, name: &str) -> Result<Arc<TableEntry>, StorageError> {
        self.table(conn, name)?.ok_or(StorageError::NoSuchKeyspace)
    }

    /// Runs `f` on the statements of an existing table.
    fn on_table<T>(
        &self,
        conn: &Connection,
        name: &str,
        f: impl FnOnce(&Connection, &TableSql<String>) -> rusqlite::Result<T>,
    ) -> Result<T, StorageError> {
        let table = self.existing_table(conn, name)?;
        f(conn, &table.sql).map_err(|e| self.failed(name, e))
    }

    /// Maps an error of a statement on table `name`. A missing storage table means another
    /// process deleted the table since this one cached it.
    fn failed(&self, name: &str, e: rusqlite::Error) -> StorageError {
        match &e {
            rusqlite::Error::SqliteFailure(_, Some(message)) if message.starts_with("no such table") => {
                self.tables.remove(name);
                StorageError::NoSuchKeyspace
            }
            _ => internal(e),
        }
    }
}

fn entry(storage_table: &str, description: Vec<u8>) -> Result<TableEntry, StorageError> {
    Ok(TableEntry { description, sql: SQL.render(checked_storage_table(storage_table)?) })
}

/// Runs the statement of one write, giving a put the version `new_version`; whether its guard held.
fn apply(conn: &Connection, write: &Write, table: &TableEntry, new_version: Option<i64>) -> rusqlite::Result<bool> {
    let plan = plan(write, &table.sql);
    let mut stmt = conn.prepare_cached(plan.sql)?;
    stmt.raw_bind_parameter(1, &write.key.partition)?;
    stmt.raw_bind_parameter(2, &write.key.sort)?;
    let mut next = 3;
    if let Some(document) = plan.document {
        stmt.raw_bind_parameter(next, Text(document))?;
        next += 1;
    }
    if let Some(version) = plan.version {
        stmt.raw_bind_parameter(next, version)?;
        next += 1;
    }
    if plan.document.is_some() {
        stmt.raw_bind_parameter(next, new_version.expect("a group with puts has a version"))?;
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
        if migration.version == 2 {
            start_version_clock_above_stored_versions(&tx)?;
        }
        tx.pragma_update(None, "user_version", migration.version)?;
    }
    tx.commit()?;
    Ok(())
}

/// Part of migration 2, which SQL alone cannot do: the storage tables are known only from the
/// catalog.
fn start_version_clock_above_stored_versions(tx: &Connection) -> anyhow::Result<()> {
    let storage_tables: Vec<String> =
        tx.prepare("SELECT storage_table FROM tables")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut highest = 0i64;
    for table in storage_tables {
        let table = checked_storage_table(&table).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let max: i64 = tx.query_row(&format!("SELECT coalesce(max(version), 0) FROM {table}"), [], |r| r.get(0))?;
        highest = highest.max(max);
    }
    tx.execute("UPDATE version_clock SET reserved = ?1", [highest])?;
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
