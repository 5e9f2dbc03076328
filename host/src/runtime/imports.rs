//! The host side of the WIT imports: `storage` calls go to the request's storage (the store,
//! behind remembered descriptions), `auth` to the authenticator. Types cross the boundary by the
//! one conversion into the handler crate's own (`storage_conversions!`); a description found
//! stale ends the call in a trap carrying `Stale`, which makes the runtime run the request again.
//! Every storage call's time is booked as waiting, which the request's sandbox time excludes, and
//! every storage call must name the account `auth` returned for this request: the host, not the
//! guest, decides whose data a request reaches.

use std::time::Instant;

use dynabox_handler::auth as native_auth;
use dynabox_handler::storage as native;

use super::dynabox::service::{auth, call, http, storage};
use super::{RequestState, SandboxClock};
use crate::failure_log::report_storage_failure;

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

impl http::Host for RequestState {}

impl call::Host for RequestState {}

impl RequestState {
    /// Confirms the description of `table` this request was given from memory (see
    /// `storage::remembered`), as the guest sees a failure to.
    async fn confirm_table(&mut self, account: &str, table: &str) -> Fallible<(), storage::StorageError> {
        let confirmed = waiting(&mut self.clock, self.storage.confirm_table(account, table)).await?;
        Ok(confirmed.map_err(for_guest))
    }

    /// Refuses a storage call for any account but the request's own; an error the guest cannot
    /// catch, since no honest handler makes such a call.
    fn check_account(&self, account: &str) -> wasmtime::Result<()> {
        match &self.account {
            Some(bound) if bound == account => Ok(()),
            _ => Err(wasmtime::format_err!("a storage call named an account the request was not authenticated for")),
        }
    }
}

impl storage::Host for RequestState {
    async fn create_table(
        &mut self,
        account: String,
        name: String,
        description: Vec<u8>,
        indexes: Vec<String>,
    ) -> Fallible<bool, storage::StorageError> {
        self.check_account(&account)?;
        let created = self.storage.create_table(&account, &name, &description, &indexes);
        Ok(waiting(&mut self.clock, created).await?.map_err(for_guest))
    }

    async fn describe_table(
        &mut self,
        account: String,
        name: String,
    ) -> Fallible<Option<storage::TableRecord>, storage::StorageError> {
        self.check_account(&account)?;
        let record = waiting(&mut self.clock, self.storage.describe_table(&account, &name)).await;
        Ok(record.map(|record| record.map(Into::into)).map_err(for_guest))
    }

    async fn update_table(
        &mut self,
        account: String,
        name: String,
        expected_version: u64,
        change: storage::TableChange,
    ) -> Fallible<Option<u64>, storage::StorageError> {
        self.check_account(&account)?;
        let change = (&change).into();
        let updated = self.storage.update_table(&account, &name, expected_version, &change);
        Ok(waiting(&mut self.clock, updated).await?.map_err(for_guest))
    }

    async fn list_tables(
        &mut self,
        account: String,
        start_after: Option<String>,
        limit: u32,
    ) -> Fallible<Vec<String>, storage::StorageError> {
        self.check_account(&account)?;
        let names = waiting(&mut self.clock, self.storage.store().list_tables(&account, start_after.as_deref(), limit));
        Ok(names.await.map_err(for_guest))
    }

    async fn delete_table(&mut self, account: String, name: String) -> Fallible<bool, storage::StorageError> {
        self.check_account(&account)?;
        Ok(waiting(&mut self.clock, self.storage.delete_table(&account, &name)).await?.map_err(for_guest))
    }

    async fn keyspace_stats(
        &mut self,
        account: String,
        keyspace: storage::Keyspace,
    ) -> Fallible<(u64, u64), storage::StorageError> {
        self.check_account(&account)?;
        let keyspace: native::Keyspace = keyspace.into();
        if let Err(e) = self.confirm_table(&account, &keyspace.table).await? {
            return Ok(Err(e));
        }
        let stats = waiting(&mut self.clock, self.storage.store().keyspace_stats(&account, &keyspace)).await;
        Ok(stats.map_err(for_guest))
    }

