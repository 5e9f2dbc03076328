//! The handler's reference store as a host [`Store`].

use async_trait::async_trait;
use dynabox::storage::Store;
use dynabox_handler::storage::memory::MemoryStore;
use dynabox_handler::storage::{
    ChangePage, Committed, ItemKey, Keyspace, Page, QueryRequest, ScanRequest, Storage, StorageError, StoredItem,
    TableChange, TableRecord, Write, WriteError,
};
use dynabox_sql::accounts::{AccountListing, AccountRecord};
use tokio::sync::Mutex;

/// The reference store behind a lock: its calls take microseconds. It keeps no accounts and has
/// no background work to offer.
#[derive(Default)]
pub struct Reference(Mutex<MemoryStore>);

impl Reference {
    pub fn new(store: MemoryStore) -> Reference {
        Reference(Mutex::new(store))
    }
}

fn no_accounts<T>() -> Result<T, StorageError> {
    Err(StorageError::Internal("the reference store keeps no accounts".into()))
}

#[async_trait]
impl Store for Reference {
    fn describe(&self) -> String {
        "reference store".to_string()
    }

    async fn create_table(
        &self,
        account: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<bool, StorageError> {
        self.0.lock().await.create_table(account, name, description, indexes)
    }

    async fn describe_table(&self, account: &str, name: &str) -> Result<Option<TableRecord>, StorageError> {
        self.0.lock().await.describe_table(account, name)
    }

    async fn update_table(
        &self,
        account: &str,
        name: &str,
        expected_version: u64,
        change: &TableChange<'_>,
    ) -> Result<Option<u64>, StorageError> {
        self.0.lock().await.update_table(account, name, expected_version, change)
    }

    async fn list_tables(
        &self,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        self.0.lock().await.list_tables(account, start_after, limit)
    }

    async fn delete_table(&self, account: &str, name: &str) -> Result<bool, StorageError> {
        self.0.lock().await.delete_table(account, name)
    }

    async fn keyspace_stats(&self, account: &str, keyspace: &Keyspace) -> Result<(u64, u64), StorageError> {
        self.0.lock().await.keyspace_stats(account, keyspace)
    }

    async fn get(&self, account: &str, keyspace: &Keyspace, key: &ItemKey) -> Result<Option<StoredItem>, StorageError> {
        self.0.lock().await.get(account, keyspace, key)
    }

    async fn query(&self, account: &str, request: &QueryRequest) -> Result<Page, StorageError> {
        self.0.lock().await.query(account, request)
    }

    async fn scan(&self, account: &str, request: &ScanRequest) -> Result<Page, StorageError> {
        self.0.lock().await.scan(account, request)
    }

    async fn write(&self, account: &str, writes: &[Write]) -> Result<Committed, WriteError> {
        self.0.lock().await.write(account, writes)
    }

    async fn read_changes(
        &self,
        account: &str,
        table: &str,
        after: u64,
        limit: u32,
    ) -> Result<ChangePage, StorageError> {
        self.0.lock().await.read_changes(account, table, after, limit)
    }

    async fn expired(
        &self,
        account: &str,
        keyspace: &Keyspace,
        now: u64,
        limit: u32,
    ) -> Result<Vec<ItemKey>, StorageError> {
        self.0.lock().await.expired(account, keyspace, now, limit)
    }

    async fn tables_with_creating_indexes(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        Ok(Vec::new())
    }

    async fn tables_with_time_to_live(&self) -> Result<Vec<(String, String)>, StorageError> {
        Ok(Vec::new())
    }

    async fn trim_changes(&self, before: u64) -> Result<u64, StorageError> {
        Ok(self.0.lock().await.trim_changes(before))
    }

    async fn create_account(&self, _: &str, _: &str, _: &[u8]) -> Result<bool, StorageError> {
        no_accounts()
    }

    async fn find_account(&self, _: &str) -> Result<Option<AccountRecord>, StorageError> {
        no_accounts()
    }

    async fn list_accounts(&self) -> Result<Vec<AccountListing>, StorageError> {
        no_accounts()
    }

    async fn delete_account(&self, _: &str) -> Result<bool, StorageError> {
        no_accounts()
    }

    async fn rotate_secret(&self, _: &str, _: &[u8]) -> Result<bool, StorageError> {
        no_accounts()
    }

    async fn revoke_previous_secret(&self, _: &str) -> Result<bool, StorageError> {
        no_accounts()
    }
}
