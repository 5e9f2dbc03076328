//! The host side of the WIT imports: `storage` calls go to the backend, `auth` to the
//! authenticator. Types cross the boundary by plain conversion into the handler crate's own.
//! Every storage call's time is booked as waiting, which the request's sandbox time excludes.

use std::time::Instant;

use dynabox_handler::storage as native;

use super::dynabox::service::{auth, http, storage};
use super::{RequestState, SandboxClock};

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

impl http::Host for RequestState {}

impl storage::Host for RequestState {
    async fn create_table(&mut self, name: String, description: Vec<u8>) -> Fallible<bool, storage::StorageError> {
        Ok(waiting(&mut self.clock, self.backend.create_table(&name, &description)).await.map_err(Into::into))
    }

    async fn describe_table(&mut self, name: String) -> Fallible<Option<Vec<u8>>, storage::StorageError> {
        Ok(waiting(&mut self.clock, self.backend.describe_table(&name)).await.map_err(Into::into))
    }

    async fn list_tables(
        &mut self,
        start_after: Option<String>,
        limit: u32,
    ) -> Fallible<Vec<String>, storage::StorageError> {
        Ok(waiting(&mut self.clock, self.backend.list_tables(start_after.as_deref(), limit)).await.map_err(Into::into))
    }

    async fn delete_table(&mut self, name: String) -> Fallible<bool, storage::StorageError> {
        Ok(waiting(&mut self.clock, self.backend.delete_table(&name)).await.map_err(Into::into))
    }

    async fn keyspace_stats(&mut self, keyspace: String) -> Fallible<(u64, u64), storage::StorageError> {
        Ok(waiting(&mut self.clock, self.backend.keyspace_stats(&keyspace)).await.map_err(Into::into))
    }

    async fn get(
        &mut self,
        keyspace: String,
        key: storage::ItemKey,
    ) -> Fallible<Option<storage::StoredItem>, storage::StorageError> {
        let found = waiting(&mut self.clock, self.backend.get(&keyspace, &key.into())).await;
        Ok(found.map(|item| item.map(Into::into)).map_err(Into::into))
    }

    async fn scan(&mut self, request: storage::ScanRequest) -> Fallible<storage::Page, storage::StorageError> {
        let request = native::ScanRequest {
            keyspace: request.keyspace,
            after: request.after.map(Into::into),
            limit: request.limit,
            byte_budget: request.byte_budget,
        };
        let page = waiting(&mut self.clock, self.backend.scan(&request)).await;
        Ok(page
            .map(|page| storage::Page { items: page.items.into_iter().map(Into::into).collect(), more: page.more })
            .map_err(Into::into))
    }

    async fn write(&mut self, writes: Vec<storage::WriteOp>) -> Fallible<(), storage::WriteError> {
        let writes: Vec<native::Write> = writes
            .into_iter()
            .map(|w| native::Write {
                keyspace: w.keyspace,
                key: w.key.into(),
                document: w.document,
                expect: match w.expect {
                    storage::Expect::Anything => native::Expect::Anything,
                    storage::Expect::Absent => native::Expect::Absent,
                    storage::Expect::Version(v) => native::Expect::Version(v),
                },
            })
            .collect();
        Ok(waiting(&mut self.clock, self.backend.write(&writes)).await.map_err(|e| match e {
            native::WriteError::GuardFailed(index) => storage::WriteError::GuardFailed(index),
            native::WriteError::Storage(e) => storage::WriteError::Storage(e.into()),
        }))
    }
}

impl auth::Host for RequestState {
    async fn authenticate(
        &mut self,
        access_key_id: String,
        credential_scope: String,
        string_to_sign: String,
        signature: String,
    ) -> Fallible<auth::Principal, String> {
        let principal = self.auth.authenticate(&access_key_id, &credential_scope, &string_to_sign, &signature);
        Ok(principal.map(|p| auth::Principal { account_id: p.account_id, access_key_id: p.access_key_id }))
    }
}

/// Runs one storage call and books its wall time as waiting.
async fn waiting<T>(clock: &mut SandboxClock, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = call.await;
    clock.waited += started.elapsed();
    result
}

impl From<native::StorageError> for storage::StorageError {
    fn from(e: native::StorageError) -> Self {
        match e {
            native::StorageError::NoSuchKeyspace => storage::StorageError::NoSuchKeyspace,
            native::StorageError::Internal(detail) => storage::StorageError::Internal(detail),
        }
    }
}

impl From<storage::ItemKey> for native::ItemKey {
    fn from(k: storage::ItemKey) -> Self {
        native::ItemKey { partition: k.partition, sort: k.sort }
    }
}

impl From<native::StoredItem> for storage::StoredItem {
    fn from(i: native::StoredItem) -> Self {
        storage::StoredItem {
            key: storage::ItemKey { partition: i.key.partition, sort: i.key.sort },
            document: i.document,
            version: i.version,
        }
    }
}
