//! The embedded store's driver: one rusqlite connection, to a file in a directory or in memory.
//!
//! Every operation takes microseconds and completes without waiting, so calls take turns on the
//! one connection behind a blocking lock instead of moving to a blocking thread, and a single
//! connection costs nothing in throughput. The lock is held only while a call runs, which never
//! suspends: an asynchronous lock, which parks a contended caller, cost GetItem about 17 %.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use dynabox_handler::storage::{StorageError, partition_hash};
use dynabox_sql::{Connection, Dialect, Param, Row, SqlError};
use parking_lot::{Mutex, MutexGuard};
use rusqlite::functions::FunctionFlags;

use super::SqlBackend;

const FILE_NAME: &str = "dynabox.sqlite3";

pub struct SqliteDriver {
    conn: Mutex<rusqlite::Connection>,
    dir: Option<PathBuf>,
}

/// The embedded store in `dir` (created if missing; data survives restarts), or in memory when
/// None. A call waits at most `wait_timeout` for another process's lock on the file.
pub async fn open(dir: Option<&Path>, wait_timeout: Duration) -> anyhow::Result<SqlBackend<SqliteDriver>> {
    let conn = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(FILE_NAME);
            rusqlite::Connection::open(&path).with_context(|| format!("opening {}", path.display()))?
        }
        None => rusqlite::Connection::open_in_memory()?,
    };
    // Another process may hold the file for a moment (a second server, an operator's shell).
    // A write that gives up waiting has applied nothing.
    conn.busy_timeout(wait_timeout)?;
    // Each keyspace has ten statements, queries and scans a few shapes more.
    conn.set_prepared_statement_cache_capacity(1024);
    // For the migration that gives rows from before scan segments their hash.
    conn.create_scalar_function("partition_hash", 1, FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
        Ok(i64::from(partition_hash(ctx.get_raw(0).as_blob()?)))
    })?;
    let driver = SqliteDriver { conn: Mutex::new(conn), dir: dir.map(Path::to_path_buf) };
    SqlBackend::open(driver, Dialect::Sqlite).await.context("migrating the embedded store")
}

/// The connection, lent to one call.
pub struct Lease<'a>(MutexGuard<'a, rusqlite::Connection>);

impl super::Driver for SqliteDriver {
    type Connection<'a> = Lease<'a>;

    async fn connect(&self) -> Result<Lease<'_>, StorageError> {
        let conn = self.conn.lock();
        // A panic in the middle of a transaction (the only way a call leaves one open) must not
        // make every later BEGIN fail: its writes are rolled back, as if never made.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        Ok(Lease(conn))
    }

    fn describe(&self) -> String {
        match &self.dir {
            Some(dir) => format!("embedded store at {}", dir.display()),
            None => "in-memory store".to_string(),
        }
    }

    /// It reads its own at memory speed.
    fn worth_remembering_descriptions(&self) -> bool {
        false
    }
}

impl Connection for Lease<'_> {
    async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
        Connection::query(&mut *self.0, sql, params).await
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
        Connection::execute(&mut *self.0, sql, params).await
    }

    async fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        Connection::batch(&mut *self.0, sql).await
    }
}
