//! The storage contract implemented once over any [`Connection`] and [`Dialect`]: the host's
//! embedded store (rusqlite), the host's PostgreSQL backend (a pipelining driver on a pool) and
//! the Spin component (Spin's SQLite or PostgreSQL) all run this code.
//!
//! A [`SqlStore`] holds what outlives one call (the dialect, the keyspace cache, SQLite's
//! description cache and version clock) and every call is given the connection to run on, so
//! one store serves a pool of connections as well as one connection. [`Synchronous`] is a store
//! with its connection as the handler's synchronous `Storage`, for connections whose calls
//! complete at once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use dynabox_handler::storage::{
    Answer, ChangePage, ChangeRecord, Committed, Failure, HistoryChange, HistoryEntry, ItemKey, Keyspace, Page,
    QueryRequest, Request, ScanRequest, Storage, StorageError, StoredBackup, StoredItem, TableChange, TableRecord,
    Write,
};

use crate::dialect::POSTGRES_MIGRATION_LOCK;
use crate::plan::{
    ChunkedRead, KeyspaceEntry, checked_storage_table, index_column, item_write, plan, query_sql, scan_sql,
    sort_bounds, write_keyspace,
};
use crate::{
    Columns, Connection, Dialect, Guard, Param, Row, SqlError, SqlErrorKind, Statement, TransactionFailed, ready,
};

/// SQLite versions are reserved from the persistent clock this many at a time (see [`VersionClock`]).
const VERSION_BLOCK: i64 = 1024;

/// What one batch of trimming did: the change records it deleted, and those past their time it
/// left for the next batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrimmedChanges {
    pub deleted: u64,
    pub left: u64,
}

pub struct SqlStore {
    dialect: Dialect,
    /// (account, keyspace) → its entry, so item operations do not read the catalog. Safe across
    /// processes because storage tables are never named twice: an entry another process made
    /// stale (its table or index dropped) points at a table that no longer exists, and the
    /// statement that finds it gone makes the store forget the entry and look again.
    keyspaces: RwLock<HashMap<(String, Keyspace), Arc<KeyspaceEntry>>>,
    descriptions: Mutex<DescriptionCache>,
    /// SQLite's item versions; PostgreSQL's statements take theirs from a sequence.
    clock: Mutex<VersionClock>,
}

/// The descriptions this store has read (absences included). SQLite only, where a store has one
/// connection: valid while no other connection has committed to the file, which `PRAGMA
/// data_version` tells for the price of a pragma instead of a catalog read. On PostgreSQL
/// descriptions are read on every call, so that every process sees another's table changes at
/// once (the host remembers them apart, see its `storage::remembered`). This store's own changes
/// clear what they touch.
#[derive(Default)]
struct DescriptionCache {
    data_version: i64,
    records: HashMap<(String, String), Option<TableRecord>>,
}

/// Hands out SQLite item versions that are never handed out again, by this store or another one
/// on the same file, also after a restart: blocks of [`VERSION_BLOCK`] numbers are reserved in the
/// `version_clock` row, committed before any of them is used, so a durable version is always
/// covered by a durable reservation. Reserving per block instead of per write keeps the clock's
/// page out of almost every commit. A number whose write did not commit is simply never used.
#[derive(Debug, Clone, Copy)]
struct VersionClock {
    /// The next version to hand out, valid while it is at most `reserved`.
    next: i64,
    reserved: i64,
}

