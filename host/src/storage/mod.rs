//! The host's storage: the contract of `dynabox_handler::storage` (see that module for the
//! semantics) as the [`Store`] trait, asynchronous and shared by every request, plus what only the
//! host needs (accounts, the worker's finders, the confirmation of remembered descriptions).
//!
//! Both production stores are [`SqlBackend`]: `dynabox_sql::SqlStore`, the one control path,
//! over a [`Driver`] that lends connections: [`sqlite`] (one rusqlite connection) and
//! [`postgres`] (a pool, pipelining). [`remembered`] is the decorator that answers descriptions
//! from memory on PostgreSQL. Stores only the tests and the benchmark use live with them
//! (`dynabox-testkit`).

pub mod postgres;
pub mod remembered;
pub mod sqlite;

use std::time::Duration;

use async_trait::async_trait;
use dynabox_handler::storage::{
    Answer, Asking, CallError, Failure, HistoryEntry, ItemKey, Keyspace, Page, QueryRequest, Request, StorageError,
    StoredBackup, StoredItem,
};
use dynabox_sql::accounts::{AccountListing, AccountRecord};
use dynabox_sql::store::TrimmedChanges;
use dynabox_sql::{Connection, SqlError, SqlStore};

/// How long one storage call waits for a lock or a connection when nothing else is said.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A store as the host uses it: the handler's storage contract (one [`Store::call`] per
/// operation, each naming its account), asynchronous and shared by every request in flight.
#[async_trait]
pub trait Store: Send + Sync {
    /// One line for the start-up log; never contains a password.
    fn describe(&self) -> String;
    /// Whether remembering table descriptions saves round trips (a store across a network), see
    /// [`remembered`].
    fn worth_remembering_descriptions(&self) -> bool {
        false
    }

    /// How the store's connection pool is used now, if it has one (PostgreSQL).
    fn pool_use(&self) -> Option<PoolUse> {
        None
    }

