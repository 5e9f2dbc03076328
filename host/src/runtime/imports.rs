//! The host side of the WIT imports: `storage` calls go to the backend, `auth` to the
//! authenticator. Types cross the boundary by plain conversion into the handler crate's own.
//! Every storage call's time is booked as waiting, which the request's sandbox time excludes, and
//! every storage call must name the account `auth` returned for this request: the host, not the
//! guest, decides whose data a request reaches.

use std::ops::Bound;
use std::time::Instant;

use dynabox_handler::auth as native_auth;
use dynabox_handler::storage as native;

use super::dynabox::service::{auth, call, http, storage};
use super::failure_log::report_storage_failure;
use super::{RequestState, SandboxClock};

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

impl http::Host for RequestState {}

impl call::Host for RequestState {}

impl RequestState {
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
        let created = waiting(&mut self.clock, self.backend.create_table(&account, &name, &description, &indexes));
        Ok(created.await.map_err(Into::into))
    }

    async fn describe_table(
        &mut self,
        account: String,
        name: String,
    ) -> Fallible<Option<storage::TableRecord>, storage::StorageError> {
        self.check_account(&account)?;
        let record = waiting(&mut self.clock, self.backend.describe_table(&account, &name)).await;
        Ok(record
            .map(|r| r.map(|r| storage::TableRecord { description: r.description, version: r.version }))
            .map_err(Into::into))
    }

    async fn update_table(
        &mut self,
        account: String,
        name: String,
        expected_version: u64,
        change: storage::TableChange,
    ) -> Fallible<Option<u64>, storage::StorageError> {
        self.check_account(&account)?;
        let change = native::TableChange {
            description: &change.description,
            create_indexes: &change.create_indexes,
            drop_indexes: &change.drop_indexes,
        };
        let updated = waiting(&mut self.clock, self.backend.update_table(&account, &name, expected_version, &change));
        Ok(updated.await.map_err(Into::into))
    }

    async fn list_tables(
        &mut self,
        account: String,
        start_after: Option<String>,
        limit: u32,
    ) -> Fallible<Vec<String>, storage::StorageError> {
        self.check_account(&account)?;
        let names = waiting(&mut self.clock, self.backend.list_tables(&account, start_after.as_deref(), limit));
        Ok(names.await.map_err(Into::into))
    }

    async fn delete_table(&mut self, account: String, name: String) -> Fallible<bool, storage::StorageError> {
        self.check_account(&account)?;
        Ok(waiting(&mut self.clock, self.backend.delete_table(&account, &name)).await.map_err(Into::into))
    }

    async fn keyspace_stats(
        &mut self,
        account: String,
        keyspace: storage::Keyspace,
    ) -> Fallible<(u64, u64), storage::StorageError> {
        self.check_account(&account)?;
        let keyspace = keyspace.into();
        let stats = waiting(&mut self.clock, self.backend.keyspace_stats(&account, &keyspace)).await;
        Ok(stats.map_err(Into::into))
    }

    async fn get(
        &mut self,
        account: String,
        keyspace: storage::Keyspace,
        key: storage::ItemKey,
    ) -> Fallible<Option<storage::StoredItem>, storage::StorageError> {
        self.check_account(&account)?;
        let (keyspace, key) = (keyspace.into(), key.into());
        let found = waiting(&mut self.clock, self.backend.get(&account, &keyspace, &key)).await;
        Ok(found.map(|item| item.map(Into::into)).map_err(Into::into))
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
        let bound = |bound: storage::Bound| match bound {
            storage::Bound::Unbounded => Bound::Unbounded,
            storage::Bound::Inclusive(b) => Bound::Included(b),
            storage::Bound::Exclusive(b) => Bound::Excluded(b),
        };
        let request = native::QueryRequest {
            keyspace: request.keyspace.into(),
            partition: request.partition,
            sort: match request.sort {
                storage::SortRange::All => native::SortRange::All,
                storage::SortRange::Prefix(prefix) => native::SortRange::Prefix(prefix),
                storage::SortRange::Between((lower, upper)) => native::SortRange::Between(bound(lower), bound(upper)),
            },
            forward: request.forward,
            after: request.after.map(Into::into),
            limit: request.limit,
            byte_budget: request.byte_budget,
        };
        let page = waiting(&mut self.clock, self.backend.query(&account, &request)).await;
        Ok(page.map(Into::into).map_err(Into::into))
    }

    async fn scan(
        &mut self,
        account: String,
        request: storage::ScanRequest,
    ) -> Fallible<storage::Page, storage::StorageError> {
        self.check_account(&account)?;
        let request = native::ScanRequest {
            keyspace: request.keyspace.into(),
            segment: request.segment,
            total_segments: request.total_segments,
            after: request.after.map(Into::into),
            limit: request.limit,
            byte_budget: request.byte_budget,
        };
        let page = waiting(&mut self.clock, self.backend.scan(&account, &request)).await;
        Ok(page.map(Into::into).map_err(Into::into))
    }

    async fn write(
        &mut self,
        account: String,
        writes: Vec<storage::WriteOp>,
    ) -> Fallible<storage::Committed, storage::WriteError> {
        self.check_account(&account)?;
        let writes: Vec<native::Write> = writes
            .into_iter()
            .map(|write| match write {
                storage::WriteOp::Put(p) => native::Write::Put {
                    keyspace: p.keyspace.into(),
                    key: p.key.into(),
                    document: p.document,
                    expect: p.expect.into(),
                    expires_at: p.expires_at,
                },
                storage::WriteOp::Delete(g) => {
                    native::Write::Delete { keyspace: g.keyspace.into(), key: g.key.into(), expect: g.expect.into() }
                }
                storage::WriteOp::Check(g) => {
                    native::Write::Check { keyspace: g.keyspace.into(), key: g.key.into(), expect: g.expect.into() }
                }
                storage::WriteOp::TableAt((table, version)) => native::Write::TableAt { table, version },
                storage::WriteOp::AppendChange((table, record)) => native::Write::AppendChange { table, record },
            })
            .collect();
        let written = waiting(&mut self.clock, self.backend.write(&account, &writes)).await;
        // Written or not, the decision is made: the next writer of the key may read.
        self.turn = None;
        Ok(written
            .map_err(|e| match e {
                native::WriteError::GuardFailed(index) => storage::WriteError::GuardFailed(index),
                native::WriteError::Storage(e) => storage::WriteError::Storage(e.into()),
            })
            .map(|c| storage::Committed { change_sequences: c.change_sequences }))
    }

    async fn read_changes(
        &mut self,
        account: String,
        table: String,
        after: u64,
        limit: u32,
    ) -> Fallible<storage::ChangePage, storage::StorageError> {
        self.check_account(&account)?;
        let page = waiting(&mut self.clock, self.backend.read_changes(&account, &table, after, limit)).await;
        Ok(page
            .map(|page| storage::ChangePage {
                changes: page
                    .changes
                    .into_iter()
                    .map(|c| storage::ChangeRecord { sequence: c.sequence, data: c.record })
                    .collect(),
                last_sequence: page.last_sequence,
            })
            .map_err(Into::into))
    }

    async fn expired(
        &mut self,
        account: String,
        keyspace: storage::Keyspace,
        now: u64,
        limit: u32,
    ) -> Fallible<Vec<storage::ItemKey>, storage::StorageError> {
        self.check_account(&account)?;
        let keys = waiting(&mut self.clock, self.backend.expired(&account, &keyspace.into(), now, limit)).await;
        Ok(keys
            .map(|keys| keys.into_iter().map(|k| storage::ItemKey { partition: k.partition, sort: k.sort }).collect())
            .map_err(Into::into))
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

impl From<native::StorageError> for storage::StorageError {
    fn from(e: native::StorageError) -> Self {
        match e {
            native::StorageError::NoSuchKeyspace => storage::StorageError::NoSuchKeyspace,
            native::StorageError::Internal(detail) => {
                report_storage_failure(&detail);
                // Logged here, and counted: the guest gets nothing to log again, and never the
                // store's own words.
                storage::StorageError::Internal(String::new())
            }
        }
    }
}

impl From<storage::Keyspace> for native::Keyspace {
    fn from(k: storage::Keyspace) -> Self {
        native::Keyspace { table: k.table, index: k.index }
    }
}

impl From<storage::ItemKey> for native::ItemKey {
    fn from(k: storage::ItemKey) -> Self {
        native::ItemKey { partition: k.partition, sort: k.sort }
    }
}

impl From<storage::Expect> for native::Expect {
    fn from(e: storage::Expect) -> Self {
        match e {
            storage::Expect::Anything => native::Expect::Anything,
            storage::Expect::Absent => native::Expect::Absent,
            storage::Expect::Version(v) => native::Expect::Version(v),
        }
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

impl From<native::Page> for storage::Page {
    fn from(page: native::Page) -> Self {
        storage::Page { items: page.items.into_iter().map(Into::into).collect(), more: page.more }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::Authenticator;
    use crate::runtime::{Limits, Runtime};
    use crate::storage::Backend;

    fn keyspace(table: &str) -> storage::Keyspace {
        storage::Keyspace { table: table.into(), index: None }
    }

    /// Calls the handler would never make: storage before `authenticate`, and storage naming an
    /// account other than the one authenticated. The host refuses both with a trap.
    #[tokio::test]
    async fn storage_calls_act_only_for_the_authenticated_account() {
        let runtime = Runtime::new(Arc::new(Backend::reference()), Arc::new(Authenticator::Open), Limits::default())
            .expect("the runtime starts");
        let mut store = runtime.new_store();
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
