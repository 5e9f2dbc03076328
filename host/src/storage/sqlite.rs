//! The embedded store: `dynabox_sql::SqlStore` on one rusqlite connection, to a file in a
//! directory or in memory.
//!
//! One connection behind a mutex: every operation takes microseconds, so the async methods of
//! [`super::Backend`] call the store directly instead of moving it to a blocking thread, and a
//! single connection costs nothing in throughput.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use dynabox_handler::storage::partition_hash;
use dynabox_sql::{Dialect, SqlStore};
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

const FILE_NAME: &str = "dynabox.sqlite3";

pub struct SqliteStore {
    store: Mutex<SqlStore<Connection>>,
    dir: Option<PathBuf>,
}

impl SqliteStore {
    pub(super) fn open(dir: Option<&Path>, wait_timeout: Duration) -> anyhow::Result<SqliteStore> {
        let conn = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                let path = dir.join(FILE_NAME);
                Connection::open(&path).with_context(|| format!("opening {}", path.display()))?
            }
            None => Connection::open_in_memory()?,
        };
        // Another process may hold the file for a moment (a second server, an operator's shell).
        // A write that gives up waiting has applied nothing.
        conn.busy_timeout(wait_timeout)?;
        // Each keyspace has nine statements, queries and scans a few shapes more.
        conn.set_prepared_statement_cache_capacity(1024);
        // For the migration that gives rows from before scan segments their hash.
        conn.create_scalar_function("partition_hash", 1, FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
            Ok(i64::from(partition_hash(ctx.get_raw(0).as_blob()?)))
        })?;
        let store = SqlStore::open(conn, Dialect::Sqlite).context("migrating the embedded store")?;
        Ok(SqliteStore { store: Mutex::new(store), dir: dir.map(Path::to_path_buf) })
    }

    pub(super) fn describe(&self) -> String {
        match &self.dir {
            Some(dir) => format!("embedded store at {}", dir.display()),
            None => "in-memory store".to_string(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, SqlStore<Connection>> {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        // A panic in the middle of a transaction (the only way the store leaves one open) must
        // not make every later BEGIN fail: its writes are rolled back, as if never made.
        if !store.connection().is_autocommit() {
            let _ = store.connection().execute_batch("ROLLBACK");
        }
        store
    }
}
