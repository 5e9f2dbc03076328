//! The storage contract implemented once over any [`Connection`] and [`Dialect`]: the host's
//! embedded store (rusqlite, one long-lived handle) and the Spin component (Spin's SQLite or
//! PostgreSQL, a fresh handle per request) run this code.

use std::collections::HashMap;
use std::sync::Arc;

use dynabox_handler::storage::{
    ChangePage, ChangeRecord, Committed, ItemKey, Keyspace, Page, QueryRequest, ScanRequest, Storage, StorageError,
    StoredItem, TableChange, TableRecord, Write, WriteError,
};

use crate::dialect::POSTGRES_MIGRATION_LOCK;
use crate::plan::{
    ChunkedRead, KeyspaceEntry, checked_storage_table, index_column, item_write, plan, query_sql, scan_sql,
    sort_bounds, write_keyspace,
};
use crate::{Columns, Connection, Dialect, Param, Row, SqlError, SqlErrorKind};

/// SQLite versions are reserved from the persistent clock this many at a time (see [`VersionClock`]).
const VERSION_BLOCK: i64 = 1024;

pub struct SqlStore<C> {
    conn: C,
    dialect: Dialect,
    /// SQLite's item versions; PostgreSQL's statements take theirs from a sequence.
    clock: VersionClock,
    /// (account, keyspace) → its entry, so item operations do not read the catalog. Safe across
    /// processes because storage tables are never named twice: an entry another process made
    /// stale (its table or index dropped) points at a table that no longer exists, and the
    /// statement that finds it gone makes the store forget the entry and look again.
    keyspaces: HashMap<(String, Keyspace), Arc<KeyspaceEntry>>,
    descriptions: DescriptionCache,
}

/// The descriptions this handle has read (absences included). SQLite only: valid while no other
/// connection has committed to the file, which `PRAGMA data_version` tells for the price of a
/// pragma instead of a catalog read. PostgreSQL reads descriptions on every call, so that every
/// process sees another's table changes at once. This handle's own changes clear what they touch.
#[derive(Default)]
struct DescriptionCache {
    data_version: i64,
    records: HashMap<(String, String), Option<TableRecord>>,
}

/// Hands out SQLite item versions that are never handed out again, by this handle or another one
/// on the same file, also after a restart: blocks of [`VERSION_BLOCK`] numbers are reserved in the
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

    /// A version for the writes of the open transaction. Changes only this copy: the caller keeps
    /// it once the transaction commits.
    fn take(&mut self, conn: &mut impl Connection) -> Result<i64, SqlError> {
        if self.next > self.reserved {
            let sql = "UPDATE version_clock SET reserved = reserved + ?1 RETURNING reserved";
            self.reserved = single_int(conn.query(sql, &[Param::Int(VERSION_BLOCK)])?)?;
            self.next = self.reserved - VERSION_BLOCK + 1;
        }
        self.next += 1;
        Ok(self.next - 1)
    }
}

