//! The host side of the WIT imports: `storage` calls go to the request's storage (the store,
//! behind remembered descriptions), `auth` to the authenticator. A storage call is one encoded
//! `Request` of the handler's crate (`storage::wire`), so this file knows only the operations the
//! host treats apart (write turns); a description found stale ends the call in a trap carrying
//! `Stale`, which makes the runtime run the request again.
//! Every storage call's time is booked as waiting, which the request's sandbox time excludes, and
//! every storage call must name the account `auth` returned for this request: the host, not the
//! guest, decides whose data a request reaches.

use std::time::Instant;

use dynabox_handler::auth as native_auth;
use dynabox_handler::storage as native;

use super::dynabox::service::{auth, call, http, storage};
use super::{RequestState, SandboxClock};
use crate::failure_log::report_storage_failure;
use crate::metrics::Metrics;

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
    async fn call(&mut self, account: String, request: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        self.check_account(&account)?;
        let request: native::Request = native::wire::decode(&request).map_err(|e| wasmtime::format_err!("{e}"))?;
        let writes = matches!(request, native::Request::Write(_));
        if let native::Request::Get { keyspace, key, for_write: true } = &request {
            // Give up the turn at the key announced before, so no request waits while holding one.
            self.turn = None;
            let turn = self.write_turns.take(&account, keyspace, key);
            self.turn = waiting(&mut self.clock, turn).await;
        }
        let (operation, started) = (request.name(), Instant::now());
        let answer = waiting(&mut self.clock, self.storage.call(&account, request)).await?;
        Metrics::global().storage_call(operation, started.elapsed());
        if writes {
            // Written or not, the decision is made: the next writer of the key may read.
            self.turn = None;
        }
        Ok(native::wire::encode(&answer.map_err(for_guest)))
    }
}

impl auth::Host for RequestState {
    async fn authenticate(
        &mut self,
        request: auth::SignedRequest,
    ) -> wasmtime::Result<Result<auth::Principal, auth::Refusal>> {
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

/// A failure as the guest may see it: an internal failure is logged here, and counted; the guest
/// gets nothing to log again, and never the store's own words.
fn for_guest(failure: native::Failure) -> native::Failure {
    match failure {
        native::Failure::Storage(native::StorageError::Internal(detail)) => {
            report_storage_failure(&detail);
            native::StorageError::Internal(String::new()).into()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use super::*;
    use crate::auth::Authenticator;
    use crate::runtime::{Limits, Runtime};
    use crate::storage::sqlite;

    /// Calls the handler would never make: storage before `authenticate`, and storage naming an
    /// account other than the one authenticated. The host refuses both with a trap.
    #[tokio::test]
    async fn storage_calls_act_only_for_the_authenticated_account() {
        let store = sqlite::open(None, crate::storage::DEFAULT_WAIT_TIMEOUT).await.expect("an in-memory store");
        let runtime = Runtime::new(Arc::new(store), Arc::new(Authenticator::Open), Limits::default())
            .expect("the runtime starts");
        let mut store = runtime.new_store(false);
        let state = store.data_mut();
        let list = native::wire::encode(&native::Request::ListTables { start_after: None, limit: 10 });
        let before = storage::Host::call(state, "000000000000".into(), list.clone()).await;
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
        let answer = storage::Host::call(state, own.clone(), list.clone()).await.expect("the own account's call");
        let listed: Result<native::Answer, native::Failure> = native::wire::decode(&answer).unwrap();
        assert_eq!(listed, Ok(native::Answer::Names(Vec::new())));

        let other = "123456789012".to_string();
        let (keyspace, key) =
            (native::Keyspace::table("t"), native::ItemKey { partition: b"k".to_vec(), sort: Vec::new() });
        let foreign = [
            native::Request::ListTables { start_after: None, limit: 10 },
            native::Request::DescribeTable { name: "t".into() },
            native::Request::Get { keyspace: Cow::Borrowed(&keyspace), key: Cow::Borrowed(&key), for_write: false },
            native::Request::Get { keyspace: Cow::Borrowed(&keyspace), key: Cow::Borrowed(&key), for_write: true },
            native::Request::Write(Cow::Borrowed(&[])),
            native::Request::DeleteTable { name: "t".into(), keep: None },
        ];
        for request in foreign {
            let refused = storage::Host::call(state, other.clone(), native::wire::encode(&request)).await;
            assert!(refused.is_err(), "{request:?} for another account");
        }
        let garbage = storage::Host::call(state, own, vec![0xff; 3]).await;
        assert!(garbage.is_err(), "a request that does not decode traps");
    }
}
