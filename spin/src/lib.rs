//! dynabox as a Spin component: Spin's HTTP trigger calls [`handle`], which runs the handler
//! library (every DynamoDB rule, the same code the host's sandbox runs) on `dynabox_sql::SqlStore`
//! (as `Synchronous`: Spin's interfaces answer at once)
//! over Spin's SQLite interface (the default database) or, when the variable `postgres_url` is set,
//! over Spin's PostgreSQL interface: the schema, statements and migrations of the host's backends.
//! The variable `auth` picks the policy: `open` (the default) or `sigv4` (see [`claimed_account`]).
//!
//! Spin runs a fresh instance per request and keeps no process between requests, so the store is
//! opened per request (the schema check is one read) and the host's background work is done by
//! requests (see [`backfill`]).

mod backfill;
mod connection;
mod expiry;

use dynabox_handler::auth::{ClaimedAccount, OpenPolicy};
use dynabox_handler::error::ApiError;
use dynabox_handler::front_door::{self, Reply, Step};
use dynabox_handler::storage::StorageError;
use dynabox_handler::storage::memory::MemoryStore;
use dynabox_sql::accounts::SealingKey;
use dynabox_sql::{Connection, Dialect, Synchronous};
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

use connection::{SpinPostgres, SpinSqlite};

#[http_component]
fn handle(request: Request) -> Response {
    let mut headers: Vec<(String, String)> =
        request.headers().map(|(name, value)| (name.to_string(), value.as_str().unwrap_or("").into())).collect();
    // Spin hands the `Host` header over as the URI's authority; signatures cover it.
    if let Some(host) = authority(request.uri()).filter(|_| !headers.iter().any(|(name, _)| name == "host")) {
        headers.push(("host".into(), host.into()));
    }
    let request = dynabox_handler::http::Request {
        method: request.method().to_string(),
        path: request.path_and_query().unwrap_or("/").to_string(),
        headers,
        body: request.into_body(),
    };
    let reply = Reply::to(&request);
    let response = reply.finish(match front_door::receive(request) {
        Step::Run(request) => respond(&request),
        Step::Answer(response) => response,
    });
    let mut builder = Response::builder();
    builder.status(response.status);
    for (name, value) in response.headers {
        builder.header(name, value);
    }
    builder.body(response.body).build()
}

/// `host:port` of an absolute URI.
fn authority(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://")?.1;
    rest.split(['/', '?']).next().filter(|authority| !authority.is_empty())
}

/// Health checks and unknown operations are answered before any storage call: no store is
/// opened for them.
fn respond(request: &dynabox_handler::http::Request) -> dynabox_handler::http::Response {
    match dynabox_handler::protocol::target_operation(request) {
        None => dynabox_handler::handle(request, &mut MemoryStore::default(), &mut OpenPolicy),
        Some(_) => match open_store() {
            Ok(Store::Sqlite(mut store)) => answer(request, &mut store),
            Ok(Store::Postgres(mut store)) => answer(request, &mut store),
            Err(e) => {
                dynabox_handler::protocol::error_response(&ApiError::from(e), dynabox_handler::random::request_id())
            }
        },
    }
}

fn answer<C: Connection>(
    request: &dynabox_handler::http::Request,
    store: &mut Synchronous<C>,
) -> dynabox_handler::http::Response {
    let operation = dynabox_handler::protocol::target_operation(request);
    // A new index is filled before DescribeTable answers (clients poll it until the index is
    // ACTIVE) and after UpdateTable or a restore has created it.
    if operation == Some("DescribeTable") {
        backfill::step(store);
    }
    let response = match spin_sdk::variables::get("auth").as_deref() {
        Ok("sigv4") => {
            let mut account = claimed_account(request, store);
            dynabox_handler::handle(request, store, &mut account)
        }
        Ok("open" | "") => dynabox_handler::handle(request, store, &mut OpenPolicy),
        // A mistyped policy must not serve as the open one.
        _ => {
            let refusal = ApiError::internal("the Spin variable auth must be open or sigv4");
            return dynabox_handler::protocol::error_response(&refusal, dynabox_handler::random::request_id());
        }
    };
    if matches!(operation, Some("UpdateTable" | "RestoreTableFromBackup" | "RestoreTableToPointInTime")) {
        backfill::step(store);
    }
    if operation.is_some_and(expiry::sweeps_after) {
        expiry::sweep(store);
    }
    response
}

/// Under `auth = sigv4`: the account the request's signature names, from the store, its secrets
/// opened with the variable `secret_key` (the 64 hex digits of the host's key file, so `dynabox
/// account` manages Spin's accounts on a shared PostgreSQL database). The handler checks the
/// signature with them as the host does.
fn claimed_account<C: Connection>(
    request: &dynabox_handler::http::Request,
    store: &mut Synchronous<C>,
) -> ClaimedAccount {
    // A request without a well-formed signature is refused before its account is asked for.
    // Only the access key is read here; `handle` builds the string to sign.
    let Ok(signed) = dynabox_handler::sigv4::signed_request(request, false) else { return ClaimedAccount::Unknown };
    let Some(key) = spin_sdk::variables::get("secret_key").ok().and_then(|hex| SealingKey::from_hex(&hex)) else {
        eprintln!("dynabox: auth = sigv4 needs the variable secret_key (64 hex digits)");
        return ClaimedAccount::Unreadable;
    };
    let name = &signed.access_key_id;
    match store.find_account(name) {
        Ok(Some(record)) => match key.open_all(name, &record) {
            Some(secrets) => ClaimedAccount::Found { account_id: record.account_id, secrets },
            None => {
                eprintln!("dynabox: account {name:?} has a secret sealed under another key; refusing it");
                ClaimedAccount::Unknown
            }
        },
        Ok(None) => ClaimedAccount::Unknown,
        Err(e) => {
            eprintln!("dynabox: reading account {name:?}: {e}");
            ClaimedAccount::Unreadable
        }
    }
}

enum Store {
    Sqlite(Synchronous<SpinSqlite>),
    Postgres(Synchronous<SpinPostgres>),
}

/// Spin's PostgreSQL database when the variable `postgres_url` is set, else its default SQLite
/// database.
fn open_store() -> Result<Store, StorageError> {
    let internal = |e: &dyn std::fmt::Display| StorageError::Internal(e.to_string());
    let url = spin_sdk::variables::get("postgres_url").unwrap_or_default();
    if url.is_empty() {
        let connection = SpinSqlite::open_default().map_err(|e| internal(&e))?;
        Synchronous::open(connection, Dialect::Sqlite).map(Store::Sqlite).map_err(|e| internal(&e))
    } else {
        let connection = SpinPostgres::open(&url).map_err(|e| internal(&e))?;
        Synchronous::open(connection, Dialect::Postgres).map(Store::Postgres).map_err(|e| internal(&e))
    }
}