impl<C: Connection> SqlStore<C> {
    /// A store on `conn`, after applying pending migrations (when the schema is current, one
    /// cheap read tells).
    pub fn open(mut conn: C, dialect: Dialect) -> Result<Self, SqlError> {
        if dialect == Dialect::Sqlite {
            // WAL with synchronous=NORMAL: a commit is durable once written to the WAL, so it
            // survives a crash of the process; only a crash of the machine (power loss) may
            // lose the last commits. The database itself is never corrupted either way. Readers
            // and the writer do not block each other, which matters to connections opened per
            // request. The journal mode stays with the file (in memory it stays "memory");
            // synchronous is per connection.
            conn.query("PRAGMA journal_mode = WAL", &[])?;
            conn.execute("PRAGMA synchronous = NORMAL", &[])?;
        }
        migrate(&mut conn, dialect)?;
        Ok(SqlStore {
            conn,
            dialect,
            clock: VersionClock::new(),
            keyspaces: HashMap::new(),
            descriptions: DescriptionCache::default(),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn connection(&mut self) -> &mut C {
        &mut self.conn
    }

    /// The connection, for another store (a pool's next user).
    pub fn into_connection(self) -> C {
        self.conn
    }

    /// (account, description) of every table that may have an index being created, for the work
    /// that fills new indexes. Not part of the handler's contract.
    pub fn tables_with_creating_indexes(&mut self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let rows = self.conn.query(self.dialect.catalog().creating_indexes, &[]).map_err(|e| self.internal(e))?;
        rows.into_iter()
            .map(|mut row| Ok((row.text(0)?, row.bytes(1)?)))
            .collect::<Result<_, SqlError>>()
            .map_err(|e| self.internal(e))
    }

    /// (account, name) of every table that may have time to live enabled, for the expiry sweep.
    /// Not part of the handler's contract.
    pub fn tables_with_time_to_live(&mut self) -> Result<Vec<(String, String)>, StorageError> {
        let rows = self.conn.query(self.dialect.catalog().time_to_live_tables, &[]).map_err(|e| self.internal(e))?;
        rows.into_iter()
            .map(|mut row| Ok((row.text(0)?, row.text(1)?)))
            .collect::<Result<_, SqlError>>()
            .map_err(|e| self.internal(e))
    }

    /// Drops the change records of every table written before `before` (seconds since the
    /// epoch); how many. Not part of the handler's contract: the host's worker trims.
    pub fn trim_changes(&mut self, before: u64) -> Result<u64, StorageError> {
        let before = Param::Int(i64::try_from(before).unwrap_or(i64::MAX));
        self.conn.execute(self.dialect.catalog().trim_changes, &[before]).map_err(|e| self.internal(e))
    }

    /// The change page of the table the keyspace cache names; `None` when that table is gone.
    fn read_changes_once(
        &mut self,
        account: &str,
        table: &str,
        after: u64,
        limit: u32,
    ) -> Result<Option<ChangePage>, StorageError> {
        let table_id = self.keyspace(account, &Keyspace::table(table))?.table_id;
        let catalog = self.dialect.catalog();
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let params = [Param::Int(table_id), Param::Int(after), Param::Int(i64::from(limit))];
        let read = (|| {
            let changes = self.conn.query(catalog.read_changes, &params)?;
            let changes = changes
                .into_iter()
                .map(|mut row| Ok(ChangeRecord { sequence: row.int(0)? as u64, record: row.bytes(1)? }))
                .collect::<Result<Vec<_>, SqlError>>()?;
            // Read after the records, so that it is at least the last of them.
            let last = self.conn.query(catalog.last_change, &[Param::Int(table_id)])?;
            last.into_iter().next().map(|row| Ok(ChangePage { changes, last_sequence: row.int(0)? as u64 })).transpose()
        })();
        read.map_err(|e| self.internal(e))
    }

    fn internal(&self, e: SqlError) -> StorageError {
        let dialect = match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        };
        StorageError::Internal(format!("{dialect}: {e}"))
    }

    /// Runs `f` in a transaction that writes: committed when it returns `Ok`, rolled back otherwise.
    fn transaction<T, E: From<StorageError>>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, E>) -> Result<T, E> {
        self.conn.execute(self.dialect.begin(), &[]).map_err(|e| self.internal(e))?;
        let result = f(self).and_then(|value| match self.conn.execute("COMMIT", &[]) {
            Ok(_) => Ok(value),
            Err(e) => Err(self.internal(e).into()),
        });
        if result.is_err() {
            // A failed COMMIT may leave the transaction open; a transaction already ended makes
            // ROLLBACK fail harmlessly.
            let _ = self.conn.execute("ROLLBACK", &[]);
        }
        result
    }

    /// The keyspace from the cache, else from the catalog.
    fn keyspace(&mut self, account: &str, keyspace: &Keyspace) -> Result<Arc<KeyspaceEntry>, StorageError> {
        let id = (account.to_string(), keyspace.clone());
        if let Some(entry) = self.keyspaces.get(&id) {
            return Ok(entry.clone());
        }
        let params = [Param::Text(account), Param::Text(&keyspace.table), Param::Text(index_column(keyspace))];
        let rows = self.conn.query(self.dialect.catalog().find_keyspace, &params).map_err(|e| self.internal(e))?;
        let mut row = rows.into_iter().next().ok_or(StorageError::NoSuchKeyspace)?;
        let (table_id, storage_table) = (row.int(0), row.text(1));
        let (table_id, storage_table) =
            table_id.and_then(|id| Ok((id, storage_table?))).map_err(|e| self.internal(e))?;
        let entry = Arc::new(KeyspaceEntry::new(self.dialect, table_id, &storage_table)?);
        self.keyspaces.insert(id, entry.clone());
        Ok(entry)
    }

    /// Forgets what this handle knew of a table.
    fn forget(&mut self, account: &str, table: &str) {
        self.keyspaces.retain(|(a, k), _| !(a == account && k.table == table));
        self.descriptions.records.remove(&(account.to_string(), table.to_string()));
    }

    /// Runs `f` on an existing keyspace, looking it up again once if its storage table is gone
    /// (another process dropped it, and may have made the keyspace anew).
    fn on_keyspace<T>(
        &mut self,
        account: &str,
        keyspace: &Keyspace,
        f: impl Fn(&mut C, &KeyspaceEntry) -> Result<T, SqlError>,
    ) -> Result<T, StorageError> {
        let entry = self.keyspace(account, keyspace)?;
        match f(&mut self.conn, &entry) {
            Err(e) if e.is_missing_table() => {
                self.forget(account, &keyspace.table);
                let entry = self.keyspace(account, keyspace)?;
                f(&mut self.conn, &entry).map_err(|e| self.failed_on(account, &keyspace.table, e))
            }
            result => result.map_err(|e| self.internal(e)),
        }
    }

    /// Maps an error of a statement on a table's keyspace. A missing storage table means another
    /// process dropped the keyspace since this handle looked it up: as if it never existed.
    fn failed_on(&mut self, account: &str, table: &str, e: SqlError) -> StorageError {
        if e.is_missing_table() {
            self.forget(account, table);
            return StorageError::NoSuchKeyspace;
        }
        self.internal(e)
    }

    /// A description version from the item versions' clock, so it never repeats either (SQLite:
    /// taken straight from the persistent counter, above every block any handle holds).
    fn new_table_version(&mut self) -> Result<i64, SqlError> {
        single_int(self.conn.query(self.dialect.catalog().new_table_version, &[])?)
    }

    /// Registers a keyspace of table `table_id` (`index` '' for the base) and creates its storage
    /// table, named after the keyspace's id.
    fn create_keyspace(&mut self, table_id: i64, index: &str) -> Result<(), StorageError> {
        let catalog = self.dialect.catalog();
        let created = (|| {
            let id =
                single_int(self.conn.query(catalog.insert_keyspace, &[Param::Int(table_id), Param::Text(index)])?)?;
            self.conn.execute(catalog.name_keyspace, &[Param::Int(id)])?;
            let storage_table = self.dialect.qualified(&format!("ks_{id}"));
            self.conn.batch(&catalog.create_storage_table.replace("{t}", &storage_table))
        })();
        created.map_err(|e| self.internal(e))
    }

    fn drop_keyspace(&mut self, table_id: i64, index: &str) -> Result<(), StorageError> {
        let catalog = self.dialect.catalog();
        let rows = self.conn.query(catalog.delete_keyspace, &[Param::Int(table_id), Param::Text(index)]);
        let rows = rows.map_err(|e| self.internal(e))?;
        for mut row in rows {
            let storage_table = row.text(0).map_err(|e| self.internal(e))?;
            let storage_table = self.dialect.qualified(checked_storage_table(&storage_table)?);
            let dropped = self.conn.batch(&catalog.drop_storage_table.replace("{t}", &storage_table));
            dropped.map_err(|e| self.internal(e))?;
        }
        Ok(())
    }

    /// Runs one write of a group; whether its guard held.
    fn apply(
        &mut self,
        write: &Write,
        entry: &KeyspaceEntry,
        new_version: Option<i64>,
        committed: &mut Committed,
    ) -> Result<bool, SqlError> {
        let catalog = self.dialect.catalog();
        match write {
            Write::TableAt { version, .. } => {
                let version = i64::try_from(*version).unwrap_or(-1);
                let rows = self.conn.query(catalog.table_at, &[Param::Int(entry.table_id), Param::Int(version)])?;
                return Ok(!rows.is_empty());
            }
            Write::AppendChange { record, .. } => {
                let sequence = single_int(self.conn.query(catalog.next_change, &[Param::Int(entry.table_id)])?)?;
                let params = [Param::Int(entry.table_id), Param::Int(sequence), Param::Bytes(record)];
                self.conn.execute(catalog.insert_change, &params)?;
                committed.change_sequences.push(sequence as u64);
                return Ok(true);
            }
            _ => {}
        }
        let Some(plan) = plan(write, &entry.sql) else { return Ok(true) };
        let key = item_write(write).expect("an item write").1;
        let params = plan.params(key, new_version).map_err(|e| SqlError::other(format!("{e:?}")))?;
        let rows = match plan.returns_rows {
            true => self.conn.query(plan.sql, &params)?.len() as u64,
            false => self.conn.execute(plan.sql, &params)?,
        };
        Ok(plan.holds(rows))
    }
}

impl<C: Connection> Storage for SqlStore<C> {
    fn create_table(
        &mut self,
        account: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<bool, StorageError> {
        let description = text(description)?;
        let created = self.transaction(|store| {
            let version = store.new_table_version().map_err(|e| store.internal(e))?;
            let params = [Param::Text(account), Param::Text(name), Param::Text(description), Param::Int(version)];
            let rows =
                store.conn.query(store.dialect.catalog().insert_table, &params).map_err(|e| store.internal(e))?;
            let Some(id) = rows.into_iter().next() else { return Ok(false) };
            let id = id.int(0).map_err(|e| store.internal(e))?;
            for index in std::iter::once("").chain(indexes.iter().map(String::as_str)) {
                store.create_keyspace(id, index)?;
            }
            Ok(true)
        });
        self.forget(account, name);
        created
    }

    fn describe_table(&mut self, account: &str, name: &str) -> Result<Option<TableRecord>, StorageError> {
        let id = (account.to_string(), name.to_string());
        if self.dialect == Dialect::Sqlite {
            let data_version = self.conn.query("PRAGMA data_version", &[]).and_then(single_int);
            let data_version = data_version.map_err(|e| self.internal(e))?;
            if self.descriptions.data_version != data_version {
                self.descriptions = DescriptionCache { data_version, records: HashMap::new() };
            }
            if let Some(record) = self.descriptions.records.get(&id) {
                return Ok(record.clone());
            }
        }
        let params = [Param::Text(account), Param::Text(name)];
        let rows = self.conn.query(self.dialect.catalog().describe_table, &params).map_err(|e| self.internal(e))?;
        let record = rows
            .into_iter()
            .next()
            .map(|mut row| Ok(TableRecord { description: row.bytes(0)?, version: row.int(1)? as u64 }))
            .transpose()
            .map_err(|e| self.internal(e))?;
        if self.dialect == Dialect::Sqlite {
            self.descriptions.records.insert(id, record.clone());
        }
        Ok(record)
    }

    fn update_table(
        &mut self,
        account: &str,
        name: &str,
        expected_version: u64,
        change: &TableChange<'_>,
    ) -> Result<Option<u64>, StorageError> {
        let description = text(change.description)?;
        let updated = self.transaction(|store| {
            let catalog = store.dialect.catalog();
            let rows = store.conn.query(catalog.table_for_update, &[Param::Text(account), Param::Text(name)]);
            let row = rows.map_err(|e| store.internal(e))?.into_iter().next().ok_or(StorageError::NoSuchKeyspace)?;
            let (id, version) = row.int(0).and_then(|id| Ok((id, row.int(1)?))).map_err(|e| store.internal(e))?;
            if version as u64 != expected_version {
                return Ok(None);
            }
            let new_version = store.new_table_version().map_err(|e| store.internal(e))?;
            let params = [Param::Int(id), Param::Text(description), Param::Int(new_version)];
            store.conn.execute(catalog.update_description, &params).map_err(|e| store.internal(e))?;
            for index in change.drop_indexes {
                store.drop_keyspace(id, index)?;
            }
            for index in change.create_indexes {
                store.create_keyspace(id, index)?;
            }
            Ok(Some(new_version as u64))
        });
        self.forget(account, name);
        updated
    }

    fn list_tables(
        &mut self,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let params = [Param::Text(account), Param::Text(start_after.unwrap_or("")), Param::Int(i64::from(limit))];
        let rows = self.conn.query(self.dialect.catalog().list_tables, &params).map_err(|e| self.internal(e))?;
        rows.into_iter().map(|mut row| row.text(0)).collect::<Result<_, _>>().map_err(|e| self.internal(e))
    }

    fn delete_table(&mut self, account: &str, name: &str) -> Result<bool, StorageError> {
        let deleted = self.transaction(|store| {
            let catalog = store.dialect.catalog();
            let rows = store.conn.query(catalog.delete_table, &[Param::Text(account), Param::Text(name)]);
            let Some(row) = rows.map_err(|e| store.internal(e))?.into_iter().next() else { return Ok(false) };
            let id = row.int(0).map_err(|e| store.internal(e))?;
            let indexes = store.conn.query(catalog.table_indexes, &[Param::Int(id)]).map_err(|e| store.internal(e))?;
            for mut index in indexes {
                let index = index.text(0).map_err(|e| store.internal(e))?;
                store.drop_keyspace(id, &index)?;
            }
            store.conn.execute(catalog.delete_changes, &[Param::Int(id)]).map_err(|e| store.internal(e))?;
            Ok(true)
        });
        self.forget(account, name);
        deleted
    }

    fn keyspace_stats(&mut self, account: &str, keyspace: &Keyspace) -> Result<(u64, u64), StorageError> {
        self.on_keyspace(account, keyspace, |conn, entry| {
            let row = conn.query(&entry.sql.stats, &[])?.into_iter().next();
            let row = row.ok_or_else(|| SqlError::other("no statistics"))?;
            Ok((row.int(0)? as u64, row.int(1)? as u64))
        })
    }

    fn get(&mut self, account: &str, keyspace: &Keyspace, key: &ItemKey) -> Result<Option<StoredItem>, StorageError> {
        self.on_keyspace(account, keyspace, |conn, entry| {
            let rows = conn.query(&entry.sql.get, &[Param::Bytes(&key.partition), Param::Bytes(&key.sort)])?;
            rows.into_iter()
                .next()
                .map(|mut row| {
                    Ok(StoredItem { key: key.clone(), document: row.bytes(0)?, version: row.int(1)? as u64 })
                })
                .transpose()
        })
    }

    fn query(&mut self, account: &str, request: &QueryRequest) -> Result<Page, StorageError> {
        let (dialect, bounds) = (self.dialect, sort_bounds(&request.sort));
        let mut read = ChunkedRead::new(request.limit, request.byte_budget, request.after.clone());
        while let Some((limit, after)) = read.next_chunk() {
            let after = after.cloned();
            let rows = self.on_keyspace(account, &request.keyspace, |conn, entry| {
                let (sql, params) = query_sql(dialect, &entry.storage_table, request, &bounds, after.as_ref(), limit);
                conn.query(&sql, &params)
            })?;
            read.add(rows.into_iter().map(|row| stored_item(row).map_err(|e| self.internal(e))))?;
        }
        Ok(read.finish())
    }

    fn scan(&mut self, account: &str, request: &ScanRequest) -> Result<Page, StorageError> {
        let dialect = self.dialect;
        let mut read = ChunkedRead::new(request.limit, request.byte_budget, request.after.clone());
        while let Some((limit, after)) = read.next_chunk() {
            let after = after.cloned();
            let rows = self.on_keyspace(account, &request.keyspace, |conn, entry| {
                let (sql, params) = scan_sql(dialect, &entry.storage_table, request, after.as_ref(), limit);
                conn.query(&sql, &params)
            })?;
            read.add(rows.into_iter().map(|row| stored_item(row).map_err(|e| self.internal(e))))?;
        }
        Ok(read.finish())
    }

    fn write(&mut self, account: &str, writes: &[Write]) -> Result<Committed, WriteError> {
        let mut entries = Vec::with_capacity(writes.len());
        for write in writes {
            entries.push(self.keyspace(account, &write_keyspace(write))?);
        }
        let mut clock = self.clock;
        let committed = self.transaction(|store| {
            // One version for the whole group: it is new for every key the group puts.
            let puts = writes.iter().any(|w| matches!(w, Write::Put { .. }));
            let version = match store.dialect.binds_new_version() && puts {
                true => Some(clock.take(&mut store.conn).map_err(|e| store.internal(e))?),
                false => None,
            };
            let mut committed = Committed::default();
            for (index, (write, entry)) in writes.iter().zip(&entries).enumerate() {
                let held = match store.apply(write, entry, version, &mut committed) {
                    // Rolled back whole by the database: as a guard that failed, decided again.
                    Err(e) if e.kind == SqlErrorKind::Conflict => false,
                    applied => applied.map_err(|e| store.failed_on(account, &write_keyspace(write).table, e))?,
                };
                if !held {
                    return Err(WriteError::GuardFailed(index as u32));
                }
            }
            Ok(committed)
        })?;
        // Only a committed reservation may be used again.
        self.clock = clock;
        Ok(committed)
    }

    fn read_changes(&mut self, account: &str, table: &str, after: u64, limit: u32) -> Result<ChangePage, StorageError> {
        // A cached table id may be of a table since deleted (and perhaps made anew): its catalog
        // row is gone, so look it up once more.
        match self.read_changes_once(account, table, after, limit)? {
            Some(page) => Ok(page),
            None => {
                self.forget(account, table);
                self.read_changes_once(account, table, after, limit)?.ok_or(StorageError::NoSuchKeyspace)
            }
        }
    }

    fn expired(
        &mut self,
        account: &str,
        keyspace: &Keyspace,
        now: u64,
        limit: u32,
    ) -> Result<Vec<ItemKey>, StorageError> {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        self.on_keyspace(account, keyspace, |conn, entry| {
            let rows = conn.query(&entry.sql.expired, &[Param::Int(now), Param::Int(i64::from(limit))])?;
            rows.into_iter().map(|mut row| Ok(ItemKey { partition: row.bytes(0)?, sort: row.bytes(1)? })).collect()
        })
    }
}

fn stored_item(mut row: Row) -> Result<StoredItem, SqlError> {
    Ok(StoredItem {
        key: ItemKey { partition: row.bytes(0)?, sort: row.bytes(1)? },
        document: row.bytes(2)?,
        version: row.int(3)? as u64,
    })
}

/// The integer in the first column of the first row.
fn single_int(rows: Vec<Row>) -> Result<i64, SqlError> {
    rows.first().ok_or_else(|| SqlError::other("no row returned"))?.int(0)
}

/// Descriptions are JSON, so UTF-8.
fn text(description: &[u8]) -> Result<&str, StorageError> {
    std::str::from_utf8(description).map_err(|_| StorageError::Internal("a description is not UTF-8".to_string()))
}

/// Applies pending migrations. When the schema is current, one read tells, so a store opened per
/// request (Spin) pays little; otherwise one transaction applies them, serialised with other
/// processes migrating the same database.
pub fn migrate(conn: &mut impl Connection, dialect: Dialect) -> Result<(), SqlError> {
    let latest = dialect.migrations().last().map_or(0, |m| m.version);
    if applied_version(conn, dialect).ok() == Some(latest) {
        return Ok(());
    }
    conn.execute(dialect.begin(), &[])?;
    let migrated = apply_migrations(conn, dialect).and_then(|()| conn.execute("COMMIT", &[]));
    if migrated.is_err() {
        let _ = conn.execute("ROLLBACK", &[]);
    }
    migrated.map(|_| ())
}

fn applied_version(conn: &mut impl Connection, dialect: Dialect) -> Result<i64, SqlError> {
    match dialect {
        Dialect::Sqlite => single_int(conn.query("PRAGMA user_version", &[])?),
        Dialect::Postgres => {
            single_int(conn.query("SELECT coalesce(max(version), 0) FROM dynabox.schema_migrations", &[])?)
        }
    }
}

fn apply_migrations(conn: &mut impl Connection, dialect: Dialect) -> Result<(), SqlError> {
    if dialect == Dialect::Postgres {
        // Released by the commit or rollback, so a failed migration cannot leave a pooled
        // connection holding it.
        conn.execute("SELECT pg_advisory_xact_lock($1)", &[Param::Int(POSTGRES_MIGRATION_LOCK)])?;
        conn.batch(
            "CREATE SCHEMA IF NOT EXISTS dynabox;
             CREATE TABLE IF NOT EXISTS dynabox.schema_migrations (
                 version bigint PRIMARY KEY,
                 applied timestamptz NOT NULL DEFAULT now()
             );",
        )?;
    }
    let applied = applied_version(conn, dialect)?;
    for migration in dialect.migrations().iter().filter(|m| m.version > applied) {
        let context =
            |e: SqlError| SqlError { message: format!("migration {}: {}", migration.version, e.message), ..e };
        conn.batch(migration.sql).map_err(context)?;
        match (dialect, migration.version) {
            (Dialect::Sqlite, 2) => start_version_clock_above_stored_versions(conn)?,
            (Dialect::Sqlite, 3) => add_hash_and_expiry_to_item_tables(conn)?,
            _ => {}
        }
        match dialect {
            Dialect::Sqlite => conn.batch(&format!("PRAGMA user_version = {}", migration.version))?,
            Dialect::Postgres => {
                let sql = "INSERT INTO dynabox.schema_migrations (version) VALUES ($1)";
                conn.execute(sql, &[Param::Int(migration.version)])?;
            }
        }
    }
    Ok(())
}

/// The storage tables the catalog names.
fn storage_tables(conn: &mut impl Connection, sql: &str) -> Result<Vec<String>, SqlError> {
    let rows = conn.query(sql, &[])?;
    rows.into_iter()
        .map(|mut row| {
            let name = row.text(0)?;
            checked_storage_table(&name).map_err(|e| SqlError::other(format!("{e:?}")))?;
            Ok(name)
        })
        .collect()
}

/// Part of SQLite migration 2, which SQL alone cannot do: the storage tables are known only from
/// the catalog.
fn start_version_clock_above_stored_versions(conn: &mut impl Connection) -> Result<(), SqlError> {
    let mut highest = 0i64;
    for table in storage_tables(conn, "SELECT storage_table FROM tables")? {
        highest = highest.max(single_int(conn.query(&format!("SELECT coalesce(max(version), 0) FROM {table}"), &[])?)?);
    }
    conn.execute("UPDATE version_clock SET reserved = ?1", &[Param::Int(highest)])?;
    Ok(())
}

/// Part of SQLite migration 3: every existing storage table gets the partition hash (scan
/// segments) and the expiry column, with their indexes. `partition_hash` is an SQL function the
/// host registers; a store that never held tables from before (Spin) never calls it.
fn add_hash_and_expiry_to_item_tables(conn: &mut impl Connection) -> Result<(), SqlError> {
    for t in storage_tables(conn, "SELECT storage_table FROM keyspaces")? {
        conn.batch(&format!(
            "ALTER TABLE {t} ADD COLUMN h INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE {t} ADD COLUMN expires INTEGER;
             UPDATE {t} SET h = partition_hash(pk);
             CREATE INDEX {t}_segments ON {t} (h, pk, sk);
             CREATE INDEX {t}_expiry ON {t} (expires) WHERE expires IS NOT NULL;"
        ))?;
    }
    Ok(())
}
