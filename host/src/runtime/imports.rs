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
use super::{RequestState, SandboxClock};
use crate::failure_log::report_storage_failure;

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

// Remembered descriptions. Every item operation starts by reading its table's description. On
// PostgreSQL that was a round trip of its own, so the backend remembers the descriptions it read
// or wrote and `describe-table` answers from that memory, without a round trip, but only as a
// claim this request must confirm before anything depends on it:
//
// - `get`, `get-for-write` and `query` on the table confirm it in their own round trip
//   (pipelined: "the description is still at this version", a primary-key lookup).
// - A write group confirms a description by a `TableAt` guard at its version (a failed guard
//   makes the handler read the description again, and the backend has forgotten it); any other
//   unconfirmed description is confirmed before the group is sent, and after a commit the
//   request reads descriptions only from the store. So no write ever commits on a stale
//   description, and a request that wrote never needs to run again.
// - Any other call on the table, and the end of the request, confirm with a statement of their own.
//
// A description that proves stale ends the request with a trap, before its answer is sent, and
// `Runtime::run` runs it again reading every description from the store. Versions never repeat,
// so the check is exact: a table deleted and made again, an index added, or any UpdateTable by
// another process is seen at once, as before.
impl RequestState {
    /// The version of the description of `table` given to this request from memory, if it is
    /// not confirmed yet; no longer counted as unconfirmed (put it back if the check fails).
    fn take_unconfirmed(&mut self, table: &str) -> Option<u64> {
        let at = self.unconfirmed.iter().position(|(t, _)| t == table)?;
        Some(self.unconfirmed.swap_remove(at).1)
    }

    /// Ends the request so that it runs again with fresh descriptions.
    fn stale_description(&mut self) -> wasmtime::Error {
        self.stale = true;
        wasmtime::format_err!("a table's description changed after this process read it")
    }

    /// Confirms, one statement each, the unconfirmed descriptions `which` selects.
    async fn confirm(
        &mut self,
        account: &str,
        which: impl Fn(&str, u64) -> bool,
    ) -> Fallible<(), native::StorageError> {
        while let Some(at) = self.unconfirmed.iter().position(|(table, version)| which(table, *version)) {
            let (table, version) = self.unconfirmed.swap_remove(at);
            match waiting(&mut self.clock, self.backend.description_is(account, &table, version)).await {
                Ok(true) => {}
                Ok(false) => return Err(self.stale_description()),
                Err(e) => {
                    self.unconfirmed.push((table, version));
                    return Ok(Err(e));
                }
            }
        }
        Ok(Ok(()))
    }

    /// Before CreateTable, UpdateTable or DeleteTable's change: every description given so far
    /// confirmed, and from now on read from the store, since the request must not run again.
    async fn before_table_change(&mut self, account: &str) -> Fallible<(), native::StorageError> {
        let confirmed = self.confirm(account, |_, _| true).await?;
        self.fresh_descriptions = true;
        Ok(confirmed)
    }

    /// At the end of a request: whether every description it was given from memory still holds.
    /// A store that cannot tell lets the answer stand (it reports its own failures).
    pub(super) async fn confirm_remaining(&mut self) -> bool {
        let Some(account) = self.account.clone() else { return true };
        self.confirm(&account, |_, _| true).await.is_ok()
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
        if let Err(e) = self.before_table_change(&account).await? {
            return Ok(Err(e.into()));
        }
        let created = waiting(&mut self.clock, self.backend.create_table(&account, &name, &description, &indexes));
        Ok(created.await.map_err(Into::into))
    }