    async fn get(
        &mut self,
        account: String,
        keyspace: storage::Keyspace,
        key: storage::ItemKey,
    ) -> Fallible<Option<storage::StoredItem>, storage::StorageError> {
        self.check_account(&account)?;
        let (keyspace, key) = (keyspace.into(), key.into());
        let found = waiting(&mut self.clock, self.storage.get(&account, &keyspace, &key)).await?;
        Ok(found.map(|item| item.map(Into::into)).map_err(for_guest))
    }

    async fn get_for_write(
        &mut self,
        account: String,
        keyspace: storage::Keyspace,
        key: storage::ItemKey,
    ) -> Fallible<Option<storage::StoredItem>, storage::StorageError> {
        self.check_account(&account)?;
        // Give up the turn at the key announced before, so no request waits while holding one.
        self.turn = None;
        let (native_keyspace, native_key) = (keyspace.clone().into(), key.clone().into());
        let turn = self.write_turns.take(&account, &native_keyspace, &native_key);
        self.turn = waiting(&mut self.clock, turn).await;
        storage::Host::get(self, account, keyspace, key).await
    }

    async fn query(
        &mut self,
        account: String,
        request: storage::QueryRequest,
    ) -> Fallible<storage::Page, storage::StorageError> {
        self.check_account(&account)?;
        let page = waiting(&mut self.clock, self.storage.query(&account, &request.into())).await?;
        Ok(page.map(Into::into).map_err(for_guest))
    }

    async fn scan(
        &mut self,
        account: String,
        request: storage::ScanRequest,
    ) -> Fallible<storage::Page, storage::StorageError> {
        self.check_account(&account)?;
        let request: native::ScanRequest = request.into();
        if let Err(e) = self.confirm_table(&account, &request.keyspace.table).await? {
            return Ok(Err(e));
        }
        let page = waiting(&mut self.clock, self.storage.store().scan(&account, &request)).await;
        Ok(page.map(Into::into).map_err(for_guest))
    }

    async fn write(
        &mut self,
        account: String,
        writes: Vec<storage::WriteOp>,
    ) -> Fallible<storage::Committed, storage::WriteError> {
        self.check_account(&account)?;
        let writes: Vec<native::Write> = writes.into_iter().map(Into::into).collect();
        let written = waiting(&mut self.clock, self.storage.write(&account, &writes)).await;
        // Written or not, the decision is made: the next writer of the key may read.
        self.turn = None;
        Ok(written?.map(Into::into).map_err(|e| match e {
            native::WriteError::Storage(e) => storage::WriteError::Storage(for_guest(e)),
            guard => guard.into(),
        }))
    }

    async fn read_changes(
        &mut self,
        account: String,
        table: String,
        after: u64,
        limit: u32,
    ) -> Fallible<storage::ChangePage, storage::StorageError> {
        self.check_account(&account)?;
        if let Err(e) = self.confirm_table(&account, &table).await? {
            return Ok(Err(e));
        }
        let page = waiting(&mut self.clock, self.storage.store().read_changes(&account, &table, after, limit)).await;
        Ok(page.map(Into::into).map_err(for_guest))
    }

    async fn expired(
        &mut self,
        account: String,
        keyspace: storage::Keyspace,
        now: u64,
        limit: u32,
    ) -> Fallible<Vec<storage::ItemKey>, storage::StorageError> {
        self.check_account(&account)?;
        let keyspace: native::Keyspace = keyspace.into();
        if let Err(e) = self.confirm_table(&account, &keyspace.table).await? {
            return Ok(Err(e));
        }
        let keys = waiting(&mut self.clock, self.storage.store().expired(&account, &keyspace, now, limit)).await;
        Ok(keys.map(|keys| keys.into_iter().map(Into::into).collect()).map_err(for_guest))
    }
}

