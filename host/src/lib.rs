//! The dynabox host: serves HTTP, runs the handler component once per request, and implements the
//! component's `storage` and `auth` imports.

pub mod accounts;
pub mod auth;
pub mod console;
mod failure_log;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod runtime;
pub mod server;
pub mod storage;
pub mod tls;
pub mod transfers;
pub mod worker;
