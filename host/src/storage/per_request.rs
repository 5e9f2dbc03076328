//! The Spin component's storage code run natively: `dynabox_sql::SqlStore` opened afresh for
//! every call, with no cache carried from one call to the next, as the Spin component opens it
//! for every request; over rusqlite where Spin offers its SQLite interface (rusqlite on Spin's
//! side too) and over the `postgres` client where Spin offers its PostgreSQL interface
//! (tokio-postgres on Spin's side). Spin pools PostgreSQL connections; so does this.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use dynabox_handler::storage::StorageError;
use dynabox_sql::{Dialect, SqlStore};

pub struct PerRequestStore {
    location: Location,
}

enum Location {
    Sqlite(PathBuf),
    Postgres { url: String, idle: Mutex<Vec<postgres::Client>> },
}

/// A store opened for one call.
pub enum Opened {
    Sqlite(SqlStore<rusqlite::Connection>),
    Postgres(SqlStore<postgres::Client>),
}

impl PerRequestStore {
    /// On the SQLite file `path` (created if missing).
    pub fn sqlite(path: PathBuf) -> PerRequestStore {
        PerRequestStore { location: Location::Sqlite(path) }
    }

    /// On the PostgreSQL database at `url`.
    pub fn postgres(url: &str) -> PerRequestStore {
        PerRequestStore { location: Location::Postgres { url: url.to_string(), idle: Mutex::default() } }
    }

    pub fn describe(&self) -> String {
        match &self.location {
            Location::Sqlite(path) => format!("per-request store on SQLite at {}", path.display()),
            Location::Postgres { .. } => "per-request store on PostgreSQL".to_string(),
        }
    }

    /// Opens a store (applying migrations, as the Spin component does on every request).
    pub fn open(&self) -> Result<Opened, StorageError> {
        let internal = |e: &dyn std::fmt::Display| StorageError::Internal(e.to_string());
        match &self.location {
            Location::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).map_err(|e| internal(&e))?;
                // Spin opens its connections with rusqlite's default busy timeout: the same.
                conn.busy_timeout(Duration::from_secs(5)).map_err(|e| internal(&e))?;
                SqlStore::open(conn, Dialect::Sqlite).map(Opened::Sqlite).map_err(|e| internal(&e))
            }
            Location::Postgres { url, idle } => {
                let pooled = idle.lock().unwrap().pop();
                let client = match pooled {
                    Some(client) => client,
                    None => postgres::Client::connect(url, postgres::NoTls).map_err(|e| internal(&e))?,
                };
                SqlStore::open(client, Dialect::Postgres).map(Opened::Postgres).map_err(|e| internal(&e))
            }
        }
    }

    /// Returns the connection of a PostgreSQL store to the pool.
    pub fn give_back(&self, store: SqlStore<postgres::Client>) {
        if let Location::Postgres { idle, .. } = &self.location {
            idle.lock().unwrap().push(store.into_connection());
        }
    }
}

impl Drop for PerRequestStore {
    fn drop(&mut self) {
        if let Location::Postgres { idle, .. } = &mut self.location {
            // Closing a `postgres` client blocks on a runtime of its own, which may not start
            // on a thread that drives asynchronous tasks (where a test drops its backend).
            let idle = std::mem::take(idle.get_mut().unwrap());
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}