    async fn describe_table(
        &mut self,
        account: String,
        name: String,
    ) -> Fallible<Option<storage::TableRecord>, storage::StorageError> {
        self.check_account(&account)?;
        if !self.fresh_descriptions
            && let Some(record) = self.backend.remembered_description(&account, &name)
        {
            self.unconfirmed.retain(|(table, _)| *table != name);
            self.unconfirmed.push((name, record.version));
            return Ok(Ok(Some(storage::TableRecord { description: record.description, version: record.version })));
        }
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
        if let Err(e) = self.before_table_change(&account).await? {
            return Ok(Err(e.into()));
        }
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
        if let Err(e) = self.before_table_change(&account).await? {
            return Ok(Err(e.into()));
        }
        Ok(waiting(&mut self.clock, self.backend.delete_table(&account, &name)).await.map_err(Into::into))
    }

    async fn keyspace_stats(
        &mut self,
        account: String,
        keyspace: storage::Keyspace,
    ) -> Fallible<(u64, u64), storage::StorageError> {
        self.check_account(&account)?;
        let keyspace: native::Keyspace = keyspace.into();
        if let Err(e) = self.confirm(&account, |t, _| t == keyspace.table).await? {
            return Ok(Err(e.into()));
        }
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
        let (keyspace, key): (native::Keyspace, native::ItemKey) = (keyspace.into(), key.into());
        let found = match self.take_unconfirmed(&keyspace.table) {
            None => waiting(&mut self.clock, self.backend.get(&account, &keyspace, &key)).await,
            Some(version) => {
                let found = self.backend.get_confirming(&account, &keyspace, &key, version);
                match waiting(&mut self.clock, found).await {
                    Ok((_, false)) => return Err(self.stale_description()),
                    Ok((item, true)) => Ok(item),
                    Err(e) => {
                        self.unconfirmed.push((keyspace.table.clone(), version));
                        Err(e)
                    }
                }
            }
        };
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
        let page = match self.take_unconfirmed(&request.keyspace.table) {
            None => waiting(&mut self.clock, self.backend.query(&account, &request)).await,
            Some(version) => {
                match waiting(&mut self.clock, self.backend.query_confirming(&account, &request, version)).await {
                    Ok((_, false)) => return Err(self.stale_description()),
                    Ok((page, true)) => Ok(page),
                    Err(e) => {
                        self.unconfirmed.push((request.keyspace.table.clone(), version));
                        Err(e)
                    }
                }
            }
        };
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
        let table = request.keyspace.table.clone();
        if let Err(e) = self.confirm(&account, |t, _| t == table).await? {
            return Ok(Err(e.into()));
        }
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
        let guarded = |table: &str, version: u64| {
            writes
                .iter()
                .any(|w| matches!(w, native::Write::TableAt { table: t, version: v } if t == table && *v == version))
        };
        if let Err(e) = self.confirm(&account, |t, v| !guarded(t, v)).await? {
            return Ok(Err(storage::WriteError::Storage(e.into())));
        }
        let written = waiting(&mut self.clock, self.backend.write(&account, &writes)).await;
        // Written or not, the decision is made: the next writer of the key may read.
        self.turn = None;
        match &written {
            Ok(_) => {
                // The guards held, and the request must not run again.
                self.unconfirmed.clear();
                self.fresh_descriptions = true;
            }
            // Stale, and the handler reads it again.
            Err(native::WriteError::GuardFailed(index)) => {
                if let Some(native::Write::TableAt { table, .. }) = writes.get(*index as usize) {
                    self.unconfirmed.retain(|(t, _)| t != table);
                }
            }
            Err(native::WriteError::Storage(_)) => {}
        }
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
        if let Err(e) = self.confirm(&account, |t, _| t == table).await? {
            return Ok(Err(e.into()));
        }
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
        let keyspace: native::Keyspace = keyspace.into();
        if let Err(e) = self.confirm(&account, |t, _| t == keyspace.table).await? {
            return Ok(Err(e.into()));
        }
        let keys = waiting(&mut self.clock, self.backend.expired(&account, &keyspace, now, limit)).await;
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
            native::StorageError::OutcomeUnknown => storage::StorageError::OutcomeUnknown,
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
