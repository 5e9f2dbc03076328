//! The Spin component's storage code run natively. The Spin component opens `SqlStore` afresh for
//! every request (no cache carried from one to the next, the schema checked each time) on Spin's
//! SQLite or PostgreSQL interface, which sends one statement at a time. This store does the same
//! for every call: over rusqlite on a SQLite file (rusqlite on Spin's side too) and over a pooled
//! PostgreSQL connection used one statement at a time (tokio-postgres on Spin's side), so that the
//! conformance suite holds that code to the contract without Spin.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use dynabox::storage::postgres::{self, PostgresDriver};
use dynabox::storage::{Driver, SqlBackend, Store};
use dynabox_handler::storage::{Answer, Failure, HistoryEntry, ItemKey, Request, StorageError, StoredBackup};
use dynabox_sql::accounts::{AccountListing, AccountRecord};
use dynabox_sql::store::TrimmedChanges;
use dynabox_sql::{Connection, Dialect, Param, Row, SqlError};
use tokio::sync::{Mutex, MutexGuard};

pub struct PerRequest {
    location: Location,
}

enum Location {
    Sqlite(PathBuf),
    Postgres(PostgresDriver),
}

impl PerRequest {
    /// On the SQLite file `path` (created if missing).
    pub fn sqlite(path: PathBuf) -> PerRequest {
        PerRequest { location: Location::Sqlite(path) }
    }

    /// On the PostgreSQL database at `url`, whose connections are pooled, as Spin pools them.
    pub async fn postgres(url: &str) -> anyhow::Result<PerRequest> {
        let driver = postgres::driver(url, 4, Duration::from_secs(5)).await?;
        Ok(PerRequest { location: Location::Postgres(driver) })
    }

    /// A store opened for one call (applying migrations, as the Spin component does on every
    /// request).
    async fn open(&self) -> Result<Box<dyn Store + '_>, StorageError> {
        let internal = |e: &dyn std::fmt::Display| StorageError::Internal(e.to_string());
        Ok(match &self.location {
            Location::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).map_err(|e| internal(&e))?;
                // Spin opens its connections with rusqlite's default busy timeout: the same.
                conn.busy_timeout(Duration::from_secs(5)).map_err(|e| internal(&e))?;
                let opened = SqlBackend::open(Single(Mutex::new(conn)), Dialect::Sqlite).await;
                Box::new(opened.map_err(|e| internal(&e))?)
            }
            Location::Postgres(driver) => {
                let conn = driver.connect().await?;
                let opened = SqlBackend::open(Single(Mutex::new(conn)), Dialect::Postgres).await;
                Box::new(opened.map_err(|e| internal(&e))?)
            }
        })
    }
}

/// One connection, lent to every call of the store opened on it, one statement at a time.
struct Single<C>(Mutex<C>);

/// A connection that sends its statements one at a time, as Spin's interfaces do.
struct OneAtATime<'a, C>(MutexGuard<'a, C>);

impl<C: Connection> Driver for Single<C> {
    type Connection<'a>
        = OneAtATime<'a, C>
    where
        C: 'a;

    async fn connect(&self) -> Result<OneAtATime<'_, C>, StorageError> {
        Ok(OneAtATime(self.0.lock().await))
    }

    fn describe(&self) -> String {
        "per-request store".to_string()
    }

    fn worth_remembering_descriptions(&self) -> bool {
        false
    }
}

impl<C: Connection> Connection for OneAtATime<'_, C> {
    async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
        self.0.query(sql, params).await
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
        self.0.execute(sql, params).await
    }

    async fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        self.0.batch(sql).await
    }
}

#[async_trait]
impl Store for PerRequest {
    fn describe(&self) -> String {
        match &self.location {
            Location::Sqlite(path) => format!("per-request store on SQLite at {}", path.display()),
            Location::Postgres(_) => "per-request store on PostgreSQL".to_string(),
        }
    }

    async fn call(&self, account: &str, request: Request<'_>) -> Result<Answer, Failure> {
        self.open().await?.call(account, request).await
    }

    async fn tables_with_creating_indexes(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        self.open().await?.tables_with_creating_indexes().await
    }

    async fn tables_with_time_to_live(&self) -> Result<Vec<(String, String)>, StorageError> {
        self.open().await?.tables_with_time_to_live().await
    }

    async fn trim_changes(&self, before: u64, limit: u64) -> Result<TrimmedChanges, StorageError> {
        self.open().await?.trim_changes(before, limit).await
    }

    async fn tables_with_history(&self) -> Result<Vec<(String, String, Vec<u8>)>, StorageError> {
        self.open().await?.tables_with_history().await
    }

    async fn fold_history(&self, account: &str, table: &str, before: u64, limit: u64) -> Result<u64, StorageError> {
        self.open().await?.fold_history(account, table, before, limit).await
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
        self.open().await?.read_history(account, table, from, to, after, limit).await
    }

    async fn system_backups(&self) -> Result<Vec<(String, StoredBackup)>, StorageError> {
        self.open().await?.system_backups().await
    }

    async fn accounts_with_table(&self, name: &str) -> Result<Vec<String>, StorageError> {
        self.open().await?.accounts_with_table(name).await
    }

    async fn create_account(&self, name: &str, account_id: &str, secret: &[u8]) -> Result<bool, StorageError> {
        self.open().await?.create_account(name, account_id, secret).await
    }

    async fn find_account(&self, name: &str) -> Result<Option<AccountRecord>, StorageError> {
        self.open().await?.find_account(name).await
    }

    async fn list_accounts(&self) -> Result<Vec<AccountListing>, StorageError> {
        self.open().await?.list_accounts().await
    }

    async fn delete_account(&self, name: &str) -> Result<bool, StorageError> {
        self.open().await?.delete_account(name).await
    }

    async fn rotate_secret(&self, name: &str, secret: &[u8]) -> Result<bool, StorageError> {
        self.open().await?.rotate_secret(name, secret).await
    }

    async fn revoke_previous_secret(&self, name: &str) -> Result<bool, StorageError> {
        self.open().await?.revoke_previous_secret(name).await
    }
}
