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
//! Several processes may serve one database. A description this process read or wrote is
//! remembered ([`Descriptions`]) and may be given to a request without a round trip, but only as
//! a claim the request's next statement on the table confirms (see `runtime/imports.rs`), so each
//! process still sees the others' CreateTable, UpdateTable and DeleteTable at once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction};
use dynabox_handler::storage::{
    ChangePage, ChangeRecord, Committed, ItemKey, Keyspace, Page, QueryRequest, ScanRequest, StorageError, StoredItem,
    TableChange, TableRecord, Write, WriteError,
};
use dynabox_sql::accounts::{AccountListing, AccountRecord};
use dynabox_sql::plan::{
    ChunkedRead, KeyspaceEntry, checked_storage_table, index_column, item_write, plan, query_sql, raise_unless_rows,
    scan_sql, sort_bounds, write_keyspace,
};
use dynabox_sql::postgres::is_conflict;
use dynabox_sql::{Dialect, Param};
use futures_util::TryFutureExt;
use futures_util::future::Either;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

const DIALECT: Dialect = Dialect::Postgres;

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
    descriptions: Descriptions,
    location: String,
}

/// Whether a table's description is at a version: the confirmation of a remembered description.
const DESCRIPTION_AT: &str = "SELECT 1 FROM dynabox.tables WHERE account = $1 AND name = $2 AND version = $3";

/// (account, table) → the description this process last read or wrote. Versions never repeat
/// (one clock per store), so "the table's description is at this version" is one primary-key
/// lookup that confirms a remembered description exactly, and can travel in the same round trip
/// as the statement that reads the table's items. Forgotten when a statement finds it stale.
#[derive(Default)]
struct Descriptions {
    entries: RwLock<HashMap<(String, String), TableRecord>>,
}

impl Descriptions {
    fn get(&self, account: &str, name: &str) -> Option<TableRecord> {
        self.entries.read().unwrap().get(&(account.to_string(), name.to_string())).cloned()
    }

    fn remember(&self, account: &str, name: &str, record: Option<TableRecord>) {
        let key = (account.to_string(), name.to_string());
        let mut entries = self.entries.write().unwrap();
        match record {
            Some(record) => {
                // Memory stays bounded however many tables pass through.
                if entries.len() >= MAX_REMEMBERED_DESCRIPTIONS && !entries.contains_key(&key) {
                    entries.clear();
                }
                entries.insert(key, record);
            }
            None => {
                entries.remove(&key);
            }
        }
    }
}

/// Descriptions remembered at most; beyond, the memory starts afresh.
const MAX_REMEMBERED_DESCRIPTIONS: usize = 10_000;

/// (account, table, index) → [`KeyspaceEntry`], so item operations do not read the catalog.
/// Safe across processes because storage tables are never named twice: an entry another process
/// made stale (its table or index dropped) points at a table that no longer exists, and the
/// statement that finds it gone makes the backend forget the entry and look again. Descriptions
/// are remembered apart ([`Descriptions`]), each confirmed by the request it is given to.
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

impl PostgresStore {
    pub(super) async fn connect(url: &str, pool_size: usize, wait_timeout: Duration) -> anyhow::Result<PostgresStore> {
        let mut config: tokio_postgres::Config = url.parse().context("parsing the PostgreSQL connection string")?;
        let location = location(&config);
        migrate(url).await.with_context(|| format!("migrating the schema at {location}"))?;
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
        drop(pool.get().await.with_context(|| format!("connecting to PostgreSQL at {location}"))?);
        Ok(PostgresStore {
            pool,
            wait_timeout,
            keyspaces: KeyspaceCache::default(),
            descriptions: Descriptions::default(),
            location,
        })
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
        let catalog = DIALECT.catalog();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(internal)?;
        let version: i64 = query_one(&tx, catalog.new_table_version, &[]).await.map_err(internal)?.get(0);
        let params = [Param::Text(account), Param::Text(name), Param::Text(text(description)?), Param::Int(version)];
        let Some(row) = query_opt(&tx, catalog.insert_table, &params).await.map_err(internal)? else {
            return Ok(false);
        };
        let id: i64 = row.get(0);
        for index in std::iter::once("").chain(indexes.iter().map(String::as_str)) {
            create_keyspace(&tx, id, index).await?;
        }
        tx.commit().await.map_err(internal)?;
        let record = TableRecord { description: description.to_vec(), version: version as u64 };
        self.descriptions.remember(account, name, Some(record));
        Ok(true)
    }