    /// Runs one operation of the handler's contract ([`Request`]).
    async fn call(&self, account: &str, request: Request<'_>) -> Result<Answer, Failure>;

    /// Whether the table's description is still at `version`.
    async fn description_is(&self, account: &str, name: &str, version: u64) -> Result<bool, StorageError> {
        let record = self.ask(account, Request::describe_table(name)).await?;
        Ok(record.is_some_and(|record| record.version == version))
    }

    /// [`Request::Get`], and whether the table's description is still at `version` (in the same
    /// round trip where the store can).
    async fn get_confirming(
        &self,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
        version: u64,
    ) -> Result<(Option<StoredItem>, bool), StorageError> {
        let item = self.ask(account, Request::get(keyspace, key)).await?;
        Ok((item, self.description_is(account, &keyspace.table, version).await?))
    }

    /// [`Request::Query`], confirming the description as [`Store::get_confirming`] does.
    async fn query_confirming(
        &self,
        account: &str,
        request: &QueryRequest,
        version: u64,
    ) -> Result<(Page, bool), StorageError> {
        let page = self.ask(account, Request::query(request)).await?;
        Ok((page, self.description_is(account, &request.keyspace.table, version).await?))
    }

    /// (account, description) of every table that may have an index being created: the host's
    /// background worker reads them with the handler's catalog types. Not part of the handler's
    /// contract.
    async fn tables_with_creating_indexes(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError>;
    /// (account, table name) of every table that may have time to live enabled, for the expiry
    /// sweep.
    async fn tables_with_time_to_live(&self) -> Result<Vec<(String, String)>, StorageError>;
    /// Drops up to `limit` change records written before `before` (seconds since the epoch), of
    /// any table, oldest first. Streams keep records 24 hours.
    async fn trim_changes(&self, before: u64, limit: u64) -> Result<TrimmedChanges, StorageError>;
    /// (account, name, description) of every table that may keep history (point-in-time
    /// recovery), for the work that folds what is past the recovery period.
    async fn tables_with_history(&self) -> Result<Vec<(String, String, Vec<u8>)>, StorageError>;
    /// Forgets up to `limit` entries of a table's history stamped at or before `before` (ms) that
    /// no later moment needs (see `SqlStore::fold_history`): how many.
    async fn fold_history(&self, account: &str, table: &str, before: u64, limit: u64) -> Result<u64, StorageError>;
    /// A page of a table's history in key order after `after`, for exports: the table as of `to`
    /// (ms), or with `from` the keys changed in (from, to] (see `SqlStore::read_history`).
    async fn read_history(
        &self,
        account: &str,
        table: &str,
        from: Option<u64>,
        to: u64,
        after: Option<ItemKey>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StorageError>;
    /// (account, backup) of every SYSTEM backup, for the work that deletes those whose recovery
    /// period is over.
    async fn system_backups(&self) -> Result<Vec<(String, StoredBackup)>, StorageError>;
    /// The accounts that have a table named `name`, in order, for background jobs known by the
    /// name of a table they keep.
    async fn accounts_with_table(&self, name: &str) -> Result<Vec<String>, StorageError>;

    /// Records a new account with its sealed secret; false when the name is taken.
    async fn create_account(&self, name: &str, account_id: &str, secret: &[u8]) -> Result<bool, StorageError>;
    async fn find_account(&self, name: &str) -> Result<Option<AccountRecord>, StorageError>;
    async fn list_accounts(&self) -> Result<Vec<AccountListing>, StorageError>;
    /// Forgets the account (not its tables); false when there was none.
    async fn delete_account(&self, name: &str) -> Result<bool, StorageError>;
    /// A new sealed secret; the current one keeps working until revoked. False: no such account.
    async fn rotate_secret(&self, name: &str, secret: &[u8]) -> Result<bool, StorageError>;
    async fn revoke_previous_secret(&self, name: &str) -> Result<bool, StorageError>;
}

/// Typed calls on any store: `store.ask(account, Request::get(&keyspace, &key))`.
pub trait Ask: Store {
    fn ask<'a, T, E>(
        &'a self,
        account: &'a str,
        asking: Asking<'a, T, E>,
    ) -> impl Future<Output = Result<T, E>> + Send + 'a
    where
        T: TryFrom<Answer, Error = Answer> + Send + 'a,
        E: CallError + Send + 'a,
    {
        async move { Asking::expect(self.call(account, asking.request).await) }
    }
}

impl<S: Store + ?Sized> Ask for S {}

/// The connections of a pool: taken by calls, idle, and the calls waiting for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    pub in_use: usize,
    pub idle: usize,
    pub waiting: usize,
}

/// What a [`SqlBackend`] needs of a database: connections, and a few words about itself.
pub trait Driver: Send + Sync {
    type Connection<'a>: Connection
    where
        Self: 'a;

    /// A connection for one call, waiting at most the driver's wait timeout for one to be free.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection<'_>, StorageError>> + Send;
    fn describe(&self) -> String;
    fn worth_remembering_descriptions(&self) -> bool;
    fn pool_use(&self) -> Option<PoolUse> {
        None
    }
}

/// The storage contract on SQL: every call takes a connection from the driver and runs the one
/// control path, `dynabox_sql::SqlStore`, on it.
pub struct SqlBackend<D> {
    sql: SqlStore,
    driver: D,
}

impl<D: Driver> SqlBackend<D> {
    /// Opens the store on a connection of `driver`, applying pending migrations.
    pub async fn open(driver: D, dialect: dynabox_sql::Dialect) -> anyhow::Result<SqlBackend<D>> {
        let sql = {
            let mut conn = driver.connect().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            SqlStore::open(&mut conn, dialect).await?
        };
        Ok(SqlBackend { sql, driver })
    }
}

fn accounts_error(e: SqlError) -> StorageError {
    StorageError::Internal(format!("accounts: {e}"))
}

#[async_trait]
impl<D: Driver> Store for SqlBackend<D> {
    fn describe(&self) -> String {
        self.driver.describe()
    }

