//! The host's storage backends: the embedded store (SQLite) and PostgreSQL, both implementing
//! the contract of `dynabox_handler::storage` (see that module for the semantics) as async methods
//! on [`Backend`], with the same types. Schema, statements and migrations come from
//! `dynabox_sql`, the one source the Spin component also uses; the embedded store is
//! `dynabox_sql::SqlStore` itself, PostgreSQL runs the same statements asynchronously on a pool.

pub mod per_request;
pub mod postgres;
pub mod sqlite;

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use dynabox_handler::storage::memory::MemoryStore;
use dynabox_handler::storage::{
    ChangePage, Committed, ItemKey, Keyspace, Page, QueryRequest, ScanRequest, Storage, StorageError, StoredItem,
    TableChange, TableRecord, Write, WriteError,
};
use dynabox_sql::SqlError;
use dynabox_sql::accounts::{AccountListing, AccountRecord};

pub enum Backend {
    Embedded(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
    /// The handler's reference store (`dynabox_handler::storage::memory`), so that the one
    /// conformance suite also holds the definition of the contract to account.
    Reference(Mutex<MemoryStore>),
    /// The Spin component's storage code (`dynabox_sql::SqlStore` opened afresh for every call,
    /// as Spin runs a fresh instance per request) on real SQLite and PostgreSQL connections, so
    /// that the conformance suite holds it to the contract without Spin.
    PerRequest(per_request::PerRequestStore),
}

/// How long one storage call waits for a lock or a connection when nothing else is said.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `$call` on a store opened for this call alone (see [`per_request`]), on a blocking
/// section: the `postgres` client blocks.
macro_rules! per_request {
    ($store:expr, |$opened:ident| $call:expr) => {
        tokio::task::block_in_place(|| match $store.open() {
            Ok(per_request::Opened::Sqlite(mut $opened)) => $call,
            Ok(per_request::Opened::Postgres(mut $opened)) => {
                let result = $call;
                $store.give_back($opened);
                result
            }
            Err(e) => Err(e.into()),
        })
    };
}

/// Dispatches one call to the backend: the embedded store and the reference store answer at
/// once (their calls take microseconds), PostgreSQL asynchronously.
macro_rules! dispatch {
    ($backend:expr, $method:ident($($arg:expr),*)) => {
        match $backend {
            Backend::Embedded(s) => s.lock().$method($($arg),*),
            Backend::Postgres(s) => s.$method($($arg),*).await,
            Backend::Reference(s) => s.lock().unwrap_or_else(PoisonError::into_inner).$method($($arg),*),
            Backend::PerRequest(s) => per_request!(s, |store| store.$method($($arg),*)),
        }
    };
}

/// Runs one account operation on the stores that keep accounts (SQLite, PostgreSQL, and the Spin
/// component's code on either); the reference store keeps none.
macro_rules! on_accounts {
    ($backend:expr, $method:ident($($arg:expr),*)) => {
        match $backend {
            Backend::Embedded(s) => s.lock().$method($($arg),*).map_err(sql_error),
            Backend::Postgres(s) => s.$method($($arg),*).await,
            Backend::PerRequest(s) => per_request!(s, |store| store.$method($($arg),*).map_err(sql_error)),
            Backend::Reference(_) => Err(StorageError::Internal("the reference store keeps no accounts".into())),
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
            Backend::PerRequest(s) => s.describe(),
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

    /// A description this process remembers having read or written (PostgreSQL only: the
    /// embedded store reads its own at memory speed), given without a round trip. Only a claim:
    /// [`Backend::description_is`], [`Backend::get_confirming`] or [`Backend::query_confirming`]
    /// confirm it.
    pub fn remembered_description(&self, account: &str, name: &str) -> Option<TableRecord> {
        match self {
            Backend::Postgres(s) => s.remembered_description(account, name),
            _ => None,
        }
    }

    /// Whether the table's description is still at `version`.
    pub async fn description_is(&self, account: &str, name: &str, version: u64) -> Result<bool, StorageError> {
        match self {
            Backend::Postgres(s) => s.description_is(account, name, version).await,
            _ => Ok(self.describe_table(account, name).await?.is_some_and(|r| r.version == version)),
        }
    }

    /// [`Backend::get`], and whether the table's description is still at `version`: on
    /// PostgreSQL in the same round trip.
    pub async fn get_confirming(
        &self,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
        version: u64,
    ) -> Result<(Option<StoredItem>, bool), StorageError> {
        match self {
            Backend::Postgres(s) => s.get_confirming(account, keyspace, key, version).await,
            _ => Ok((
                self.get(account, keyspace, key).await?,
                self.description_is(account, &keyspace.table, version).await?,
            )),
        }
    }

    /// [`Backend::query`], confirming the description as [`Backend::get_confirming`] does.
    pub async fn query_confirming(
        &self,
        account: &str,
        request: &QueryRequest,
        version: u64,
    ) -> Result<(Page, bool), StorageError> {
        match self {
            Backend::Postgres(s) => s.query_confirming(account, request, version).await,
            _ => Ok((
                self.query(account, request).await?,
                self.description_is(account, &request.keyspace.table, version).await?,
            )),
        }
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

    pub async fn read_changes(
        &self,
        account: &str,
        table: &str,
        after: u64,
        limit: u32,
    ) -> Result<ChangePage, StorageError> {
        dispatch!(self, read_changes(account, table, after, limit))
    }

    pub async fn expired(
        &self,
        account: &str,
        keyspace: &Keyspace,
        now: u64,
        limit: u32,
    ) -> Result<Vec<ItemKey>, StorageError> {
        dispatch!(self, expired(account, keyspace, now, limit))
    }

    /// Records a new account with its sealed secret; false when the name is taken.
    pub async fn create_account(&self, name: &str, account_id: &str, secret: &[u8]) -> Result<bool, StorageError> {
        on_accounts!(self, create_account(name, account_id, secret))
    }

    pub async fn find_account(&self, name: &str) -> Result<Option<AccountRecord>, StorageError> {
        on_accounts!(self, find_account(name))
    }

    pub async fn list_accounts(&self) -> Result<Vec<AccountListing>, StorageError> {
        on_accounts!(self, list_accounts())
    }

    /// Forgets the account (not its tables); false when there was none.
    pub async fn delete_account(&self, name: &str) -> Result<bool, StorageError> {
        on_accounts!(self, delete_account(name))
    }

    /// A new sealed secret; the current one keeps working until revoked. False: no such account.
    pub async fn rotate_secret(&self, name: &str, secret: &[u8]) -> Result<bool, StorageError> {
        on_accounts!(self, rotate_secret(name, secret))
    }

    pub async fn revoke_previous_secret(&self, name: &str) -> Result<bool, StorageError> {
        on_accounts!(self, revoke_previous_secret(name))
    }

    /// (account, description) of every table that may have an index being created: the host's
    /// background worker reads them with the handler's catalog types. Not part of the handler's
    /// contract; the reference store, which no server runs on, has no worker and returns none.
    pub async fn tables_with_creating_indexes(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        match self {
            Backend::Embedded(s) => s.lock().tables_with_creating_indexes(),
            Backend::Postgres(s) => s.tables_with_creating_indexes().await,
            Backend::Reference(_) => Ok(Vec::new()),
            Backend::PerRequest(s) => per_request!(s, |store| store.tables_with_creating_indexes()),
        }
    }

    /// (account, table name) of every table that may have time to live enabled, for the host's
    /// expiry sweep; as [`Backend::tables_with_creating_indexes`], outside the handler's contract.
    pub async fn tables_with_time_to_live(&self) -> Result<Vec<(String, String)>, StorageError> {
        match self {
            Backend::Embedded(s) => s.lock().tables_with_time_to_live(),
            Backend::Postgres(s) => s.tables_with_time_to_live().await,
            Backend::Reference(_) => Ok(Vec::new()),
            Backend::PerRequest(s) => per_request!(s, |store| store.tables_with_time_to_live()),
        }
    }

    /// Drops change records written before `before` (seconds since the epoch), in every table;
    /// how many. Streams keep records 24 hours.
    pub async fn trim_changes(&self, before: u64) -> Result<u64, StorageError> {
        match self {
            Backend::Embedded(s) => s.lock().trim_changes(before),
            Backend::Postgres(s) => s.trim_changes(before).await,
            Backend::Reference(s) => Ok(s.lock().unwrap_or_else(PoisonError::into_inner).trim_changes(before)),
            Backend::PerRequest(s) => per_request!(s, |store| store.trim_changes(before)),
        }
    }
}

fn sql_error(e: SqlError) -> StorageError {
    StorageError::Internal(format!("accounts: {e}"))
}