impl auth::Host for RequestState {
    async fn authenticate(&mut self, request: auth::SignedRequest) -> Fallible<auth::Principal, auth::Refusal> {
        let request = native_auth::SignedRequest {
            access_key_id: request.access_key_id,
            credential_scope: request.credential_scope,
            string_to_sign: request.string_to_sign,
            signature: request.signature,
            expires: request.expires,
        };
        // Reading an account is a storage wait too.
        let principal = waiting(&mut self.clock, self.auth.authenticate(&request)).await;
        if let Ok(principal) = &principal {
            self.account = Some(principal.account_id.clone());
        }
        Ok(principal.map(|p| auth::Principal { account_id: p.account_id, access_key_id: p.access_key_id }).map_err(
            |refusal| match refusal {
                native_auth::Refusal::UnrecognizedClient => auth::Refusal::UnrecognizedClient,
                native_auth::Refusal::InvalidSignature(message) => auth::Refusal::InvalidSignature(message),
                native_auth::Refusal::Unavailable => auth::Refusal::Unavailable,
            },
        ))
    }
}

/// Runs one storage call and books its wall time as waiting.
async fn waiting<T>(clock: &mut SandboxClock, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = call.await;
    clock.waited += started.elapsed();
    result
}

/// A storage error as the guest may see it: an internal failure is logged here, and counted;
/// the guest gets nothing to log again, and never the store's own words.
fn for_guest(e: native::StorageError) -> storage::StorageError {
    match e {
        native::StorageError::Internal(detail) => {
            report_storage_failure(&detail);
            storage::StorageError::Internal(String::new())
        }
        other => other.into(),
    }
}

dynabox_handler::storage_conversions!(super::dynabox::service::storage);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::Authenticator;
    use crate::runtime::{Limits, Runtime};
    use crate::storage::sqlite;

    fn keyspace(table: &str) -> storage::Keyspace {
        storage::Keyspace { table: table.into(), index: None }
    }

    /// Calls the handler would never make: storage before `authenticate`, and storage naming an
    /// account other than the one authenticated. The host refuses both with a trap.
    #[tokio::test]
    async fn storage_calls_act_only_for_the_authenticated_account() {
        let store = sqlite::open(None, crate::storage::DEFAULT_WAIT_TIMEOUT).await.expect("an in-memory store");
        let runtime = Runtime::new(Arc::new(store), Arc::new(Authenticator::Open), Limits::default())
            .expect("the runtime starts");
        let mut store = runtime.new_store(false);
        let state = store.data_mut();
        let before = storage::Host::list_tables(state, "000000000000".into(), None, 10).await;
        assert!(before.is_err(), "no storage call before authentication");

        let signed = auth::SignedRequest {
            access_key_id: "alice".into(),
            credential_scope: "20261130/us-east-1/dynamodb/aws4_request".into(),
            string_to_sign: String::new(),
            signature: String::new(),
            expires: None,
        };
        let principal = auth::Host::authenticate(state, signed).await.unwrap().expect("open mode accepts");
        let own = principal.account_id;
        assert!(matches!(storage::Host::list_tables(state, own.clone(), None, 10).await, Ok(Ok(_))));
        let other = "123456789012".to_string();
        assert!(storage::Host::list_tables(state, other.clone(), None, 10).await.is_err());
        assert!(storage::Host::describe_table(state, other.clone(), "t".into()).await.is_err());
        let key = storage::ItemKey { partition: b"k".to_vec(), sort: Vec::new() };
        assert!(storage::Host::get(state, other.clone(), keyspace("t"), key.clone()).await.is_err());
        assert!(storage::Host::get_for_write(state, other.clone(), keyspace("t"), key).await.is_err());
        assert!(storage::Host::write(state, other.clone(), Vec::new()).await.is_err());
        assert!(storage::Host::delete_table(state, other, "t".into()).await.is_err());
    }
}
