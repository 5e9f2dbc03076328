//! The component face of the handler: binds [`Storage`] and [`Auth`] to the WIT imports and
//! exports `handle`. Everything here is mechanical conversion between the generated WIT types
//! and the crate's own.

use crate::auth::{Auth, Principal};
use crate::storage::{Expect, ItemKey, Page, ScanRequest, Storage, StorageError, StoredItem, Write, WriteError};

wit_bindgen::generate!({
    world: "handler",
    path: "../wit",
});

use dynabox::service::{auth as wit_auth, storage as wit};

struct Component;

impl Guest for Component {
    fn handle(request: Request) -> Response {
        let request = crate::http::Request {
            method: request.method,
            path: request.path,
            headers: request.headers,
            body: request.body,
        };
        let crate::http::Response { status, headers, body } =
            crate::handle(&request, &mut HostStorage, &mut HostAuth);
        Response { status, headers, body }
    }
}

export!(Component);

/// The host's store, reached through the `storage` import.
struct HostStorage;

impl Storage for HostStorage {
    fn create_table(&mut self, name: &str, description: &[u8]) -> Result<bool, StorageError> {
        wit::create_table(name, description).map_err(Into::into)
    }

    fn describe_table(&mut self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        wit::describe_table(name).map_err(Into::into)
    }

    fn list_tables(&mut self, start_after: Option<&str>, limit: u32) -> Result<Vec<String>, StorageError> {
        wit::list_tables(start_after, limit).map_err(Into::into)
    }

    fn delete_table(&mut self, name: &str) -> Result<bool, StorageError> {
        wit::delete_table(name).map_err(Into::into)
    }

    fn keyspace_stats(&mut self, keyspace: &str) -> Result<(u64, u64), StorageError> {
        wit::keyspace_stats(keyspace).map_err(Into::into)
    }

    fn get(&mut self, keyspace: &str, key: &ItemKey) -> Result<Option<StoredItem>, StorageError> {
        Ok(wit::get(keyspace, &key.clone().into())?.map(Into::into))
    }

    fn scan(&mut self, request: &ScanRequest) -> Result<Page, StorageError> {
        let request = wit::ScanRequest {
            keyspace: request.keyspace.clone(),
            after: request.after.clone().map(Into::into),
            limit: request.limit,
            byte_budget: request.byte_budget,
        };
        let page = wit::scan(&request)?;
        Ok(Page { items: page.items.into_iter().map(Into::into).collect(), more: page.more })
    }

    fn write(&mut self, writes: &[Write]) -> Result<(), WriteError> {
        let writes: Vec<wit::WriteOp> = writes
            .iter()
            .map(|w| wit::WriteOp {
                keyspace: w.keyspace.clone(),
                key: w.key.clone().into(),
                document: w.document.clone(),
                expect: match w.expect {
                    Expect::Anything => wit::Expect::Anything,
                    Expect::Absent => wit::Expect::Absent,
                    Expect::Version(v) => wit::Expect::Version(v),
                },
            })
            .collect();
        wit::write(&writes).map_err(|e| match e {
            wit::WriteError::GuardFailed(index) => WriteError::GuardFailed(index),
            wit::WriteError::Storage(e) => WriteError::Storage(e.into()),
        })
    }
}

impl From<wit::StorageError> for StorageError {
    fn from(e: wit::StorageError) -> Self {
        match e {
            wit::StorageError::NoSuchKeyspace => StorageError::NoSuchKeyspace,
            wit::StorageError::Internal(detail) => StorageError::Internal(detail),
        }
    }
}

impl From<ItemKey> for wit::ItemKey {
    fn from(k: ItemKey) -> Self {
        wit::ItemKey { partition: k.partition, sort: k.sort }
    }
}

impl From<wit::StoredItem> for StoredItem {
    fn from(i: wit::StoredItem) -> Self {
        StoredItem { key: ItemKey { partition: i.key.partition, sort: i.key.sort }, document: i.document, version: i.version }
    }
}

/// The host's authenticator, reached through the `auth` import.
struct HostAuth;

impl Auth for HostAuth {
    fn authenticate(&mut self, access_key_id: &str, scope: &str, string_to_sign: &str, signature: &str) -> Result<Principal, String> {
        wit_auth::authenticate(access_key_id, scope, string_to_sign, signature)
            .map(|p| Principal { account_id: p.account_id, access_key_id: p.access_key_id })
    }
}
