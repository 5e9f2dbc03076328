//! The component face of the handler: binds [`Storage`] and [`Auth`] to the WIT imports and
//! exports `handle`, `backfill` and `expire`. The component's memory allocator is
//! `crate::allocator`.

// Generated export bindings take flattened records as many core parameters (`handle`'s context
// and request are fourteen).
#![allow(clippy::too_many_arguments)]

use crate::auth::{Auth, Principal, Refusal, SignedRequest};
use crate::storage::{self, Answer, Failure, Storage, StorageError, wire};

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

/// The host's store, reached through the `storage` import: every operation crosses it encoded
/// (`storage::wire`), so this binding knows none of them.
struct HostStorage;

impl Storage for HostStorage {
    fn call(&mut self, account: &str, request: storage::Request<'_>) -> Result<Answer, Failure> {
        let answer = wit::call(account, &wire::encode(&request));
        wire::decode(&answer).unwrap_or_else(|e| Err(StorageError::Internal(e).into()))
    }

    fn runs_transfers(&self) -> bool {
        true
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
