//! The component face of the handler: binds [`Storage`] and [`Auth`] to the WIT imports and
//! exports `handle`, `backfill` and `expire`, converting between the generated WIT types and the
//! crate's own. The component's memory allocator is `crate::allocator`.

// Generated bindings pass flattened records as many core parameters (a storage call's keyspace
// and key are eight).
#![allow(clippy::too_many_arguments)]

use std::ops::Bound;

use crate::auth::{Auth, Principal, Refusal, SignedRequest};
use crate::storage::{
    ChangePage, ChangeRecord, Committed, Expect, ItemKey, Keyspace, Page, QueryRequest, ScanRequest, SortRange,
    Storage, StorageError, StoredItem, TableChange, TableRecord, Write, WriteError,
};

wit_bindgen::generate!({
    world: "handler",
    path: "../wit",
});

use dynabox::service::{auth as wit_auth, storage as wit};

struct Component;

impl Guest for Component {
    fn handle(context: Context, request: Request) -> Response {
        let mut auth = HostAuth { checks_signatures: context.checks_signatures };
        enter(context);
        let request = crate::http::Request {
            method: request.method,
            path: request.path,
            headers: request.headers,
            body: request.body,
        };
        let crate::http::Response { status, headers, body } = crate::handle(&request, &mut HostStorage, &mut auth);
        Response { status, headers, body }
    }

    fn expire(context: Context, account: String, table: String, budget: u32) -> Result<bool, String> {
        let now = context.now_ms / 1000;
        enter(context);
        crate::ops::expire_step(&mut HostStorage, &account, &table, now, budget)
            .map_err(|e| format!("{}: {}", e.kind.type_name(), e.message))
    }

    fn backfill(context: Context, account: String, table: String, index: String, budget: u32) -> Result<bool, String> {
        enter(context);
        crate::index::backfill_step(&mut HostStorage, &account, &table, &index, budget)
            .map_err(|e| format!("{}: {}", e.kind.type_name(), e.message))
    }
}

export!(Component);

/// Makes the host's time and randomness this instance's (see `crate::time`, `crate::random`).
fn enter(context: Context) {
    let (a, b, c, d) = context.seed;
    crate::time::enter(context.now_ms);
    crate::random::enter([a, b, c, d]);
}

/// The host's store, reached through the `storage` import.
struct HostStorage;