    pub(super) async fn describe_table(&self, account: &str, name: &str) -> Result<Option<TableRecord>, StorageError> {
        let client = self.client().await?;
        let params = [Param::Text(account), Param::Text(name)];
        let row = query_opt(&client, DIALECT.catalog().describe_table, &params).await.map_err(internal)?;
        let record =
            row.map(|r| TableRecord { description: r.get::<_, String>(0).into_bytes(), version: version(&r, 1) });
        self.descriptions.remember(account, name, record.clone());
        Ok(record)
    }

    /// The description this process last read or wrote, without a round trip; a claim to confirm
    /// with [`PostgresStore::description_is`] or with the request's next read of the table.
    pub(super) fn remembered_description(&self, account: &str, name: &str) -> Option<TableRecord> {
        self.descriptions.get(account, name)
    }

    /// Whether the table's description is still at `version`; forgotten when not.
    pub(super) async fn description_is(&self, account: &str, name: &str, version: u64) -> Result<bool, StorageError> {
        let client = self.client().await?;
        self.confirm(&client, account, name, version).await
    }

    async fn confirm(
        &self,
        client: &impl GenericClient,
        account: &str,
        name: &str,
        at: u64,
    ) -> Result<bool, StorageError> {
        let params = [Param::Text(account), Param::Text(name), Param::Int(i64::try_from(at).unwrap_or(-1))];
        let current = query_opt(client, DESCRIPTION_AT, &params).await.map_err(internal)?.is_some();
        if !current {
            self.descriptions.remember(account, name, None);
        }
        Ok(current)
    }

    pub(super) async fn update_table(
        &self,
        account: &str,
        name: &str,
        expected_version: u64,
        change: &TableChange<'_>,
    ) -> Result<Option<u64>, StorageError> {
        let catalog = DIALECT.catalog();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(internal)?;
        // FOR UPDATE: waits for write groups guarded by the table's version (they hold it FOR
        // SHARE), so none commits on a description this change replaces.
        let params = [Param::Text(account), Param::Text(name)];
        let row = query_opt(&tx, catalog.table_for_update, &params).await.map_err(internal)?;
        let row = row.ok_or(StorageError::NoSuchKeyspace)?;
        let (id, version): (i64, i64) = (row.get(0), row.get(1));
        if version as u64 != expected_version {
            self.descriptions.remember(account, name, None);
            return Ok(None);
        }
        let new_version: i64 = query_one(&tx, catalog.new_table_version, &[]).await.map_err(internal)?.get(0);
        let params = [Param::Int(id), Param::Text(text(change.description)?), Param::Int(new_version)];
        execute(&tx, catalog.update_description, &params).await.map_err(internal)?;
        for index in change.drop_indexes {
            drop_keyspace(&tx, id, index).await?;
        }
        for index in change.create_indexes {
            create_keyspace(&tx, id, index).await?;
        }
        tx.commit().await.map_err(internal)?;
        self.forget(account, name);
        let record = TableRecord { description: change.description.to_vec(), version: new_version as u64 };
        self.descriptions.remember(account, name, Some(record));
        Ok(Some(new_version as u64))
    }