    fn worth_remembering_descriptions(&self) -> bool {
        self.driver.worth_remembering_descriptions()
    }

    fn pool_use(&self) -> Option<PoolUse> {
        self.driver.pool_use()
    }

    async fn call(&self, account: &str, request: Request<'_>) -> Result<Answer, Failure> {
        self.sql.call(&mut self.driver.connect().await?, account, request).await
    }

    async fn description_is(&self, account: &str, name: &str, version: u64) -> Result<bool, StorageError> {
        self.sql.description_is(&mut self.driver.connect().await?, account, name, version).await
    }

    async fn get_confirming(
        &self,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
        version: u64,
    ) -> Result<(Option<StoredItem>, bool), StorageError> {
        self.sql.get_confirming(&mut self.driver.connect().await?, account, keyspace, key, version).await
    }

    async fn query_confirming(
        &self,
        account: &str,
        request: &QueryRequest,
        version: u64,
    ) -> Result<(Page, bool), StorageError> {
        self.sql.query_confirming(&mut self.driver.connect().await?, account, request, version).await
    }

    async fn tables_with_creating_indexes(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        self.sql.tables_with_creating_indexes(&mut self.driver.connect().await?).await
    }

    async fn tables_with_time_to_live(&self) -> Result<Vec<(String, String)>, StorageError> {
        self.sql.tables_with_time_to_live(&mut self.driver.connect().await?).await
    }

    async fn trim_changes(&self, before: u64, limit: u64) -> Result<TrimmedChanges, StorageError> {
        self.sql.trim_changes(&mut self.driver.connect().await?, before, limit).await
    }

    async fn tables_with_history(&self) -> Result<Vec<(String, String, Vec<u8>)>, StorageError> {
        self.sql.tables_with_history(&mut self.driver.connect().await?).await
    }

    async fn fold_history(&self, account: &str, table: &str, before: u64, limit: u64) -> Result<u64, StorageError> {
        self.sql.fold_history(&mut self.driver.connect().await?, account, table, before, limit).await
    }

    async fn read_history(
        &self,
        account: &str,
        table: &str,
        from: Option<u64>,
        to: u64,
        after: Option<ItemKey>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StorageError> {
        let mut conn = self.driver.connect().await?;
        self.sql.read_history(&mut conn, account, table, from, to, after.as_ref(), limit).await
    }

    async fn system_backups(&self) -> Result<Vec<(String, StoredBackup)>, StorageError> {
        self.sql.system_backups(&mut self.driver.connect().await?).await
    }

    async fn accounts_with_table(&self, name: &str) -> Result<Vec<String>, StorageError> {
        self.sql.accounts_with_table(&mut self.driver.connect().await?, name).await
    }

    async fn create_account(&self, name: &str, account_id: &str, secret: &[u8]) -> Result<bool, StorageError> {
        let mut conn = self.driver.connect().await?;
        self.sql.create_account(&mut conn, name, account_id, secret).await.map_err(accounts_error)
    }

    async fn find_account(&self, name: &str) -> Result<Option<AccountRecord>, StorageError> {
        self.sql.find_account(&mut self.driver.connect().await?, name).await.map_err(accounts_error)
    }

    async fn list_accounts(&self) -> Result<Vec<AccountListing>, StorageError> {
        self.sql.list_accounts(&mut self.driver.connect().await?).await.map_err(accounts_error)
    }

    async fn delete_account(&self, name: &str) -> Result<bool, StorageError> {
        self.sql.delete_account(&mut self.driver.connect().await?, name).await.map_err(accounts_error)
    }

    async fn rotate_secret(&self, name: &str, secret: &[u8]) -> Result<bool, StorageError> {
        self.sql.rotate_secret(&mut self.driver.connect().await?, name, secret).await.map_err(accounts_error)
    }

    async fn revoke_previous_secret(&self, name: &str) -> Result<bool, StorageError> {
        self.sql.revoke_previous_secret(&mut self.driver.connect().await?, name).await.map_err(accounts_error)
    }
}