impl Storage for HostStorage {
    fn create_table(
        &mut self,
        account: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<bool, StorageError> {
        wit::create_table(account, name, description, indexes).map_err(Into::into)
    }

    fn describe_table(&mut self, account: &str, name: &str) -> Result<Option<TableRecord>, StorageError> {
        let record = wit::describe_table(account, name)?;
        Ok(record.map(|r| TableRecord { description: r.description, version: r.version }))
    }

    fn update_table(
        &mut self,
        account: &str,
        name: &str,
        expected_version: u64,
        change: &TableChange<'_>,
    ) -> Result<Option<u64>, StorageError> {
        let change = wit::TableChange {
            description: change.description.to_vec(),
            create_indexes: change.create_indexes.to_vec(),
            drop_indexes: change.drop_indexes.to_vec(),
        };
        wit::update_table(account, name, expected_version, &change).map_err(Into::into)
    }

    fn list_tables(
        &mut self,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        wit::list_tables(account, start_after, limit).map_err(Into::into)
    }

    fn delete_table(&mut self, account: &str, name: &str) -> Result<bool, StorageError> {
        wit::delete_table(account, name).map_err(Into::into)
    }

    fn keyspace_stats(&mut self, account: &str, keyspace: &Keyspace) -> Result<(u64, u64), StorageError> {
        wit::keyspace_stats(account, &keyspace.into()).map_err(Into::into)
    }

    fn get(&mut self, account: &str, keyspace: &Keyspace, key: &ItemKey) -> Result<Option<StoredItem>, StorageError> {
        Ok(wit::get(account, &keyspace.into(), &key.into())?.map(Into::into))
    }

    fn get_for_write(
        &mut self,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
    ) -> Result<Option<StoredItem>, StorageError> {
        Ok(wit::get_for_write(account, &keyspace.into(), &key.into())?.map(Into::into))
    }

    fn query(&mut self, account: &str, request: &QueryRequest) -> Result<Page, StorageError> {
        let bound = |bound: &Bound<Vec<u8>>| match bound {
            Bound::Unbounded => wit::Bound::Unbounded,
            Bound::Included(b) => wit::Bound::Inclusive(b.clone()),
            Bound::Excluded(b) => wit::Bound::Exclusive(b.clone()),
        };
        let request = wit::QueryRequest {
            keyspace: (&request.keyspace).into(),
            partition: request.partition.clone(),
            sort: match &request.sort {
                SortRange::All => wit::SortRange::All,
                SortRange::Prefix(prefix) => wit::SortRange::Prefix(prefix.clone()),
                SortRange::Between(lower, upper) => wit::SortRange::Between((bound(lower), bound(upper))),
            },
            forward: request.forward,
            after: request.after.as_ref().map(Into::into),
            limit: request.limit,
            byte_budget: request.byte_budget,
        };
        Ok(wit::query(account, &request)?.into())
    }

    fn scan(&mut self, account: &str, request: &ScanRequest) -> Result<Page, StorageError> {
        let request = wit::ScanRequest {
            keyspace: (&request.keyspace).into(),
            segment: request.segment,
            total_segments: request.total_segments,
            after: request.after.as_ref().map(Into::into),
            limit: request.limit,
            byte_budget: request.byte_budget,
        };
        Ok(wit::scan(account, &request)?.into())
    }

    fn write(&mut self, account: &str, writes: &[Write]) -> Result<Committed, WriteError> {
        let guarded = |keyspace: &Keyspace, key: &ItemKey, expect: &Expect| wit::GuardedKey {
            keyspace: keyspace.into(),
            key: key.into(),
            expect: expect.into(),
        };
        let writes: Vec<wit::WriteOp> = writes
            .iter()
            .map(|write| match write {
                Write::Put { keyspace, key, document, expect, expires_at } => wit::WriteOp::Put(wit::Put {
                    keyspace: keyspace.into(),
                    key: key.into(),
                    document: document.clone(),
                    expect: expect.into(),
                    expires_at: *expires_at,
                }),
                Write::Delete { keyspace, key, expect } => wit::WriteOp::Delete(guarded(keyspace, key, expect)),
                Write::Check { keyspace, key, expect } => wit::WriteOp::Check(guarded(keyspace, key, expect)),
                Write::TableAt { table, version } => wit::WriteOp::TableAt((table.clone(), *version)),
                Write::AppendChange { table, record } => wit::WriteOp::AppendChange((table.clone(), record.clone())),
            })
            .collect();
        match wit::write(account, &writes) {
            Ok(committed) => Ok(Committed { change_sequences: committed.change_sequences }),
            Err(wit::WriteError::GuardFailed(index)) => Err(WriteError::GuardFailed(index)),
            Err(wit::WriteError::Storage(e)) => Err(WriteError::Storage(e.into())),
        }
    }

    fn read_changes(&mut self, account: &str, table: &str, after: u64, limit: u32) -> Result<ChangePage, StorageError> {
        let page = wit::read_changes(account, table, after, limit)?;
        let changes = page.changes.into_iter().map(|c| ChangeRecord { sequence: c.sequence, record: c.data });
        Ok(ChangePage { changes: changes.collect(), last_sequence: page.last_sequence })
    }

    fn expired(
        &mut self,
        account: &str,
        keyspace: &Keyspace,
        now: u64,
        limit: u32,
    ) -> Result<Vec<ItemKey>, StorageError> {
        let keys = wit::expired(account, &keyspace.into(), now, limit)?;
        Ok(keys.into_iter().map(|k| ItemKey { partition: k.partition, sort: k.sort }).collect())
    }
}

impl From<wit::StorageError> for StorageError {
    fn from(e: wit::StorageError) -> Self {
        match e {
            wit::StorageError::NoSuchKeyspace => StorageError::NoSuchKeyspace,
            wit::StorageError::Internal(detail) => StorageError::Internal(detail),
            wit::StorageError::OutcomeUnknown => StorageError::OutcomeUnknown,
        }
    }
}

impl From<&Keyspace> for wit::Keyspace {
    fn from(k: &Keyspace) -> Self {
        wit::Keyspace { table: k.table.clone(), index: k.index.clone() }
    }
}

impl From<&ItemKey> for wit::ItemKey {
    fn from(k: &ItemKey) -> Self {
        wit::ItemKey { partition: k.partition.clone(), sort: k.sort.clone() }
    }
}

impl From<&Expect> for wit::Expect {
    fn from(e: &Expect) -> Self {
        match *e {
            Expect::Anything => wit::Expect::Anything,
            Expect::Absent => wit::Expect::Absent,
            Expect::Version(v) => wit::Expect::Version(v),
        }
    }
}

impl From<wit::StoredItem> for StoredItem {
    fn from(i: wit::StoredItem) -> Self {
        StoredItem {
            key: ItemKey { partition: i.key.partition, sort: i.key.sort },
            document: i.document,
            version: i.version,
        }
    }
}

impl From<wit::Page> for Page {
    fn from(page: wit::Page) -> Self {
        Page { items: page.items.into_iter().map(Into::into).collect(), more: page.more }
    }
}

/// The host's authenticator, reached through the `auth` import.
struct HostAuth {
    checks_signatures: bool,
}

impl Auth for HostAuth {
    fn authenticate(&mut self, request: &SignedRequest) -> Result<Principal, Refusal> {
        let request = wit_auth::SignedRequest {
            access_key_id: request.access_key_id.clone(),
            credential_scope: request.credential_scope.clone(),
            string_to_sign: request.string_to_sign.clone(),
            signature: request.signature.clone(),
            expires: request.expires,
        };
        match wit_auth::authenticate(&request) {
            Ok(p) => Ok(Principal { account_id: p.account_id, access_key_id: p.access_key_id }),
            Err(wit_auth::Refusal::UnrecognizedClient) => Err(Refusal::UnrecognizedClient),
            Err(wit_auth::Refusal::InvalidSignature(message)) => Err(Refusal::InvalidSignature(message)),
            Err(wit_auth::Refusal::Unavailable) => Err(Refusal::Unavailable),
        }
    }

    fn checks_signatures(&self) -> bool {
        self.checks_signatures
    }
}