    pub(super) async fn list_tables(
        &self,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let client = self.client().await?;
        let params = [Param::Text(account), Param::Text(start_after.unwrap_or("")), Param::Int(i64::from(limit))];
        let rows = query(&client, DIALECT.catalog().list_tables, &params).await.map_err(internal)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(super) async fn delete_table(&self, account: &str, name: &str) -> Result<bool, StorageError> {
        let catalog = DIALECT.catalog();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(internal)?;
        let params = [Param::Text(account), Param::Text(name)];
        let row = query_opt(&tx, catalog.delete_table, &params).await.map_err(internal)?;
        let deleted = match row {
            Some(row) => {
                let id: i64 = row.get(0);
                let indexes = query(&tx, catalog.table_indexes, &[Param::Int(id)]).await.map_err(internal)?;
                for index in indexes.iter().map(|r| r.get::<_, String>(0)) {
                    drop_keyspace(&tx, id, &index).await?;
                }
                execute(&tx, catalog.delete_changes, &[Param::Int(id)]).await.map_err(internal)?;
                tx.commit().await.map_err(internal)?;
                true
            }
            None => false,
        };
        // After the commit, so that no concurrent lookup re-caches the table in between.
        self.forget(account, name);
        self.descriptions.remember(account, name, None);
        Ok(deleted)
    }

    pub(super) async fn tables_with_creating_indexes(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let client = self.client().await?;
        let rows = query(&client, DIALECT.catalog().creating_indexes, &[]).await.map_err(internal)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get::<_, String>(1).into_bytes())).collect())
    }

    pub(super) async fn tables_with_time_to_live(&self) -> Result<Vec<(String, String)>, StorageError> {
        let client = self.client().await?;
        let rows = query(&client, DIALECT.catalog().time_to_live_tables, &[]).await.map_err(internal)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(super) async fn trim_changes(&self, before: u64) -> Result<u64, StorageError> {
        let client = self.client().await?;
        let before = Param::Int(i64::try_from(before).unwrap_or(i64::MAX));
        execute(&client, DIALECT.catalog().trim_changes, &[before]).await.map_err(internal)
    }

    pub(super) async fn read_changes(
        &self,
        account: &str,
        table: &str,
        after: u64,
        limit: u32,
    ) -> Result<ChangePage, StorageError> {
        let client = self.client().await?;
        let catalog = DIALECT.catalog();
        let keyspace = Keyspace::table(table);
        // A cached table id may be of a table since deleted: its catalog row is gone, so look it
        // up once more.
        for _ in 0..2 {
            let table_id = self.keyspace(&client, account, &keyspace).await?.table_id;
            let params =
                [Param::Int(table_id), Param::Int(i64::try_from(after).unwrap_or(i64::MAX)), Param::Int(limit.into())];
            let rows = query(&client, catalog.read_changes, &params).await.map_err(internal)?;
            // Read after the records, so that it is at least the last of them.
            let Some(last) =
                query_opt(&client, catalog.last_change, &[Param::Int(table_id)]).await.map_err(internal)?
            else {
                self.forget(account, table);
                continue;
            };
            let changes =
                rows.iter().map(|r| ChangeRecord { sequence: r.get::<_, i64>(0) as u64, record: r.get(1) }).collect();
            return Ok(ChangePage { changes, last_sequence: last.get::<_, i64>(0) as u64 });
        }
        Err(StorageError::NoSuchKeyspace)
    }

    pub(super) async fn expired(
        &self,
        account: &str,
        keyspace: &Keyspace,
        now: u64,
        limit: u32,
    ) -> Result<Vec<ItemKey>, StorageError> {
        let client = self.client().await?;
        let params = [Param::Int(i64::try_from(now).unwrap_or(i64::MAX)), Param::Int(limit.into())];
        let rows = on_keyspace!(self, &client, account, keyspace, |entry| {
            query(&client, &entry.sql.expired, &params).await
        })?;
        Ok(rows.iter().map(|r| ItemKey { partition: r.get(0), sort: r.get(1) }).collect())
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
        self.get_on(&client, account, keyspace, key).await
    }

    async fn get_on(
        &self,
        client: &Object,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
    ) -> Result<Option<StoredItem>, StorageError> {
        let row = on_keyspace!(self, client, account, keyspace, |entry| {
            query_opt(client, &entry.sql.get, &[Param::Bytes(&key.partition), Param::Bytes(&key.sort)]).await
        })?;
        Ok(row.map(|r| StoredItem {
            key: key.clone(),
            document: r.get::<_, String>(0).into_bytes(),
            version: version(&r, 1),
        }))
    }

    /// [`PostgresStore::get`], and in the same round trip (pipelined on one connection) whether
    /// the table's description is still at `version`.
    pub(super) async fn get_confirming(
        &self,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
        version: u64,
    ) -> Result<(Option<StoredItem>, bool), StorageError> {
        let client = self.client().await?;
        let (current, item) = futures_util::future::join(
            self.confirm(&client, account, &keyspace.table, version),
            self.get_on(&client, account, keyspace, key),
        )
        .await;
        Ok((item?, current?))
    }

    /// [`PostgresStore::query`], confirming the description as [`PostgresStore::get_confirming`].
    pub(super) async fn query_confirming(
        &self,
        account: &str,
        request: &QueryRequest,
        version: u64,
    ) -> Result<(Page, bool), StorageError> {
        let client = self.client().await?;
        let (current, page) = futures_util::future::join(
            self.confirm(&client, account, &request.keyspace.table, version),
            self.query_on(&client, account, request),
        )
        .await;
        Ok((page?, current?))
    }

    pub(super) async fn query(&self, account: &str, request: &QueryRequest) -> Result<Page, StorageError> {
        let client = self.client().await?;
        self.query_on(&client, account, request).await
    }

    async fn query_on(&self, client: &Object, account: &str, request: &QueryRequest) -> Result<Page, StorageError> {
        let bounds = sort_bounds(&request.sort);
        let mut read = ChunkedRead::new(request.limit, request.byte_budget, request.after.clone());
        while let Some((limit, after)) = read.next_chunk() {
            let after = after.cloned();
            let rows = on_keyspace!(self, client, account, &request.keyspace, |entry| {
                let (sql, params) = query_sql(DIALECT, &entry.storage_table, request, &bounds, after.as_ref(), limit);
                query(client, &sql, &params).await
            })?;
            read.add(rows.iter().map(stored_item))?;
        }
        Ok(read.finish())
    }

    pub(super) async fn scan(&self, account: &str, request: &ScanRequest) -> Result<Page, StorageError> {
        let client = self.client().await?;
        let mut read = ChunkedRead::new(request.limit, request.byte_budget, request.after.clone());
        while let Some((limit, after)) = read.next_chunk() {
            let after = after.cloned();
            let rows = on_keyspace!(self, &client, account, &request.keyspace, |entry| {
                let (sql, params) = scan_sql(DIALECT, &entry.storage_table, request, after.as_ref(), limit);
                query(&client, &sql, &params).await
            })?;
            read.add(rows.iter().map(stored_item))?;
        }
        Ok(read.finish())
    }

    /// A group with one item write is one statement. Any other group is a transaction whose
    /// statements are sent together with its `BEGIN` and `COMMIT` (pipelined), so a put with its
    /// table guard takes one round trip instead of four; only a change record waits, for its
    /// sequence number. A failed guard rolls the whole group back.
    pub(super) async fn write(&self, account: &str, writes: &[Write]) -> Result<Committed, WriteError> {
        match self.write_once(account, writes).await {
            // A storage table another process dropped (its keyspace forgotten by now), maybe for
            // a table it made again: nothing was applied, so look again, as reads do.
            Err(WriteError::Storage(StorageError::NoSuchKeyspace)) => self.write_once(account, writes).await,
            written => written,
        }
    }

    async fn write_once(&self, account: &str, writes: &[Write]) -> Result<Committed, WriteError> {
        let client = self.client().await?;
        let mut entries = Vec::with_capacity(writes.len());
        for write in writes {
            let keyspace = &write_keyspace(write);
            entries.push(self.keyspace(&client, account, keyspace).await?);
        }
        let mut committed = Committed::default();
        if let ([write @ (Write::Put { .. } | Write::Delete { .. })], [entry]) = (writes, entries.as_slice()) {
            return match self.apply(&client, account, write, entry, &mut committed).await {
                Ok(true) => Ok(committed),
                Ok(false) | Err(Failure::Conflict) => Err(WriteError::GuardFailed(0)),
                Err(Failure::Storage(e)) => Err(e.into()),
            };
        }
        let mut group = GroupConnection { client: Some(client), begun: false };
        let outcome = self.write_pipelined(&mut group, account, writes, &entries, &mut committed).await;
        if outcome.is_err() && group.begun {
            // Should this fail, dropping the group closes the connection instead.
            let client = group.client.as_ref().expect("held until the group ends");
            client.batch_execute("ROLLBACK").await.map_err(internal)?;
            group.begun = false;
        }
        if let Err(WriteError::GuardFailed(index)) = outcome
            && let Some(Write::TableAt { table, .. }) = writes.get(index as usize)
        {
            self.descriptions.remember(account, table, None);
        }
        outcome.map(|()| committed)
    }

    /// Runs the group as one transaction: `BEGIN`, its statements and `COMMIT` sent together
    /// (pipelined, in the group's order), each guard made to fail when it does not hold
    /// (`raising_sql`), so that the failure aborts the transaction and the `COMMIT` rolls it back.
    /// A change record needs its sequence number first, so it ends a run and the rest follows it.
    /// The first write that failed, if any; the transaction is still open only when it failed
    /// before the `COMMIT` was sent (`group.begun`).
    async fn write_pipelined(
        &self,
        group: &mut GroupConnection,
        account: &str,
        writes: &[Write],
        entries: &[Arc<KeyspaceEntry>],
        committed: &mut Committed,
    ) -> Result<(), WriteError> {
        let client = group.client.as_ref().expect("held until the group ends");
        // The transaction's id, once the server has told it: what tells a lost COMMIT's outcome.
        let mut transaction: Option<i64> = None;
        let failure = |index: usize, failure: Failure| match failure {
            Failure::Conflict => WriteError::GuardFailed(index as u32),
            Failure::Storage(e) => WriteError::Storage(e),
        };
        // Item writes' statements (a check that expects nothing has none).
        let plans: Vec<_> = writes
            .iter()
            .zip(entries)
            .map(|(write, entry)| match write {
                Write::TableAt { .. } | Write::AppendChange { .. } => None,
                _ => plan(write, &entry.sql),
            })
            .collect();
        let mut steps = Vec::with_capacity(writes.len() + 2);
        steps.push(Step::Statement { role: Role::Begin, sql: Cow::Borrowed("BEGIN"), params: Vec::new() });
        for (index, write) in writes.iter().enumerate() {
            let (sql, params) = match (write, &plans[index]) {
                (Write::TableAt { version, .. }, _) => {
                    let version = i64::try_from(*version).unwrap_or(-1);
                    let params = vec![Param::Int(entries[index].table_id), Param::Int(version)];
                    steps.push(Step::Statement { role: Role::TableAt(index), sql: Cow::Borrowed(&TABLE_AT), params });
                    continue;
                }
                (Write::AppendChange { .. }, _) => {
                    steps.push(Step::AppendChange(index));
                    continue;
                }
                (_, Some(plan)) => {
                    let key = item_write(write).expect("an item write").1;
                    (plan.raising_sql(), plan.params(key, None).map_err(|e| failure(index, Failure::Storage(e)))?)
                }
                (_, None) => continue,
            };
            steps.push(Step::Statement { role: Role::Write(index), sql, params });
        }
        steps.push(Step::Statement { role: Role::Commit, sql: Cow::Borrowed("COMMIT"), params: Vec::new() });
        let mut rest = steps.as_slice();
        while let Some((step, after)) = rest.split_first() {
            if let Step::AppendChange(index) = *step {
                if let Err(e) = self.apply(client, account, &writes[index], &entries[index], committed).await {
                    return Err(failure(index, e));
                }
                rest = after;
                continue;
            }
            let run =
                rest.iter().take(PIPELINE_DEPTH).take_while(|step| matches!(step, Step::Statement { .. })).count();
            let (sent, later) = rest.split_at(run);
            rest = later;
            let sent: Vec<_> = sent
                .iter()
                .map(|step| match step {
                    Step::Statement { role, sql, params } => (*role, sql.as_ref(), bind(params)),
                    Step::AppendChange(_) => unreachable!("a run holds statements only"),
                })
                .collect();
            // Prepared before anything is sent, so that the statements go out in the group's order.
            let mut prepared = Vec::with_capacity(run);
            for (role, sql, _) in &sent {
                let statement = client.prepare_cached(sql).await;
                prepared.push(statement.map_err(|e| self.statement_failed(account, writes, *role, e))?);
            }
            let executions = prepared.iter().zip(&sent).map(|(statement, (role, _, params))| match role {
                Role::TableAt(_) => Either::Left(client.query_one(statement, params).map_ok(|row| Some(row.get(0)))),
                _ => Either::Right(client.execute(statement, params).map_ok(|_| None)),
            });
            let results = futures_util::future::join_all(executions).await;
            // After the first failure the transaction is aborted: what follows fails too, and a
            // COMMIT rolls back. Unless no answer came: then a COMMIT sent may have committed.
            let (mut first_failure, mut server_refused, mut commit_unanswered) = (None, false, false);
            for ((role, _, _), result) in sent.iter().zip(results) {
                match role {
                    Role::Begin => group.begun = true,
                    Role::Commit => group.begun = false,
                    Role::TableAt(_) | Role::Write(_) => {}
                }
                match result {
                    Ok(id) => transaction = transaction.or(id),
                    Err(e) => {
                        server_refused |= e.code().is_some_and(|code| !is_disconnection(code));
                        commit_unanswered |= matches!(role, Role::Commit);
                        first_failure = first_failure.or(Some(self.statement_failed(account, writes, *role, e)));
                    }
                }
            }
            if commit_unanswered && !server_refused {
                // The connection is lost; asking takes another, which a pool of one must give.
                if let Some(lost) = group.client.take() {
                    drop(Object::take(lost));
                }
                return match transaction {
                    Some(id) => self.outcome_of(id).await,
                    None => Err(StorageError::OutcomeUnknown.into()),
                };
            }
            if let Some(failure) = first_failure {
                return Err(failure);
            }
        }
        Ok(())
    }

    /// Whether the transaction `id`, whose COMMIT was sent but never answered, committed: asked
    /// of PostgreSQL on another connection, and asked again while it is still in progress (the
    /// server may not have noticed the lost connection yet), within the storage timeout.
    async fn outcome_of(&self, id: i64) -> Result<(), WriteError> {
        let deadline = tokio::time::Instant::now() + self.wait_timeout;
        while tokio::time::Instant::now() < deadline {
            // After a restart the pool may still hold dead connections: each try takes another.
            // None: PostgreSQL could not be asked; Some(None): it cannot tell.
            let status: Option<Option<String>> = match self.client().await {
                Ok(client) => {
                    query_one(&client, TRANSACTION_STATUS, &[Param::Int(id)]).await.ok().map(|row| row.get(0))
                }
                Err(_) => None,
            };
            match status.as_ref().map(Option::as_deref) {
                Some(Some("committed")) => return Ok(()),
                Some(Some("aborted")) => {
                    return Err(StorageError::Internal(
                        "postgres: the connection was lost; the transaction rolled back".into(),
                    )
                    .into());
                }
                // Too old to tell (it cannot be: it is seconds old), or no answer yet.
                Some(None) => break,
                Some(Some(_)) | None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        Err(StorageError::OutcomeUnknown.into())
    }

    /// The error a group's statement failed with, as the group's: a guard that did not hold
    /// (it divided by zero, see `raising_sql`) or a conflict the server rolled back is a failed
    /// guard, so the caller decides again.
    fn statement_failed(&self, account: &str, writes: &[Write], role: Role, e: tokio_postgres::Error) -> WriteError {
        let guard = e.code().is_some_and(|code| *code == SqlState::DIVISION_BY_ZERO || is_conflict(code));
        match role {
            Role::Write(index) | Role::TableAt(index) if guard => WriteError::GuardFailed(index as u32),
            Role::Write(index) | Role::TableAt(index) => self.failed(account, &writes[index], e).into(),
            Role::Commit if guard => WriteError::GuardFailed(0),
            Role::Begin | Role::Commit => internal(e).into(),
        }
    }

    /// Runs one write of a group; whether its guard held.
    async fn apply(
        &self,
        client: &impl GenericClient,
        account: &str,
        write: &Write,
        entry: &KeyspaceEntry,
        committed: &mut Committed,
    ) -> Result<bool, Failure> {
        let catalog = DIALECT.catalog();
        let failed = |e: tokio_postgres::Error| match e.code() {
            Some(code) if is_conflict(code) => Failure::Conflict,
            _ => Failure::Storage(self.failed(account, write, e)),
        };
        match write {
            Write::TableAt { version, .. } => {
                let version = i64::try_from(*version).unwrap_or(-1);
                let params = [Param::Int(entry.table_id), Param::Int(version)];
                return Ok(query_opt(client, catalog.table_at, &params).await.map_err(failed)?.is_some());
            }
            Write::AppendChange { record, .. } => {
                let row =
                    query_one(client, catalog.next_change, &[Param::Int(entry.table_id)]).await.map_err(failed)?;
                let sequence: i64 = row.get(0);
                let params = [Param::Int(entry.table_id), Param::Int(sequence), Param::Bytes(record)];
                execute(client, catalog.insert_change, &params).await.map_err(failed)?;
                committed.change_sequences.push(sequence as u64);
                return Ok(true);
            }
            _ => {}
        }
        let Some(plan) = plan(write, &entry.sql) else { return Ok(true) };
        let key = item_write(write).expect("an item write").1;
        let params = plan.params(key, None).map_err(Failure::Storage)?;
        // A SELECT's rows are counted by `execute` too.
        let rows = execute(client, plan.sql, &params).await.map_err(failed)?;
        Ok(plan.holds(rows))
    }

    pub(super) async fn create_account(
        &self,
        name: &str,
        account_id: &str,
        secret: &[u8],
    ) -> Result<bool, StorageError> {
        let params = [Param::Text(name), Param::Text(account_id), Param::Bytes(secret)];
        self.found(DIALECT.catalog().insert_account, &params).await
    }

    pub(super) async fn find_account(&self, name: &str) -> Result<Option<AccountRecord>, StorageError> {
        let client = self.client().await?;
        let row = query_opt(&client, DIALECT.catalog().find_account, &[Param::Text(name)]).await.map_err(internal)?;
        Ok(row.map(|row| AccountRecord { account_id: row.get(0), secret: row.get(1), previous_secret: row.get(2) }))
    }

    pub(super) async fn list_accounts(&self) -> Result<Vec<AccountListing>, StorageError> {
        let client = self.client().await?;
        let rows = query(&client, DIALECT.catalog().list_accounts, &[]).await.map_err(internal)?;
        Ok(rows
            .iter()
            .map(|row| AccountListing {
                name: row.get(0),
                account_id: row.get(1),
                has_previous_secret: row.get::<_, i64>(2) != 0,
                created: row.get(3),
            })
            .collect())
    }

    pub(super) async fn delete_account(&self, name: &str) -> Result<bool, StorageError> {
        self.found(DIALECT.catalog().delete_account, &[Param::Text(name)]).await
    }

    pub(super) async fn rotate_secret(&self, name: &str, secret: &[u8]) -> Result<bool, StorageError> {
        self.found(DIALECT.catalog().rotate_secret, &[Param::Text(name), Param::Bytes(secret)]).await
    }

    pub(super) async fn revoke_previous_secret(&self, name: &str) -> Result<bool, StorageError> {
        self.found(DIALECT.catalog().revoke_previous_secret, &[Param::Text(name)]).await
    }

    /// Whether a statement that returns a row when it finds its account did.
    async fn found(&self, sql: &str, params: &[Param<'_>]) -> Result<bool, StorageError> {
        let client = self.client().await?;
        Ok(query_opt(&client, sql, params).await.map_err(internal)?.is_some())
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
        let params = [Param::Text(account), Param::Text(&keyspace.table), Param::Text(index_column(keyspace))];
        let row = query_opt(client, DIALECT.catalog().find_keyspace, &params).await.map_err(internal)?;
        let row = row.ok_or(StorageError::NoSuchKeyspace)?;
        let entry = KeyspaceEntry::new(DIALECT, row.get(0), row.get(1))?;
        Ok(self.keyspaces.insert(account, keyspace, entry))
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

/// Statements sent at once at most: `join_all` polls its futures in order, so sends their
/// statements in order, only up to this many.
const PIPELINE_DEPTH: usize = 30;

/// What a pipelined group sends, in order.
enum Step<'a> {
    /// A statement sent with its neighbours.
    Statement { role: Role, sql: Cow<'a, str>, params: Vec<Param<'a>> },
    /// A change record: its sequence number is read first, so it ends a run.
    AppendChange(usize),
}

/// A group's table guard (`Write::TableAt`, made to fail when the description is not at its
/// version), which also gives the transaction's id: its answer arrives before the server reads the
/// `COMMIT`, so a `COMMIT` whose answer is lost can still be asked about ([`TRANSACTION_STATUS`])
/// without a statement of its own (one more per write cost UpdateItem about 15 %). Every item
/// write's group has the guard; a group without one whose `COMMIT` is lost is outcome-unknown.
/// `guard.*` keeps the guard's own column, which PostgreSQL would otherwise drop unevaluated.
static TABLE_AT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT txid_current(), guard.* FROM ({}) AS guard", raise_unless_rows(DIALECT.catalog().table_at, true))
});
const TRANSACTION_STATUS: &str = "SELECT txid_status($1)";

/// Whether an error the server sent means it is closing the connection (administrator command,
/// crash, shutdown), not that the statement failed: the transaction may have committed just before.
fn is_disconnection(code: &SqlState) -> bool {
    code.code().starts_with("57P") || code.code().starts_with("08")
}

/// What a statement of a pipelined group is.
#[derive(Clone, Copy)]
enum Role {
    Begin,
    /// The statement of the group's item write at this index.
    Write(usize),
    /// The group's table guard at this index ([`TABLE_AT`]).
    TableAt(usize),
    Commit,
}

/// A pooled connection inside a group's transaction, begun by sending `BEGIN` together with the
/// first statements (tokio-postgres's `Transaction` awaits its `BEGIN` alone). A group that ends
/// without `COMMIT` or `ROLLBACK` (its request was dropped, or the rollback failed) closes the
/// connection instead of returning it to the pool, which ends the transaction on the server.
struct GroupConnection {
    client: Option<Object>,
    begun: bool,
}

impl Drop for GroupConnection {
    fn drop(&mut self) {
        if let Some(client) = self.client.take().filter(|_| self.begun) {
            drop(Object::take(client));
        }
    }
}

/// Why a write of a group did not apply.
enum Failure {
    /// The server rolled the transaction back for concurrency (see `is_conflict`).
    Conflict,
    Storage(StorageError),
}

/// A row (pk, sk, doc, version) as an item.
fn stored_item(row: &Row) -> Result<StoredItem, StorageError> {
    Ok(StoredItem {
        key: ItemKey { partition: row.get(0), sort: row.get(1) },
        document: row.get::<_, String>(2).into_bytes(),
        version: version(row, 3),
    })
}

/// Registers a keyspace of table `table_id` (`index` '' for the base) and creates its storage
/// table, named after the keyspace's id.
async fn create_keyspace(tx: &Transaction<'_>, table_id: i64, index: &str) -> Result<(), StorageError> {
    let catalog = DIALECT.catalog();
    let row = query_one(tx, catalog.insert_keyspace, &[Param::Int(table_id), Param::Text(index)]).await;
    let id: i64 = row.map_err(internal)?.get(0);
    execute(tx, catalog.name_keyspace, &[Param::Int(id)]).await.map_err(internal)?;
    let storage_table = DIALECT.qualified(&format!("ks_{id}"));
    tx.batch_execute(&catalog.create_storage_table.replace("{t}", &storage_table)).await.map_err(internal)
}

async fn drop_keyspace(tx: &Transaction<'_>, table_id: i64, index: &str) -> Result<(), StorageError> {
    let catalog = DIALECT.catalog();
    let row = query_opt(tx, catalog.delete_keyspace, &[Param::Int(table_id), Param::Text(index)]).await;
    if let Some(row) = row.map_err(internal)? {
        let storage_table = DIALECT.qualified(checked_storage_table(row.get(0))?);
        tx.batch_execute(&catalog.drop_storage_table.replace("{t}", &storage_table)).await.map_err(internal)?;
    }
    Ok(())
}

fn version(row: &Row, column: usize) -> u64 {
    // Versions come from a sequence that starts at 1.
    row.get::<_, i64>(column) as u64
}

/// Applies pending migrations with the code every store shares (`dynabox_sql::store::migrate`),
/// on a connection of its own.
async fn migrate(url: &str) -> anyhow::Result<()> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
        dynabox_sql::store::migrate(&mut client, DIALECT)?;
        anyhow::Ok(())
    })
    .await?
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

fn bind<'a>(params: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    client.query(&client.prepare_cached(sql).await?, &bind(params)).await
}

async fn query_opt(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Option<Row>, tokio_postgres::Error> {
    client.query_opt(&client.prepare_cached(sql).await?, &bind(params)).await
}

async fn query_one(client: &impl GenericClient, sql: &str, params: &[Param<'_>]) -> Result<Row, tokio_postgres::Error> {
    client.query_one(&client.prepare_cached(sql).await?, &bind(params)).await
}

/// Rows affected, or returned by a SELECT.
async fn execute(client: &impl GenericClient, sql: &str, params: &[Param<'_>]) -> Result<u64, tokio_postgres::Error> {
    client.execute(&client.prepare_cached(sql).await?, &bind(params)).await
}

fn internal<E: std::error::Error + Send + Sync + 'static>(e: E) -> StorageError {
    // `{:#}` prints the cause chain: tokio-postgres alone says just "db error".
    StorageError::Internal(format!("postgres: {:#}", anyhow::Error::new(e)))
}

/// Descriptions are JSON, so UTF-8.
fn text(description: &[u8]) -> Result<&str, StorageError> {
    std::str::from_utf8(description).map_err(|_| StorageError::Internal("a description is not UTF-8".to_string()))
}
