//! dynabox as a Spin component: Spin's HTTP trigger calls [`handle`], which runs the handler
//! library (every DynamoDB rule, the same code the host's sandbox runs) on `dynabox_sql::SqlStore`
//! over Spin's SQLite interface (the default database) or, when the variable `postgres_url` is set,
//! over Spin's PostgreSQL interface: the schema, statements and migrations of the host's backends.
//!
//! Spin runs a fresh instance per request and keeps no process between requests, so the store is
//! opened per request (the schema check is one read) and the host's background work is done by
//! requests (see [`backfill`]).

mod backfill;
mod connection;

use dynabox_handler::auth::OpenPolicy;
use dynabox_handler::catalog::storage_error;
use dynabox_handler::content_coding;
use dynabox_handler::storage::StorageError;
use dynabox_handler::storage::memory::MemoryStore;
use dynabox_sql::{Connection, Dialect, SqlStore};
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

use connection::{SpinPostgres, SpinSqlite};

#[http_component]
fn handle(request: Request) -> Response {
    let mut request = dynabox_handler::http::Request {
        method: request.method().to_string(),
        path: request.path_and_query().unwrap_or("/").to_string(),
        headers: request.headers().map(|(name, value)| (name.to_string(), value.as_str().unwrap_or("").into())).collect(),
        body: request.into_body(),
    };
    let mut response = match content_coding::decode_request_body(&mut request) {
        Ok(()) => respond(&request),
        Err(error) => dynabox_handler::protocol::error_response(&error, dynabox_handler::random::request_id()),
    };
    content_coding::encode_response(request.header("accept-encoding"), &mut response);
    let mut builder = Response::builder();
    builder.status(response.status);
    for (name, value) in response.headers {
        builder.header(name, value);
    }
    builder.body(response.body).build()
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
                dynabox_handler::protocol::error_response(&storage_error(e), dynabox_handler::random::request_id())
            }
        },
    }
}

fn answer<C: Connection>(
    request: &dynabox_handler::http::Request,
    store: &mut SqlStore<C>,
) -> dynabox_handler::http::Response {
    let operation = dynabox_handler::protocol::target_operation(request);
    // A new index is filled before DescribeTable answers (clients poll it until the index is
    // ACTIVE) and after UpdateTable has created it.
    if operation == Some("DescribeTable") {
        backfill::step(store);
    }
    let response = dynabox_handler::handle(request, store, &mut OpenPolicy);
    if operation == Some("UpdateTable") {
        backfill::step(store);
    }
    response
}

enum Store {
    Sqlite(SqlStore<SpinSqlite>),
    Postgres(SqlStore<SpinPostgres>),
}

/// Spin's PostgreSQL database when the variable `postgres_url` is set, else its default SQLite
/// database.
fn open_store() -> Result<Store, StorageError> {
    let internal = |e: &dyn std::fmt::Display| StorageError::Internal(e.to_string());
    let url = spin_sdk::variables::get("postgres_url").unwrap_or_default();
    if url.is_empty() {
        let connection = SpinSqlite::open_default().map_err(|e| internal(&e))?;
        SqlStore::open(connection, Dialect::Sqlite).map(Store::Sqlite).map_err(|e| internal(&e))
    } else {
        let connection = SpinPostgres::open(&url).map_err(|e| internal(&e))?;
        SqlStore::open(connection, Dialect::Postgres).map(Store::Postgres).map_err(|e| internal(&e))
    }
}