impl SqlStore {
    /// A store on the database `conn` reaches, after applying pending migrations (when the schema
    /// is current, one cheap read tells).
    pub async fn open(conn: &mut impl Connection, dialect: Dialect) -> Result<SqlStore, SqlError> {
        if dialect == Dialect::Sqlite {
            // WAL with synchronous=NORMAL: a commit is durable once written to the WAL, so it
            // survives a crash of the process; only a crash of the machine (power loss) may
            // lose the last commits. The database itself is never corrupted either way. Readers
            // and the writer do not block each other, which matters to connections opened per
            // request. The journal mode stays with the file (in memory it stays "memory");
            // synchronous is per connection.
            conn.query("PRAGMA journal_mode = WAL", &[]).await?;
            conn.execute("PRAGMA synchronous = NORMAL", &[]).await?;
        }
        migrate(conn, dialect).await?;
        Ok(SqlStore {
            dialect,
            keyspaces: RwLock::default(),
            descriptions: Mutex::default(),
            clock: Mutex::new(VersionClock { next: 1, reserved: 0 }),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Runs one operation of the contract: the one place that maps the handler's requests onto
    /// this store's methods.
    pub async fn call(
        &self,
        conn: &mut impl Connection,
        account: &str,
        request: Request<'_>,
    ) -> Result<Answer, Failure> {
        Ok(match request {
            Request::CreateTable { name, description, indexes } => {
                self.create_table(conn, account, &name, &description, &indexes).await?.into()
            }
            Request::DescribeTable { name } => self.describe_table(conn, account, &name).await?.into(),
            Request::UpdateTable { name, expected_version, change } => {
                self.update_table(conn, account, &name, expected_version, &change).await?.into()
            }
            Request::ListTables { start_after, limit } => {
                self.list_tables(conn, account, start_after.as_deref(), limit).await?.into()
            }
            Request::DeleteTable { name, keep } => {
                let keep = keep.as_ref().map(|(arn, record)| (arn.as_ref(), record.as_ref()));
                self.delete_table(conn, account, &name, keep).await?.into()
            }
            Request::KeyspaceStats { keyspace } => self.keyspace_stats(conn, account, &keyspace).await?.into(),
            Request::Get { keyspace, key, .. } => self.get(conn, account, &keyspace, &key).await?.into(),
            Request::Query(request) => self.query(conn, account, &request).await?.into(),
            Request::Scan(request) => self.scan(conn, account, &request).await?.into(),
            Request::Write(writes) => self.write(conn, account, &writes).await?.into(),
            Request::ReadChanges { table, after, limit } => {
                self.read_changes(conn, account, &table, after, limit).await?.into()
            }
            Request::Expired { keyspace, now, limit } => {
                self.expired(conn, account, &keyspace, now, limit).await?.into()
            }
            Request::CreateBackup { table, version, arn, record } => {
                self.create_backup(conn, account, &table, version, &arn, &record).await?.into()
            }
            Request::DescribeBackup { arn } => self.describe_backup(conn, account, &arn).await?.into(),
            Request::ListBackups { start_after, limit } => {
                self.list_backups(conn, account, start_after.as_deref(), limit).await?.into()
            }
            Request::DeleteBackup { arn } => self.delete_backup(conn, account, &arn).await?.into(),
            Request::RestoreBackup { arn, name, description, indexes } => {
                self.restore_backup(conn, account, &arn, &name, &description, &indexes).await?.into()
            }
            Request::RestoreMoment { source, moment, name, description, indexes } => {
                self.restore_moment(conn, account, &source, moment, &name, &description, &indexes).await?.into()
            }
        })
    }

    pub async fn create_table(
        &self,
        conn: &mut impl Connection,
        account: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<bool, StorageError> {
        self.changing_table(conn, account, name, async |conn| {
            Ok(self.insert_table(conn, account, name, description, indexes).await?.is_some())
        })
        .await
    }

    /// Records a new table with its keyspaces: the base keyspace's storage table, or none when
    /// the name is taken.
    async fn insert_table(
        &self,
        conn: &mut impl Connection,
        account: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<Option<String>, StorageError> {
        let version = self.new_table_version(conn).await?;
        let params = [Param::Text(account), Param::Text(name), Param::Text(text(description)?), Param::Int(version)];
        let rows = conn.query(self.dialect.catalog().insert_table, &params).await.map_err(|e| self.internal(e))?;
        let Some(id) = rows.into_iter().next() else { return Ok(None) };
        let id = id.int(0).map_err(|e| self.internal(e))?;
        let base = self.create_keyspace(conn, id, "").await?;
        for index in indexes {
            self.create_keyspace(conn, id, index).await?;
        }
        Ok(Some(base))
    }

    /// Copies the table's base keyspace into a new backup, in one transaction, if the table is at
    /// `version`: false when it is not, or is gone.
    pub async fn create_backup(
        &self,
        conn: &mut impl Connection,
        account: &str,
        table: &str,
        version: u64,
        arn: &str,
        record: &[u8],
    ) -> Result<bool, StorageError> {
        let catalog = self.dialect.catalog();
        // The table itself is not changed: what this process remembers of it stays true.
        self.transaction(conn, async |conn| {
            let base = match self.keyspace(conn, account, &Keyspace::table(table)).await {
                Err(StorageError::NoSuchKeyspace) => return Ok(false),
                base => base?,
            };
            let at = conn.query(catalog.table_at, &[Param::Int(base.table_id), Param::Int(version as i64)]).await;
            if at.map_err(|e| self.internal(e))?.is_empty() {
                return Ok(false);
            }
            self.insert_backup(conn, account, arn, record, &base.storage_table).await?;
            Ok(true)
        })
        .await
    }

    /// Records backup `arn` with the items of storage table `items`, inside the caller's
    /// transaction.
    async fn insert_backup(
        &self,
        conn: &mut impl Connection,
        account: &str,
        arn: &str,
        record: &[u8],
        items: &str,
    ) -> Result<(), StorageError> {
        let catalog = self.dialect.catalog();
        let params = [Param::Text(account), Param::Text(arn), Param::Text(text(record)?)];
        let id = conn.query(catalog.insert_backup, &params).await.and_then(single_int);
        let backup = self.backup_table(id.map_err(|e| self.internal(e))?);
        self.ddl(conn, catalog.create_storage_table, &backup).await?;
        self.copy_items(conn, items, &backup).await
    }

    pub async fn describe_backup(
        &self,
        conn: &mut impl Connection,
        account: &str,
        arn: &str,
    ) -> Result<Option<StoredBackup>, StorageError> {
        let rows = conn.query(self.dialect.catalog().find_backup, &[Param::Text(account), Param::Text(arn)]).await;
        let backups = self.read_rows(rows.map_err(|e| self.internal(e))?, |mut row| {
            Ok(StoredBackup { arn: arn.to_string(), record: row.bytes(1)? })
        })?;
        Ok(backups.into_iter().next())
    }

    pub async fn list_backups(
        &self,
        conn: &mut impl Connection,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredBackup>, StorageError> {
        let list = self.dialect.catalog().list_backups;
        self.list_page(conn, list, account, start_after, limit, |mut row| {
            Ok(StoredBackup { arn: row.text(0)?, record: row.bytes(1)? })
        })
        .await
    }

    /// Drops a backup with its items: what it was, or none.
    pub async fn delete_backup(
        &self,
        conn: &mut impl Connection,
        account: &str,
        arn: &str,
    ) -> Result<Option<StoredBackup>, StorageError> {
        let catalog = self.dialect.catalog();
        self.transaction(conn, async |conn| {
            let rows = conn.query(catalog.delete_backup, &[Param::Text(account), Param::Text(arn)]).await;
            let Some(mut row) = rows.map_err(|e| self.internal(e))?.into_iter().next() else { return Ok(None) };
            let (id, record) = row.int(0).and_then(|id| Ok((id, row.bytes(1)?))).map_err(|e| self.internal(e))?;
            self.ddl(conn, catalog.drop_storage_table, &self.backup_table(id)).await?;
            Ok(Some(StoredBackup { arn: arn.to_string(), record }))
        })
        .await
    }

    /// Creates table `name` with the backup's items in its base keyspace, in one transaction:
    /// false when the name is taken; a backup that is gone is `NoSuchKeyspace`.
    pub async fn restore_backup(
        &self,
        conn: &mut impl Connection,
        account: &str,
        arn: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<bool, StorageError> {
        let catalog = self.dialect.catalog();
        self.changing_table(conn, account, name, async |conn| {
            let rows = conn.query(catalog.find_backup, &[Param::Text(account), Param::Text(arn)]).await;
            let row = rows.map_err(|e| self.internal(e))?.into_iter().next().ok_or(StorageError::NoSuchKeyspace)?;
            let backup = self.backup_table(row.int(0).map_err(|e| self.internal(e))?);
            let Some(base) = self.insert_table(conn, account, name, description, indexes).await? else {
                return Ok(false);
            };
            self.copy_items(conn, &backup, &base).await?;
            Ok(true)
        })
        .await
    }

    /// Creates table `name` with the items `source`'s history holds at `moment` (ms): false when
    /// the name is taken; a source gone or without history is `NoSuchKeyspace`.
    #[allow(clippy::too_many_arguments)]
    pub async fn restore_moment(
        &self,
        conn: &mut impl Connection,
        account: &str,
        source: &str,
        moment: u64,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<bool, StorageError> {
        let catalog = self.dialect.catalog();
        let (table_id, source_items) = self.base_storage_table(conn, account, source).await?;
        // First, on its own: the copy may take long, and writers of the source go on.
        self.settle_history(conn, table_id, &source_items, moment).await?;
        self.changing_table(conn, account, name, async |conn| {
            let Some(base) = self.insert_table(conn, account, name, description, indexes).await? else {
                return Ok(false);
            };
            let moment = Param::Int(i64::try_from(moment).unwrap_or(i64::MAX));
            let sql = catalog.restore_history.replace("{to}", &base).replace("{from}", &source_items);
            self.without_time_limit(conn).await?;
            match conn.execute(&sql, &[moment]).await {
                Err(e) if e.is_missing_table() => Err(StorageError::NoSuchKeyspace),
                copied => copied.map(|_| true).map_err(|e| self.internal(e)),
            }
        })
        .await
    }

    /// Settles `moment` in the history of table `table_id`, whose base storage table is `base`:
    /// every group stamped up to it has committed, and none later will stamp up to it, so that
    /// what the history holds then is final. A history that is gone is `NoSuchKeyspace`.
    async fn settle_history(
        &self,
        conn: &mut impl Connection,
        table_id: i64,
        base: &str,
        moment: u64,
    ) -> Result<(), StorageError> {
        let settle = [Param::Int(table_id), Param::Int(i64::try_from(moment).unwrap_or(i64::MAX))];
        match conn.execute(&self.dialect.catalog().settle_history.replace("{t}", base), &settle).await {
            Err(e) if e.is_missing_table() => Err(StorageError::NoSuchKeyspace),
            settled => settled.map(drop).map_err(|e| self.internal(e)),
        }
    }

    /// A table's id and the storage table of its base keyspace, read from the catalog (not the
    /// cache: the caller names it in statements that would otherwise not notice it is gone).
    async fn base_storage_table(
        &self,
        conn: &mut impl Connection,
        account: &str,
        name: &str,
    ) -> Result<(i64, String), StorageError> {
        let params = [Param::Text(account), Param::Text(name), Param::Text("")];
        let rows = conn.query(self.dialect.catalog().find_keyspace, &params).await.map_err(|e| self.internal(e))?;
        let mut row = rows.into_iter().next().ok_or(StorageError::NoSuchKeyspace)?;
        let (table_id, storage_table) = (row.int(0), row.text(1));
        let (table_id, storage_table) =
            table_id.and_then(|id| Ok((id, storage_table?))).map_err(|e| self.internal(e))?;
        Ok((table_id, self.dialect.qualified(checked_storage_table(&storage_table)?)))
    }

    /// Copies every item of storage table `from` into `to`, inside the caller's transaction, with
    /// no time limit: it takes as long as the table is large, and it is one statement, so one
    /// moment of `from`.
    async fn copy_items(&self, conn: &mut impl Connection, from: &str, to: &str) -> Result<(), StorageError> {
        self.without_time_limit(conn).await?;
        let copy = self.dialect.catalog().copy_items.replace("{to}", to).replace("{from}", from);
        conn.execute(&copy, &[]).await.map(drop).map_err(|e| self.internal(e))
    }

    /// Lifts the statement time limit for the rest of the caller's transaction, for statements
    /// that take as long as a table is large.
    async fn without_time_limit(&self, conn: &mut impl Connection) -> Result<(), StorageError> {
        match self.dialect.catalog().unlimited_time {
            Some(unlimited) => conn.execute(unlimited, &[]).await.map(drop).map_err(|e| self.internal(e)),
            None => Ok(()),
        }
    }

    /// The storage table of backup `id`'s items.
    fn backup_table(&self, id: i64) -> String {
        self.dialect.qualified(&format!("bk_{id}"))
    }

    pub async fn describe_table(
        &self,
        conn: &mut impl Connection,
        account: &str,
        name: &str,
    ) -> Result<Option<TableRecord>, StorageError> {
        let id = (account.to_string(), name.to_string());
        if self.dialect == Dialect::Sqlite {
            let data_version = conn.query("PRAGMA data_version", &[]).await.and_then(single_int);
            let data_version = data_version.map_err(|e| self.internal(e))?;
            let mut cache = self.descriptions.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.data_version != data_version {
                *cache = DescriptionCache { data_version, records: HashMap::new() };
            }
            if let Some(record) = cache.records.get(&id) {
                return Ok(record.clone());
            }
        }
        let params = [Param::Text(account), Param::Text(name)];
        let rows = conn.query(self.dialect.catalog().describe_table, &params).await.map_err(|e| self.internal(e))?;
        let record = rows
            .into_iter()
            .next()
            .map(|mut row| Ok(TableRecord { description: row.bytes(0)?, version: row.int(1)? as u64 }))
            .transpose()
            .map_err(|e| self.internal(e))?;
        if self.dialect == Dialect::Sqlite {
            self.descriptions.lock().unwrap_or_else(PoisonError::into_inner).records.insert(id, record.clone());
        }
        Ok(record)
    }

    /// Whether the table's description is at `version`: one primary-key lookup, which confirms a
    /// description read earlier (versions never repeat).
    pub async fn description_is(
        &self,
        conn: &mut impl Connection,
        account: &str,
        name: &str,
        version: u64,
    ) -> Result<bool, StorageError> {
        let answer = conn.run(&self.description_at(account, name, version)).await.map_err(|e| self.internal(e))?;
        Ok(answer.count > 0)
    }

    /// [`SqlStore::get`], and whether the table's description is still at `version`, sent
    /// together (one round trip on a driver that pipelines).
    pub async fn get_confirming(
        &self,
        conn: &mut impl Connection,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
        version: u64,
    ) -> Result<(Option<StoredItem>, bool), StorageError> {
        let entry = self.keyspace(conn, account, keyspace).await?;
        let get = get_statement(entry.sql.get.as_str().into(), key);
        let statements = [self.description_at(account, &keyspace.table, version), get];
        let [confirmed, item] = <[_; 2]>::try_from(conn.pipeline(&statements).await).expect("two answers");
        let confirmed = confirmed.map_err(|e| self.internal(e))?.count > 0;
        let item = match item {
            Err(e) if e.is_missing_table() => {
                self.forget(conn, account, &keyspace.table);
                self.get(conn, account, keyspace, key).await?
            }
            item => stored_at_key(item.map_err(|e| self.internal(e))?.rows, key).map_err(|e| self.internal(e))?,
        };
        Ok((item, confirmed))
    }

    /// [`SqlStore::query`], and whether the table's description is still at `version`: the
    /// check is sent with the page's first statement.
    pub async fn query_confirming(
        &self,
        conn: &mut impl Connection,
        account: &str,
        request: &QueryRequest,
        version: u64,
    ) -> Result<(Page, bool), StorageError> {
        self.read_query(conn, account, request, Some(version))
            .await
            .map(|(page, confirmed)| (page, confirmed != Some(false)))
    }

    pub async fn update_table(
        &self,
        conn: &mut impl Connection,
        account: &str,
        name: &str,
        expected_version: u64,
        change: &TableChange<'_>,
    ) -> Result<Option<u64>, StorageError> {
        let description = text(&change.description)?;
        self.changing_table(conn, account, name, async |conn| {
            let catalog = self.dialect.catalog();
            let rows = conn.query(catalog.table_for_update, &[Param::Text(account), Param::Text(name)]).await;
            let row = rows.map_err(|e| self.internal(e))?.into_iter().next().ok_or(StorageError::NoSuchKeyspace)?;
            let (id, version) = row.int(0).and_then(|id| Ok((id, row.int(1)?))).map_err(|e| self.internal(e))?;
            if version as u64 != expected_version {
                return Ok(None);
            }
            let new_version = self.new_table_version(conn).await?;
            let params = [Param::Int(id), Param::Text(description), Param::Int(new_version)];
            conn.execute(catalog.update_description, &params).await.map_err(|e| self.internal(e))?;
            for index in change.drop_indexes.iter() {
                self.drop_keyspace(conn, id, index).await?;
            }
            for index in change.create_indexes.iter() {
                self.create_keyspace(conn, id, index).await?;
            }
            if change.history != HistoryChange::Keep {
                let base = self.base_storage_table(conn, account, name).await?.1;
                self.ddl(conn, catalog.drop_history, &base).await?;
                if change.history == HistoryChange::Start {
                    self.ddl(conn, catalog.create_history, &base).await?;
                    self.without_time_limit(conn).await?;
                    let started = conn.execute(&catalog.start_history.replace("{t}", &base), &[]).await;
                    started.map_err(|e| self.internal(e))?;
                }
            }
            Ok(Some(new_version as u64))
        })
        .await
    }

    pub async fn list_tables(
        &self,
        conn: &mut impl Connection,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let list = self.dialect.catalog().list_tables;
        self.list_page(conn, list, account, start_after, limit, |mut row| row.text(0)).await
    }

    /// Drops the table; with `keep` (ARN, record), keeps its items as that backup first.
    pub async fn delete_table(
        &self,
        conn: &mut impl Connection,
        account: &str,
        name: &str,
        keep: Option<(&str, &[u8])>,
    ) -> Result<bool, StorageError> {
        self.changing_table(conn, account, name, async |conn| {
            let catalog = self.dialect.catalog();
            if let Some((arn, record)) = keep {
                // The row locked first, so that no write group commits between the copy and the
                // deletion (PostgreSQL; SQLite's write transactions are serial).
                let rows = conn.query(catalog.table_for_update, &[Param::Text(account), Param::Text(name)]).await;
                if rows.map_err(|e| self.internal(e))?.is_empty() {
                    return Ok(false);
                }
                let base = self.base_storage_table(conn, account, name).await?.1;
                self.insert_backup(conn, account, arn, record, &base).await?;
            }
            let rows = conn.query(catalog.delete_table, &[Param::Text(account), Param::Text(name)]).await;
            let Some(row) = rows.map_err(|e| self.internal(e))?.into_iter().next() else { return Ok(false) };
            let id = row.int(0).map_err(|e| self.internal(e))?;
            let indexes = conn.query(catalog.table_indexes, &[Param::Int(id)]).await.map_err(|e| self.internal(e))?;
            for mut index in indexes {
                let index = index.text(0).map_err(|e| self.internal(e))?;
                self.drop_keyspace(conn, id, &index).await?;
            }
            conn.execute(catalog.delete_changes, &[Param::Int(id)]).await.map_err(|e| self.internal(e))?;
            Ok(true)
        })
        .await
    }

    pub async fn keyspace_stats(
        &self,
        conn: &mut impl Connection,
        account: &str,
        keyspace: &Keyspace,
    ) -> Result<(u64, u64), StorageError> {
        let rows = self
            .on_keyspace(conn, account, keyspace, |entry| Statement::select(entry.sql.stats.clone(), Vec::new()))
            .await?;
        let row = rows.first().ok_or_else(|| self.internal(SqlError::other("no statistics")))?;
        row.int(0).and_then(|count| Ok((count as u64, row.int(1)? as u64))).map_err(|e| self.internal(e))
    }

    pub async fn get(
        &self,
        conn: &mut impl Connection,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
    ) -> Result<Option<StoredItem>, StorageError> {
        let get = |entry: &KeyspaceEntry| get_statement(entry.sql.get.clone().into(), key);
        let rows = self.on_keyspace(conn, account, keyspace, get).await?;
        stored_at_key(rows, key).map_err(|e| self.internal(e))
    }

    pub async fn query(
        &self,
        conn: &mut impl Connection,
        account: &str,
        request: &QueryRequest,
    ) -> Result<Page, StorageError> {
        Ok(self.read_query(conn, account, request, None).await?.0)
    }

    pub async fn scan(
        &self,
        conn: &mut impl Connection,
        account: &str,
        request: &ScanRequest,
    ) -> Result<Page, StorageError> {
        let dialect = self.dialect;
        let mut read = ChunkedRead::new(request.limit, request.byte_budget, request.after.clone());
        while let Some((limit, after)) = read.next_chunk() {
            let after = after.cloned();
            let rows = self
                .on_keyspace(conn, account, &request.keyspace, |entry| {
                    let (sql, params) = scan_sql(dialect, &entry.storage_table, request, after.as_ref(), limit);
                    Statement::select(sql, params)
                })
                .await?;
            read.add(rows.into_iter().map(|row| stored_item(row).map_err(|e| self.internal(e))))?;
        }
        Ok(read.finish())
    }

    /// A group with one put or delete is one statement. Any other group is one transaction,
    /// sent whole where the driver pipelines (one round trip for a guarded put).
    pub async fn write(
        &self,
        conn: &mut impl Connection,
        account: &str,
        writes: &[Write],
    ) -> Result<Committed, Failure> {
        match self.write_once(conn, account, writes).await {
            // A storage table another process dropped (its keyspace forgotten by now), maybe for
            // a table it made again: nothing was applied, so look again, as reads do.
            Err(Failure::Storage(StorageError::NoSuchKeyspace)) => self.write_once(conn, account, writes).await,
            written => written,
        }
    }

    pub async fn read_changes(
        &self,
        conn: &mut impl Connection,
        account: &str,
        table: &str,
        after: u64,
        limit: u32,
    ) -> Result<ChangePage, StorageError> {
        // A cached table id may be of a table since deleted (and perhaps made anew): its catalog
        // row is gone, so look it up once more.
        for _ in 0..2 {
            let table_id = self.keyspace(conn, account, &Keyspace::table(table)).await?.table_id;
            let catalog = self.dialect.catalog();
            let after = Param::Int(i64::try_from(after).unwrap_or(i64::MAX));
            let statements = [
                Statement::select(catalog.read_changes, vec![Param::Int(table_id), after, Param::Int(limit.into())]),
                // After the records, so that it is at least the last of them.
                Statement::select(catalog.last_change, vec![Param::Int(table_id)]),
            ];
            let [changes, last] = <[_; 2]>::try_from(conn.pipeline(&statements).await).expect("two answers");
            let page = (|| {
                let Some(last) = last?.rows.into_iter().next() else { return Ok(None) };
                let changes = changes?
                    .rows
                    .into_iter()
                    .map(|mut row| Ok(ChangeRecord { sequence: row.int(0)? as u64, record: row.bytes(1)? }))
                    .collect::<Result<Vec<_>, SqlError>>()?;
                Ok(Some(ChangePage { changes, last_sequence: last.int(0)? as u64 }))
            })();
            match page.map_err(|e| self.internal(e))? {
                Some(page) => return Ok(page),
                None => self.forget(conn, account, table),
            }
        }
        Err(StorageError::NoSuchKeyspace)
    }

    pub async fn expired(
        &self,
        conn: &mut impl Connection,
        account: &str,
        keyspace: &Keyspace,
        now: u64,
        limit: u32,
    ) -> Result<Vec<ItemKey>, StorageError> {
        let params = vec![Param::Int(i64::try_from(now).unwrap_or(i64::MAX)), Param::Int(i64::from(limit))];
        let rows = self
            .on_keyspace(conn, account, keyspace, |entry| Statement::select(entry.sql.expired.clone(), params.clone()))
            .await?;
        self.read_rows(rows, |mut row| Ok(ItemKey { partition: row.bytes(0)?, sort: row.bytes(1)? }))
    }

    /// (account, description) of every table that may have an index being created, for the work
    /// that fills new indexes. Not part of the handler's contract.
    pub async fn tables_with_creating_indexes(
        &self,
        conn: &mut impl Connection,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let rows = conn.query(self.dialect.catalog().creating_indexes, &[]).await.map_err(|e| self.internal(e))?;
        self.read_rows(rows, |mut row| Ok((row.text(0)?, row.bytes(1)?)))
    }

    /// (account, name) of every table that may have time to live enabled, for the expiry sweep.
    /// Not part of the handler's contract.
    pub async fn tables_with_time_to_live(
        &self,
        conn: &mut impl Connection,
    ) -> Result<Vec<(String, String)>, StorageError> {
        let rows = conn.query(self.dialect.catalog().time_to_live_tables, &[]).await.map_err(|e| self.internal(e))?;
        self.read_rows(rows, |mut row| Ok((row.text(0)?, row.text(1)?)))
    }

    /// Drops up to `limit` change records, of any table, written before `before` (seconds since
    /// the epoch), oldest first. Not part of the handler's contract: the host's worker trims, a
    /// bounded batch per transaction.
    pub async fn trim_changes(
        &self,
        conn: &mut impl Connection,
        before: u64,
        limit: u64,
    ) -> Result<TrimmedChanges, StorageError> {
        let catalog = self.dialect.catalog();
        let before = Param::Int(i64::try_from(before).unwrap_or(i64::MAX));
        let batch = Param::Int(i64::try_from(limit).unwrap_or(i64::MAX));
        let deleted = conn.execute(catalog.trim_changes, &[before, batch]).await.map_err(|e| self.internal(e))?;
        // A batch short of its limit took every record there was to take.
        let left = if deleted >= limit {
            let rows = conn.query(catalog.stale_changes, &[before]).await.map_err(|e| self.internal(e))?;
            rows.into_iter().next().map_or(Ok(0), |row| row.int(0)).map_err(|e| self.internal(e))? as u64
        } else {
            0
        };
        Ok(TrimmedChanges { deleted, left })
    }

    /// (account, name, description) of every table that may keep history, for the work that
    /// folds what is past its recovery period. Not part of the handler's contract.
    pub async fn tables_with_history(
        &self,
        conn: &mut impl Connection,
    ) -> Result<Vec<(String, String, Vec<u8>)>, StorageError> {
        let rows = conn.query(self.dialect.catalog().history_tables, &[]).await.map_err(|e| self.internal(e))?;
        self.read_rows(rows, |mut row| Ok((row.text(0)?, row.text(1)?, row.bytes(2)?)))
    }

    /// The accounts that have a table named `name`, in order: background jobs are known by the
    /// name of a table they keep, not by its account. Not part of the handler's contract.
    pub async fn accounts_with_table(
        &self,
        conn: &mut impl Connection,
        name: &str,
    ) -> Result<Vec<String>, StorageError> {
        let rows = conn.query(self.dialect.catalog().accounts_with_table, &[Param::Text(name)]).await;
        self.read_rows(rows.map_err(|e| self.internal(e))?, |mut row| row.text(0))
    }

    /// (account, backup) of every SYSTEM backup, for the work that deletes those past their
    /// recovery period. Not part of the handler's contract.
    pub async fn system_backups(
        &self,
        conn: &mut impl Connection,
    ) -> Result<Vec<(String, StoredBackup)>, StorageError> {
        let rows = conn.query(self.dialect.catalog().system_backups, &[]).await.map_err(|e| self.internal(e))?;
        self.read_rows(rows, |mut row| Ok((row.text(0)?, StoredBackup { arn: row.text(1)?, record: row.bytes(2)? })))
    }

    /// Forgets up to `limit` entries of the table's history stamped at or before `before` (ms)
    /// that no moment after it needs: entries a later entry of their key at or before `before`
    /// replaced, and deletions with nothing earlier of their key left to hide. Restoring to any
    /// moment after `before` gives what it gave before. How many it forgot; a table without
    /// history has nothing to forget. Not part of the handler's contract: the host's worker folds,
    /// a bounded batch per transaction.
    pub async fn fold_history(
        &self,
        conn: &mut impl Connection,
        account: &str,
        table: &str,
        before: u64,
        limit: u64,
    ) -> Result<u64, StorageError> {
        let base = self.base_storage_table(conn, account, table).await?.1;
        let params = [Param::Int(i64::try_from(before).unwrap_or(i64::MAX)), Param::Int(limit as i64)];
        match conn.execute(&self.dialect.catalog().fold_history.replace("{t}", &base), &params).await {
            Err(e) if e.is_missing_table() => Ok(0),
            folded => folded.map_err(|e| self.internal(e)),
        }
    }

    /// A page of the table's history for exports, in key order, strictly after `after`, at most
    /// `limit` keys. With `from`, the keys changed in (from, to]: each with its items at `from`
    /// and at `to`, left out when it had none at either. Without, the table as restoring it to
    /// `to` would make it: each item with no `old`. The first page settles `to` first, as
    /// `restore_moment` does, so the pages are exact to the millisecond. A table gone or without
    /// history is `NoSuchKeyspace`. Not part of the handler's contract: the host's worker exports.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_history(
        &self,
        conn: &mut impl Connection,
        account: &str,
        table: &str,
        from: Option<u64>,
        to: u64,
        after: Option<&ItemKey>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StorageError> {
        let (table_id, base) = self.base_storage_table(conn, account, table).await?;
        if after.is_none() {
            self.settle_history(conn, table_id, &base, to).await?;
        }
        // The least key after `after` is its partition with its sort key and a zero byte; the
        // least of all is empty.
        let (partition, sort) =
            after.map_or((&[][..], Vec::new()), |key| (&key.partition, [&key.sort[..], &[0]].concat()));
        let millis = |ms: u64| Param::Int(i64::try_from(ms).unwrap_or(i64::MAX));
        let params = [
            millis(to),
            from.map_or(Param::Int(-1), millis),
            Param::Bytes(partition),
            Param::Bytes(&sort),
            Param::Int(i64::from(limit)),
        ];
        let catalog = self.dialect.catalog();
        let sql = catalog.read_history.replace("{t}", &base);
        let rows = match self.query_with_settings(conn, catalog.read_history_settings, &sql, &params).await {
            Err(e) if e.is_missing_table() => return Err(StorageError::NoSuchKeyspace),
            rows => rows.map_err(|e| self.internal(e))?,
        };
        self.read_rows(rows, |mut row| {
            Ok(HistoryEntry {
                key: ItemKey { partition: row.bytes(0)?, sort: row.bytes(1)? },
                at: row.int(2)? as u64,
                old: row.optional_bytes(3)?,
                new: row.optional_bytes(4)?,
            })
        })
    }

    /// Runs a query, under `settings` (`SET LOCAL` statements) in a transaction of its own when
    /// there are any.
    async fn query_with_settings(
        &self,
        conn: &mut impl Connection,
        settings: Option<&str>,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, SqlError> {
        let Some(settings) = settings else { return conn.query(sql, params).await };
        conn.execute("BEGIN", &[]).await?;
        let rows = match conn.batch(settings).await {
            Ok(()) => conn.query(sql, params).await,
            Err(e) => Err(e),
        };
        // Read only: the end of the transaction changes nothing either way.
        let ended = conn.execute(if rows.is_ok() { "COMMIT" } else { "ROLLBACK" }, &[]).await;
        let rows = rows?;
        ended?;
        Ok(rows)
    }

    /// A query's page, its first statement sent together with "the description is at
    /// `confirm`" when given: whether it was (`None` when not asked).
    async fn read_query(
        &self,
        conn: &mut impl Connection,
        account: &str,
        request: &QueryRequest,
        mut confirm: Option<u64>,
    ) -> Result<(Page, Option<bool>), StorageError> {
        let (dialect, bounds) = (self.dialect, sort_bounds(&request.sort));
        let mut confirmed = None;
        let mut read = ChunkedRead::new(request.limit, request.byte_budget, request.after.clone());
        while let Some((limit, after)) = read.next_chunk() {
            let after = after.cloned();
            let chunk = |entry: &KeyspaceEntry| {
                let (sql, params) = query_sql(dialect, &entry.storage_table, request, &bounds, after.as_ref(), limit);
                Statement::select(sql, params)
            };
            let rows = match confirm.take() {
                None => self.on_keyspace(conn, account, &request.keyspace, chunk).await?,
                Some(version) => {
                    let entry = self.keyspace(conn, account, &request.keyspace).await?;
                    let statements = [self.description_at(account, &request.keyspace.table, version), chunk(&entry)];
                    let [current, rows] = <[_; 2]>::try_from(conn.pipeline(&statements).await).expect("two answers");
                    confirmed = Some(current.map_err(|e| self.internal(e))?.count > 0);
                    match rows {
                        Err(e) if e.is_missing_table() => {
                            self.forget(conn, account, &request.keyspace.table);
                            self.on_keyspace(conn, account, &request.keyspace, chunk).await?
                        }
                        rows => rows.map_err(|e| self.internal(e))?.rows,
                    }
                }
            };
            read.add(rows.into_iter().map(|row| stored_item(row).map_err(|e| self.internal(e))))?;
        }
        Ok((read.finish(), confirmed))
    }

    async fn write_once(
        &self,
        conn: &mut impl Connection,
        account: &str,
        writes: &[Write],
    ) -> Result<Committed, Failure> {
        let mut entries = Vec::with_capacity(writes.len());
        for write in writes {
            entries.push(self.keyspace(conn, account, &write_keyspace(write)).await?);
        }
        // One version for the whole group: it is new for every key the group puts.
        let puts = writes.iter().any(|w| matches!(w, Write::Put { .. }));
        let version = match self.dialect.binds_new_version() && puts {
            true => Some(self.new_item_version(conn).await.map_err(|e| self.internal(e))?),
            false => None,
        };
        let catalog = self.dialect.catalog();
        // One stamp for the group's history entries (see `Write::AppendHistory`), where the store
        // stamps them.
        let appends = writes.iter().any(|w| matches!(w, Write::AppendHistory { .. }));
        let stamp = (appends && catalog.next_history.is_some()).then(now_millis);
        // The statements, the write each belongs to, and which give change sequence numbers.
        let (mut statements, mut of_write, mut sequences) = (Vec::new(), Vec::new(), Vec::new());
        for (index, (write, entry)) in writes.iter().zip(&entries).enumerate() {
            let table = Param::Int(entry.table_id);
            match write {
                Write::TableAt { version, .. } => statements.push(Statement {
                    sql: catalog.table_at.into(),
                    params: vec![table, Param::Int(i64::try_from(*version).unwrap_or(-1))],
                    returns_rows: true,
                    guard: Guard::OneRow,
                    table_guard: true,
                }),
                Write::AppendChange { record, .. } => {
                    sequences.push(statements.len());
                    statements.push(Statement::select(catalog.next_change, vec![table]));
                    of_write.push(index);
                    let params = vec![table, Param::Bytes(record)];
                    let append = Statement {
                        returns_rows: false,
                        guard: Guard::OneRow,
                        ..Statement::select(catalog.insert_change, params)
                    };
                    statements.push(append);
                }
                Write::AppendHistory { key, .. } => {
                    if let Some(next_history) = catalog.next_history {
                        let stamp = Param::Int(stamp.expect("the group appends history"));
                        statements.push(Statement::select(next_history, vec![table, stamp]));
                    }
                    let params = vec![table, Param::Bytes(&key.partition), Param::Bytes(&key.sort)];
                    let append = Statement::select(entry.sql.append_history.as_str(), params);
                    statements.push(Statement { returns_rows: false, guard: Guard::OneRow, ..append });
                }
                _ => {
                    let Some(plan) = plan(write, &entry.sql) else { continue };
                    let key = item_write(write).expect("an item write").1;
                    statements.push(Statement {
                        sql: plan.sql.into(),
                        params: plan.params(key, version)?,
                        returns_rows: plan.returns_rows,
                        guard: plan.guard,
                        table_guard: false,
                    });
                }
            }
            of_write.resize(statements.len(), index);
        }
        let answered = match (writes, statements.as_slice()) {
            ([Write::Put { .. } | Write::Delete { .. }], [statement]) => conn
                .run(statement)
                .await
                .map(|answer| vec![answer])
                .map_err(|error| TransactionFailed { at: Some(0), error }),
            _ => conn.transaction(self.dialect.begin(), &statements).await,
        };
        match answered {
            Ok(answers) => {
                let mut committed = Committed::default();
                for at in sequences {
                    let sequence = answers[at].rows.first().map(|row| row.int(0)).transpose();
                    let sequence = sequence.and_then(|s| s.ok_or_else(|| SqlError::other("no sequence number")));
                    committed.change_sequences.push(sequence.map_err(|e| self.internal(e))? as u64);
                }
                Ok(committed)
            }
            Err(TransactionFailed { at, error }) => {
                let index = at.map_or(0, |at| of_write[at]);
                Err(match error.kind {
                    // Rolled back whole by the database: as a guard that failed, decided again.
                    SqlErrorKind::GuardFailed | SqlErrorKind::Conflict => Failure::GuardFailed(index as u32),
                    SqlErrorKind::OutcomeUnknown => StorageError::OutcomeUnknown.into(),
                    _ => self.failed_on(conn, account, &write_keyspace(&writes[index]).table, error).into(),
                })
            }
        }
    }

    fn description_at<'a>(&self, account: &'a str, name: &'a str, version: u64) -> Statement<'a> {
        let version = Param::Int(i64::try_from(version).unwrap_or(-1));
        Statement::select(self.dialect.catalog().description_at, vec![Param::Text(account), Param::Text(name), version])
    }

    fn internal(&self, e: SqlError) -> StorageError {
        let dialect = match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        };
        StorageError::Internal(format!("{dialect}: {e}"))
    }

    /// Begins a transaction of dependent statements (the catalog's changes), ended by [`SqlStore::end`].
    /// Each row as `read` makes it; a row it cannot read is the store's failure.
    fn read_rows<T>(
        &self,
        rows: Vec<Row>,
        read: impl FnMut(Row) -> Result<T, SqlError>,
    ) -> Result<Vec<T>, StorageError> {
        rows.into_iter().map(read).collect::<Result<_, SqlError>>().map_err(|e| self.internal(e))
    }

    /// One page of a listing statement (account, start after, limit), read row by row.
    async fn list_page<T>(
        &self,
        conn: &mut impl Connection,
        list: &str,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
        read: impl FnMut(Row) -> Result<T, SqlError>,
    ) -> Result<Vec<T>, StorageError> {
        let params = [Param::Text(account), Param::Text(start_after.unwrap_or("")), Param::Int(i64::from(limit))];
        let rows = conn.query(list, &params).await.map_err(|e| self.internal(e))?;
        self.read_rows(rows, read)
    }

    /// Runs `work` on a table's catalog entry in a transaction of its own: committed when it
    /// succeeds, rolled back otherwise, and the table forgotten by this process's caches after
    /// the commit, so that no concurrent lookup re-caches it in between.
    async fn changing_table<C: Connection, T>(
        &self,
        conn: &mut C,
        account: &str,
        name: &str,
        work: impl AsyncFnOnce(&mut C) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let done = self.transaction(conn, work).await;
        self.forget(conn, account, name);
        done
    }

    /// Runs `work` in a transaction of its own: committed when it succeeds, rolled back otherwise.
    async fn transaction<C: Connection, T>(
        &self,
        conn: &mut C,
        work: impl AsyncFnOnce(&mut C) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        conn.execute(self.dialect.begin(), &[]).await.map_err(|e| self.internal(e))?;
        let work = work(conn).await;
        let ended = match &work {
            Ok(_) => conn.execute("COMMIT", &[]).await.map(drop),
            Err(_) => Ok(()),
        };
        if work.is_err() || ended.is_err() {
            // A failed COMMIT may leave the transaction open; one already ended makes ROLLBACK
            // fail harmlessly.
            let _ = conn.execute("ROLLBACK", &[]).await;
        }
        ended.map_err(|e| self.internal(e))?;
        work
    }

    /// The keyspace from the cache, else from the catalog.
    async fn keyspace(
        &self,
        conn: &mut impl Connection,
        account: &str,
        keyspace: &Keyspace,
    ) -> Result<Arc<KeyspaceEntry>, StorageError> {
        let id = (account.to_string(), keyspace.clone());
        if let Some(entry) = self.keyspaces.read().unwrap_or_else(PoisonError::into_inner).get(&id) {
            return Ok(entry.clone());
        }
        let params = [Param::Text(account), Param::Text(&keyspace.table), Param::Text(index_column(keyspace))];
        let rows = conn.query(self.dialect.catalog().find_keyspace, &params).await.map_err(|e| self.internal(e))?;
        let mut row = rows.into_iter().next().ok_or(StorageError::NoSuchKeyspace)?;
        let (table_id, storage_table) = (row.int(0), row.text(1));
        let (table_id, storage_table) =
            table_id.and_then(|id| Ok((id, storage_table?))).map_err(|e| self.internal(e))?;
        let entry = Arc::new(KeyspaceEntry::new(self.dialect, table_id, &storage_table)?);
        self.keyspaces.write().unwrap_or_else(PoisonError::into_inner).insert(id, entry.clone());
        Ok(entry)
    }

    /// Forgets what this store knew of a table, and the connection its statements.
    fn forget(&self, conn: &mut impl Connection, account: &str, table: &str) {
        let mut keyspaces = self.keyspaces.write().unwrap_or_else(PoisonError::into_inner);
        let stale: Vec<_> = keyspaces.keys().filter(|(a, k)| a == account && k.table == table).cloned().collect();
        for entry in stale.iter().filter_map(|key| keyspaces.remove(key)) {
            conn.forget_statements(&entry.sql.all());
        }
        drop(keyspaces);
        let mut descriptions = self.descriptions.lock().unwrap_or_else(PoisonError::into_inner);
        descriptions.records.remove(&(account.to_string(), table.to_string()));
    }

    /// Runs the statement `statement` makes for an existing keyspace: its rows. Looks the
    /// keyspace up again once if its storage table is gone (another process dropped it, and may
    /// have made the keyspace anew).
    async fn on_keyspace<'e>(
        &self,
        conn: &mut impl Connection,
        account: &str,
        keyspace: &Keyspace,
        statement: impl Fn(&KeyspaceEntry) -> Statement<'e> + Send + Sync,
    ) -> Result<Vec<Row>, StorageError> {
        let entry = self.keyspace(conn, account, keyspace).await?;
        match conn.run(&statement(&entry)).await {
            Err(e) if e.is_missing_table() => {
                self.forget(conn, account, &keyspace.table);
                let entry = self.keyspace(conn, account, keyspace).await?;
                let answer = conn.run(&statement(&entry)).await;
                answer.map(|a| a.rows).map_err(|e| self.failed_on(conn, account, &keyspace.table, e))
            }
            answer => answer.map(|a| a.rows).map_err(|e| self.internal(e)),
        }
    }

    /// Maps an error of a statement on a table's keyspace. A missing storage table means another
    /// process dropped the keyspace since this store looked it up: as if it never existed.
    fn failed_on(&self, conn: &mut impl Connection, account: &str, table: &str, e: SqlError) -> StorageError {
        if e.is_missing_table() {
            self.forget(conn, account, table);
            return StorageError::NoSuchKeyspace;
        }
        self.internal(e)
    }

    /// A SQLite item version (see [`VersionClock`]), reserving a block first when none is left.
    async fn new_item_version(&self, conn: &mut impl Connection) -> Result<i64, SqlError> {
        let taken = self.take_version(None);
        if let Some(version) = taken {
            return Ok(version);
        }
        let sql = "UPDATE version_clock SET reserved = reserved + ?1 RETURNING reserved";
        let reserved = single_int(conn.query(sql, &[Param::Int(VERSION_BLOCK)]).await?)?;
        Ok(self.take_version(Some(reserved)).expect("a block was just reserved"))
    }

    /// The next version of the clock, after starting a new block up to `reserved` if given.
    fn take_version(&self, reserved: Option<i64>) -> Option<i64> {
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(reserved) = reserved {
            *clock = VersionClock { next: reserved - VERSION_BLOCK + 1, reserved };
        }
        (clock.next <= clock.reserved).then(|| {
            clock.next += 1;
            clock.next - 1
        })
    }

    /// A description version from the item versions' clock, so it never repeats either (SQLite:
    /// taken straight from the persistent counter, above every block any store holds).
    async fn new_table_version(&self, conn: &mut impl Connection) -> Result<i64, StorageError> {
        let rows = conn.query(self.dialect.catalog().new_table_version, &[]).await;
        rows.and_then(single_int).map_err(|e| self.internal(e))
    }

    /// Registers a keyspace of table `table_id` (`index` '' for the base) and creates its storage
    /// table, named after the keyspace's id.
    /// Creates a keyspace of the table and its storage table, which it answers.
    async fn create_keyspace(
        &self,
        conn: &mut impl Connection,
        table_id: i64,
        index: &str,
    ) -> Result<String, StorageError> {
        let catalog = self.dialect.catalog();
        let created = async {
            let id =
                single_int(conn.query(catalog.insert_keyspace, &[Param::Int(table_id), Param::Text(index)]).await?)?;
            conn.execute(catalog.name_keyspace, &[Param::Int(id)]).await?;
            let storage_table = self.dialect.qualified(&format!("ks_{id}"));
            conn.batch(&catalog.create_storage_table.replace("{t}", &storage_table)).await?;
            Ok(storage_table)
        };
        created.await.map_err(|e| self.internal(e))
    }

    async fn drop_keyspace(&self, conn: &mut impl Connection, table_id: i64, index: &str) -> Result<(), StorageError> {
        let catalog = self.dialect.catalog();
        let rows = conn.query(catalog.delete_keyspace, &[Param::Int(table_id), Param::Text(index)]).await;
        for mut row in rows.map_err(|e| self.internal(e))? {
            let storage_table = row.text(0).map_err(|e| self.internal(e))?;
            let storage_table = self.dialect.qualified(checked_storage_table(&storage_table)?);
            self.ddl(conn, catalog.drop_storage_table, &storage_table).await?;
            if index.is_empty() {
                // The table's history, if it keeps one, goes with its items.
                self.ddl(conn, catalog.drop_history, &storage_table).await?;
            }
        }
        Ok(())
    }

    /// Runs the statements of `template` on storage table `table` (its `{t}`).
    async fn ddl(&self, conn: &mut impl Connection, template: &str, table: &str) -> Result<(), StorageError> {
        conn.batch(&template.replace("{t}", table)).await.map_err(|e| self.internal(e))
    }
}

/// A store and its connection as the handler's synchronous `Storage`, for connections whose calls
/// complete at once (rusqlite, Spin's interfaces): each call runs to its end in [`ready`].
pub struct Synchronous<C> {
    pub store: SqlStore,
    pub conn: C,
}

impl<C: Connection> Synchronous<C> {
    /// Opens a store on `conn` (see [`SqlStore::open`]).
    pub fn open(mut conn: C, dialect: Dialect) -> Result<Self, SqlError> {
        let store = ready(SqlStore::open(&mut conn, dialect))?;
        Ok(Synchronous { store, conn })
    }

    /// See [`SqlStore::tables_with_creating_indexes`].
    pub fn tables_with_creating_indexes(&mut self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        ready(self.store.tables_with_creating_indexes(&mut self.conn))
    }

    /// See [`SqlStore::tables_with_time_to_live`].
    pub fn tables_with_time_to_live(&mut self) -> Result<Vec<(String, String)>, StorageError> {
        ready(self.store.tables_with_time_to_live(&mut self.conn))
    }

    /// See [`SqlStore::trim_changes`].
    pub fn trim_changes(&mut self, before: u64, limit: u64) -> Result<TrimmedChanges, StorageError> {
        ready(self.store.trim_changes(&mut self.conn, before, limit))
    }

    /// See [`SqlStore::tables_with_history`].
    pub fn tables_with_history(&mut self) -> Result<Vec<(String, String, Vec<u8>)>, StorageError> {
        ready(self.store.tables_with_history(&mut self.conn))
    }

    /// See [`SqlStore::fold_history`].
    pub fn fold_history(&mut self, account: &str, table: &str, before: u64, limit: u64) -> Result<u64, StorageError> {
        ready(self.store.fold_history(&mut self.conn, account, table, before, limit))
    }

    /// See [`SqlStore::system_backups`].
    pub fn system_backups(&mut self) -> Result<Vec<(String, StoredBackup)>, StorageError> {
        ready(self.store.system_backups(&mut self.conn))
    }

    /// See [`SqlStore::find_account`].
    pub fn find_account(&mut self, name: &str) -> Result<Option<crate::accounts::AccountRecord>, SqlError> {
        ready(self.store.find_account(&mut self.conn, name))
    }
}

impl<C: Connection> Storage for Synchronous<C> {
    fn call(&mut self, account: &str, request: Request<'_>) -> Result<Answer, Failure> {
        ready(self.store.call(&mut self.conn, account, request))
    }
}

fn get_statement<'a>(sql: Cow<'a, str>, key: &'a ItemKey) -> Statement<'a> {
    Statement::select(sql, vec![Param::Bytes(&key.partition), Param::Bytes(&key.sort)])
}

/// The item at `key` from a `get` statement's rows (doc, version).
fn stored_at_key(rows: Vec<Row>, key: &ItemKey) -> Result<Option<StoredItem>, SqlError> {
    rows.into_iter()
        .next()
        .map(|mut row| Ok(StoredItem { key: key.clone(), document: row.bytes(0)?, version: row.int(1)? as u64 }))
        .transpose()
}

fn stored_item(mut row: Row) -> Result<StoredItem, SqlError> {
    Ok(StoredItem {
        key: ItemKey { partition: row.bytes(0)?, sort: row.bytes(1)? },
        document: row.bytes(2)?,
        version: row.int(3)? as u64,
    })
}

/// The integer in the first column of the first row.
/// The store's clock for history stamps: milliseconds since the epoch.
fn now_millis() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

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
pub async fn migrate(conn: &mut impl Connection, dialect: Dialect) -> Result<(), SqlError> {
    let latest = dialect.migrations().last().map_or(0, |m| m.version);
    if applied_version(conn, dialect).await.ok() == Some(latest) {
        return Ok(());
    }
    conn.execute(dialect.begin(), &[]).await?;
    let migrated = match apply_migrations(conn, dialect).await {
        Ok(()) => conn.execute("COMMIT", &[]).await,
        Err(e) => Err(e),
    };
    if migrated.is_err() {
        let _ = conn.execute("ROLLBACK", &[]).await;
    }
    migrated.map(|_| ())
}

async fn applied_version(conn: &mut impl Connection, dialect: Dialect) -> Result<i64, SqlError> {
    match dialect {
        Dialect::Sqlite => single_int(conn.query("PRAGMA user_version", &[]).await?),
        Dialect::Postgres => {
            single_int(conn.query("SELECT coalesce(max(version), 0) FROM dynabox.schema_migrations", &[]).await?)
        }
    }
}

async fn apply_migrations(conn: &mut impl Connection, dialect: Dialect) -> Result<(), SqlError> {
    if dialect == Dialect::Postgres {
        // Released by the commit or rollback, so a failed migration cannot leave a pooled
        // connection holding it.
        conn.execute("SELECT pg_advisory_xact_lock($1)", &[Param::Int(POSTGRES_MIGRATION_LOCK)]).await?;
        conn.batch(
            "CREATE SCHEMA IF NOT EXISTS dynabox;
             CREATE TABLE IF NOT EXISTS dynabox.schema_migrations (
                 version bigint PRIMARY KEY,
                 applied timestamptz NOT NULL DEFAULT now()
             );",
        )
        .await?;
    }
    let applied = applied_version(conn, dialect).await?;
    for migration in dialect.migrations().iter().filter(|m| m.version > applied) {
        let context =
            |e: SqlError| SqlError { message: format!("migration {}: {}", migration.version, e.message), ..e };
        conn.batch(migration.sql).await.map_err(context)?;
        match (dialect, migration.version) {
            (Dialect::Sqlite, 2) => start_version_clock_above_stored_versions(conn).await?,
            (Dialect::Sqlite, 3) => add_hash_and_expiry_to_item_tables(conn).await?,
            _ => {}
        }
        match dialect {
            Dialect::Sqlite => conn.batch(&format!("PRAGMA user_version = {}", migration.version)).await?,
            Dialect::Postgres => {
                let sql = "INSERT INTO dynabox.schema_migrations (version) VALUES ($1)";
                conn.execute(sql, &[Param::Int(migration.version)]).await?;
            }
        }
    }
    Ok(())
}

/// The storage tables the catalog names.
async fn storage_tables(conn: &mut impl Connection, sql: &str) -> Result<Vec<String>, SqlError> {
    let rows = conn.query(sql, &[]).await?;
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
async fn start_version_clock_above_stored_versions(conn: &mut impl Connection) -> Result<(), SqlError> {
    let mut highest = 0i64;
    for table in storage_tables(conn, "SELECT storage_table FROM tables").await? {
        highest =
            highest.max(single_int(conn.query(&format!("SELECT coalesce(max(version), 0) FROM {table}"), &[]).await?)?);
    }
    conn.execute("UPDATE version_clock SET reserved = ?1", &[Param::Int(highest)]).await?;
    Ok(())
}

/// Part of SQLite migration 3: every existing storage table gets the partition hash (scan
/// segments) and the expiry column, with their indexes. `partition_hash` is an SQL function the
/// host registers; a store that never held tables from before (Spin) never calls it.
async fn add_hash_and_expiry_to_item_tables(conn: &mut impl Connection) -> Result<(), SqlError> {
    for t in storage_tables(conn, "SELECT storage_table FROM keyspaces").await? {
        conn.batch(&format!(
            "ALTER TABLE {t} ADD COLUMN h INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE {t} ADD COLUMN expires INTEGER;
             UPDATE {t} SET h = partition_hash(pk);
             CREATE INDEX {t}_segments ON {t} (h, pk, sk);
             CREATE INDEX {t}_expiry ON {t} (expires) WHERE expires IS NOT NULL;"
        ))
        .await?;
    }
    Ok(())
}
