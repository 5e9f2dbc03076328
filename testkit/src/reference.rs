//! The handler's reference store as a host [`Store`].

use async_trait::async_trait;
use dynabox::storage::Store;
use dynabox_handler::storage::memory::MemoryStore;
use dynabox_handler::storage::{Answer, Failure, HistoryEntry, ItemKey, Request, Storage, StorageError, StoredBackup};
use dynabox_sql::accounts::{AccountListing, AccountRecord};
use dynabox_sql::store::TrimmedChanges;
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

    async fn call(&self, account: &str, request: Request<'_>) -> Result<Answer, Failure> {
        self.0.lock().await.call(account, request)
    }

    async fn tables_with_creating_indexes(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        Ok(Vec::new())
    }

    async fn tables_with_time_to_live(&self) -> Result<Vec<(String, String)>, StorageError> {
        Ok(Vec::new())
    }

    async fn trim_changes(&self, before: u64, limit: u64) -> Result<TrimmedChanges, StorageError> {
        let (deleted, left) = self.0.lock().await.trim_changes(before, limit);
        Ok(TrimmedChanges { deleted, left })
    }

    async fn tables_with_history(&self) -> Result<Vec<(String, String, Vec<u8>)>, StorageError> {
        Ok(Vec::new())
    }

    async fn fold_history(&self, account: &str, table: &str, before: u64, limit: u64) -> Result<u64, StorageError> {
        Ok(self.0.lock().await.fold_history(account, table, before, limit))
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
        self.0.lock().await.read_history(account, table, from, to, after.as_ref(), limit)
    }

    async fn system_backups(&self) -> Result<Vec<(String, StoredBackup)>, StorageError> {
        Ok(Vec::new())
    }

    async fn accounts_with_table(&self, name: &str) -> Result<Vec<String>, StorageError> {
        Ok(self.0.lock().await.accounts_with_table(name))
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
