//! dynabox's storage contract (`dynabox_handler::storage`) on SQL, from one source for every place
//! that stores data: the host's embedded store, the host's PostgreSQL backend and the Spin
//! component (on Spin's SQLite or PostgreSQL).
//!
//! - [`dialect`]: the schema, every statement and the migrations, for SQLite and PostgreSQL.
//! - [`plan`]: what the statements of a request are (item writes, query and scan shapes) and how
//!   a page is cut; shared with the host's asynchronous PostgreSQL backend.
//! - [`store::SqlStore`]: the contract implemented once, synchronously, over any [`Connection`]:
//!   rusqlite (the host's embedded store), the `postgres` client (tests), Spin's `sqlite` and
//!   `postgres` interfaces (the Spin component).
//!
//! Layout, the same in both dialects: the catalog `tables` holds each account's tables (name,
//! description, its version, the change log's last sequence number); `keyspaces` maps each
//! table's base keyspace (index name '') and index keyspaces to a storage table `ks_<n>` (or
//! `items_<n>`, from before indexes) with columns `pk`, `sk` (bytes, `sk` empty without a sort
//! key), `doc` (the document), `version`, `h` (the partition's hash, for scan segments, indexed
//! with the key) and `expires` (optional, indexed where set); `changes` holds the change logs.
//! Table names are never used as SQL identifiers; `<n>` comes from a counter that never hands out
//! a number twice, so a stale reference to a deleted table or index can never reach a newer one.
//!
//! Choices the contract leaves open, the same everywhere:
//! - Query and scan set `more` when they stopped because of the limit or the byte budget, without
//!   looking whether anything follows: a page that ends exactly at the last item still says
//!   `more`, and the next scan returns an empty page with `more == false`. A byte budget of 0
//!   still yields one item, so a scan always progresses.
//! - The writes of a group apply in order; each guard sees the effect of the earlier writes of
//!   the group. Guards are checked against the state at the moment the write runs.
//! - Documents come back byte for byte as written; their bytes are what the scan budget and
//!   `keyspace_stats` count.
//! - Versions: every put gives its key a version that key never had, from one clock per store
//!   (SQLite: a reserved block of a persistent counter; PostgreSQL: a sequence), so a guard that
//!   holds a version read before a delete can never match the key written again. Versions grow
//!   with each write of one store handle; across handles they are only unique. All puts of one
//!   group may share a version.

pub mod accounts;
pub mod dialect;
pub mod plan;
pub mod store;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "rusqlite")]
pub mod rusqlite;

pub use dialect::Dialect;
pub use store::SqlStore;

/// A connection to a SQL database, as [`SqlStore`] uses it: statements with positional
/// parameters, one at a time, in the connection's own session (so `BEGIN` … `COMMIT` spans calls).
pub trait Connection {
    /// Runs one statement that may return rows (a SELECT, or DML with RETURNING): its rows.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError>;
    /// Runs one statement that returns no rows: how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError>;
    /// Runs several statements without parameters (DDL, migrations). Connections whose driver
    /// takes one statement at a time split them with [`statements`].
    fn batch(&mut self, sql: &str) -> Result<(), SqlError>;
}

/// A value bound to a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Bytes(&'a [u8]),
    /// Text, also JSON documents and descriptions (the statements cast it where a column is `json`).
    Text(&'a str),
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Bytes(Vec<u8>),
    Text(String),
}

pub type Row = Vec<Value>;

/// Reading a row's columns by position, with the types the statements select.
pub trait Columns {
    fn int(&self, column: usize) -> Result<i64, SqlError>;
    /// Bytes of a blob or of a text (documents are selected as text).
    fn bytes(&mut self, column: usize) -> Result<Vec<u8>, SqlError>;
    fn text(&mut self, column: usize) -> Result<String, SqlError>;
}

impl Columns for Row {
    fn int(&self, column: usize) -> Result<i64, SqlError> {
        match self.get(column) {
            Some(Value::Int(value)) => Ok(*value),
            other => Err(SqlError::unexpected(column, other)),
        }
    }

