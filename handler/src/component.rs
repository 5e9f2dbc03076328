//! The component face of the handler: binds [`Storage`] and [`Auth`] to the WIT imports and
//! exports `handle`, `backfill` and `expire`, converting between the generated WIT types and the
//! crate's own (`storage_conversions!`). The component's memory allocator is `crate::allocator`.

// Generated bindings pass flattened records as many core parameters (a storage call's keyspace
// and key are eight).
#![allow(clippy::too_many_arguments)]

use crate::auth::{Auth, Principal, Refusal, SignedRequest};
use crate::storage::{
    ChangePage, Committed, ItemKey, Keyspace, Page, QueryRequest, ScanRequest, Storage, StorageError, StoredItem,
    TableChange, TableRecord, Write, WriteError,
};

wit_bindgen::generate!({
    world: "handler",
    path: "../wit",
});

use dynabox::service::report::TableUsage;
use dynabox::service::{auth as wit_auth, storage as wit};

struct Component;

impl Guest for Component {
    fn handle(context: Context, request: Request) -> (Response, Report) {
        let mut auth = HostAuth { checks_signatures: context.checks_signatures };
        let request_id = enter(context);
        let request = crate::http::Request {
            method: request.method,
            path: request.path,
            headers: request.headers,
            body: request.body,
        };
        let (response, report) = crate::handle_reporting(&request, request_id, &mut HostStorage, &mut auth);
        let crate::http::Response { status, headers, body } = response;
        let crate::report::Report { tables, error, transaction_conflict, returned_items } = report;
        let tables = tables
            .into_iter()
            .map(|t| TableUsage { name: t.name, read_units: t.read_units, write_units: t.write_units })
            .collect();
        (Response { status, headers, body }, Report { tables, error, transaction_conflict, returned_items })
    }

    fn expire(context: Context, account: String, table: String, budget: u32) -> Result<Step, String> {
        let now = context.now_ms / 1000;
        enter(context);
        crate::ops::expire_step(&mut HostStorage, &account, &table, now, budget)
            .map(|step| Step { done: step.done, count: step.count })
            .map_err(|e| format!("{}: {}", e.kind.type_name(), e.message))
    }

    fn backfill(context: Context, account: String, table: String, index: String, budget: u32) -> Result<Step, String> {
        enter(context);
        crate::index::backfill_step(&mut HostStorage, &account, &table, &index, budget)
            .map(|step| Step { done: step.done, count: step.count })
            .map_err(|e| format!("{}: {}", e.kind.type_name(), e.message))
    }
}

export!(Component);

/// Makes the host's time and randomness this instance's (see `crate::time`, `crate::random`);
/// the id the host gave the call.
fn enter(context: Context) -> String {
    let (a, b, c, d) = context.seed;
    crate::time::enter(context.now_ms);
    crate::random::enter([a, b, c, d]);
    context.request_id
}

/// The host's store, reached through the `storage` import.
struct HostStorage;

crate::storage_conversions!(dynabox::service::storage);

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
        Ok(wit::describe_table(account, name)?.map(Into::into))
    }

    fn update_table(
        &mut self,
        account: &str,
        name: &str,
        expected_version: u64,
        change: &TableChange<'_>,
    ) -> Result<Option<u64>, StorageError> {
        wit::update_table(account, name, expected_version, &change.into()).map_err(Into::into)
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
        wit::keyspace_stats(account, &keyspace.clone().into()).map_err(Into::into)
    }

    fn get(&mut self, account: &str, keyspace: &Keyspace, key: &ItemKey) -> Result<Option<StoredItem>, StorageError> {
        Ok(wit::get(account, &keyspace.clone().into(), &key.clone().into())?.map(Into::into))
    }

    fn get_for_write(
        &mut self,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
    ) -> Result<Option<StoredItem>, StorageError> {
        Ok(wit::get_for_write(account, &keyspace.clone().into(), &key.clone().into())?.map(Into::into))
    }

    fn query(&mut self, account: &str, request: &QueryRequest) -> Result<Page, StorageError> {
        Ok(wit::query(account, &request.clone().into())?.into())
    }

    fn scan(&mut self, account: &str, request: &ScanRequest) -> Result<Page, StorageError> {
        Ok(wit::scan(account, &request.clone().into())?.into())
    }

    fn write(&mut self, account: &str, writes: &[Write]) -> Result<Committed, WriteError> {
        let writes: Vec<wit::WriteOp> = writes.iter().cloned().map(Into::into).collect();
        wit::write(account, &writes).map(Into::into).map_err(Into::into)
    }

    fn read_changes(&mut self, account: &str, table: &str, after: u64, limit: u32) -> Result<ChangePage, StorageError> {
        Ok(wit::read_changes(account, table, after, limit)?.into())
    }

    fn expired(
        &mut self,
        account: &str,
        keyspace: &Keyspace,
        now: u64,
        limit: u32,
    ) -> Result<Vec<ItemKey>, StorageError> {
        let keys = wit::expired(account, &keyspace.clone().into(), now, limit)?;
        Ok(keys.into_iter().map(Into::into).collect())
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