    fn bytes(&mut self, column: usize) -> Result<Vec<u8>, SqlError> {
        match self.get_mut(column).map(|v| std::mem::replace(v, Value::Null)) {
            Some(Value::Bytes(value)) => Ok(value),
            Some(Value::Text(value)) => Ok(value.into_bytes()),
            other => Err(SqlError::unexpected(column, other.as_ref())),
        }
    }

    fn text(&mut self, column: usize) -> Result<String, SqlError> {
        match self.get_mut(column).map(|v| std::mem::replace(v, Value::Null)) {
            Some(Value::Text(value)) => Ok(value),
            other => Err(SqlError::unexpected(column, other.as_ref())),
        }
    }
}

/// A failed statement. Two kinds matter to the store: `MissingTable`, a storage table another
/// process dropped after this one looked it up, and `Conflict`, a transaction the database rolled
/// back because it deadlocked with (or could not be serialised after) another one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub kind: SqlErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlErrorKind {
    MissingTable,
    Conflict,
    Other,
}

impl SqlError {
    pub fn other(message: impl Into<String>) -> SqlError {
        SqlError { kind: SqlErrorKind::Other, message: message.into() }
    }

    pub fn is_missing_table(&self) -> bool {
        self.kind == SqlErrorKind::MissingTable
    }

    fn unexpected(column: usize, value: Option<&Value>) -> SqlError {
        SqlError::other(format!("unexpected value in column {column}: {value:?}"))
    }
}

impl std::error::Error for SqlError {}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The statements of a script, split at semicolons outside quotes, comments and dollar-quoted
/// bodies (PostgreSQL's `DO $$ … $$`), for drivers that run one statement per call.
pub fn statements(script: &str) -> Vec<&str> {
    let bytes = script.as_bytes();
    let (mut statements, mut start, mut i) = (Vec::new(), 0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = skip_past(bytes, i + 1, &bytes[i..=i]),
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_past(bytes, i, b"\n"),
            b'$' => {
                let tag_end = bytes[i + 1..].iter().position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'));
                match tag_end.map(|n| i + 1 + n) {
                    Some(end) if bytes[end] == b'$' => {
                        let tag = &bytes[i..=end];
                        i = skip_past(bytes, end + 1, tag);
                    }
                    _ => i += 1,
                }
            }
            b';' => {
                statements.push(&script[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    statements.push(&script[start..]);
    statements.retain(|s| !is_blank(s));
    statements
}

/// The index just past the next occurrence of `end` at or after `from` (the end of the script
/// if none).
fn skip_past(bytes: &[u8], from: usize, end: &[u8]) -> usize {
    bytes[from..].windows(end.len()).position(|w| w == end).map_or(bytes.len(), |n| from + n + end.len())
}

/// Only whitespace and `--` comments.
fn is_blank(statement: &str) -> bool {
    statement.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with("--")
    })
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn splits_scripts_outside_quotes_comments_and_bodies() {
        let script = "-- a comment; with a semicolon\nCREATE TABLE a (x text DEFAULT ';');\n\
                      DO $$ BEGIN PERFORM 1; END $$;\nDO $body$ SELECT ';' $body$;\n  \n-- trailing\n";
        assert_eq!(
            statements(script),
            vec![
                "-- a comment; with a semicolon\nCREATE TABLE a (x text DEFAULT ';')",
                "\nDO $$ BEGIN PERFORM 1; END $$",
                "\nDO $body$ SELECT ';' $body$",
            ]
        );
    }

    #[test]
    fn every_migration_splits_into_statements_that_end_where_the_file_says() {
        for dialect in [crate::Dialect::Sqlite, crate::Dialect::Postgres] {
            for migration in dialect.migrations() {
                let joined: String = statements(migration.sql).iter().map(|s| format!("{s};")).collect();
                let squash = |s: &str| s.split_whitespace().collect::<String>();
                let without_comments: String =
                    migration.sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
                let joined_without_comments: String =
                    joined.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
                assert_eq!(squash(&joined_without_comments), squash(&without_comments), "{}", migration.version);
            }
        }
    }
}
