//! dynabox's storage contract (`dynabox_handler::storage`) on SQL, from one source for every place
//! that stores data: the host's embedded store, the host's PostgreSQL backend and the Spin
//! component (on Spin's SQLite or PostgreSQL).
//!
//! - [`dialect`]: the schema, every statement and the migrations, for SQLite and PostgreSQL.
//! - [`plan`]: what the statements of a request are (item writes, query and scan shapes) and how
//!   a page is cut.
//! - [`store::SqlStore`]: the contract implemented once, asynchronously, over any [`Connection`]:
//!   rusqlite (the host's embedded store), the host's PostgreSQL driver (pipelined), Spin's
//!   `sqlite` and `postgres` interfaces (the Spin component, run to their end by [`ready`]).
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

use std::borrow::Cow;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

pub use dialect::Dialect;
pub use store::{SqlStore, Synchronous};

/// A connection to a SQL database, as [`SqlStore`] uses it: statements with positional
/// parameters, in the connection's own session. Asynchronous, so that one control path serves
/// drivers that wait on a network (the host's PostgreSQL pool) and drivers whose calls complete at
/// once (rusqlite, Spin's interfaces), which [`ready`] runs without an executor.
///
/// A driver that can send several statements before reading their answers overrides
/// [`Connection::pipeline`] and [`Connection::transaction`]; the provided versions run one
/// statement at a time.
pub trait Connection: Send {
    /// Runs one statement that may return rows (a SELECT, or DML with RETURNING): its rows.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> impl Future<Output = Result<Vec<Row>, SqlError>> + Send;
    /// Runs one statement that returns no rows: how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> impl Future<Output = Result<u64, SqlError>> + Send;
    /// Runs several statements without parameters (DDL, migrations). Connections whose driver
    /// takes one statement at a time split them with [`statements`].
    fn batch(&mut self, sql: &str) -> impl Future<Output = Result<(), SqlError>> + Send;

    /// Runs one statement and checks its guard: a guard that does not hold is an error of kind
    /// [`SqlErrorKind::GuardFailed`].
    fn run(&mut self, statement: &Statement<'_>) -> impl Future<Output = Result<Answer, SqlError>> + Send {
        async move {
            let answer = match statement.returns_rows {
                true => {
                    let rows = self.query(&statement.sql, &statement.params).await?;
                    Answer { count: rows.len() as u64, rows }
                }
                false => Answer { rows: Vec::new(), count: self.execute(&statement.sql, &statement.params).await? },
            };
            statement.guard.check(answer)
        }
    }

    /// Runs independent statements outside a transaction, each whatever the others' outcome:
    /// their answers in order.
    fn pipeline(&mut self, statements: &[Statement<'_>]) -> impl Future<Output = Vec<Result<Answer, SqlError>>> + Send {
        async move {
            let mut answers = Vec::with_capacity(statements.len());
            for statement in statements {
                answers.push(self.run(statement).await);
            }
            answers
        }
    }

    /// Runs the statements as one transaction begun with `begin`: every answer once it committed,
    /// or the failure that rolled it back. Nothing after a failed statement or guard applies.
    fn transaction(
        &mut self,
        begin: &str,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<Answer>, TransactionFailed>> + Send {
        async move {
            let failed = |at, error| TransactionFailed { at, error };
            self.execute(begin, &[]).await.map_err(|e| failed(None, e))?;
            let mut answers = Vec::with_capacity(statements.len());
            for (index, statement) in statements.iter().enumerate() {
                match self.run(statement).await {
                    Ok(answer) => answers.push(answer),
                    Err(error) => {
                        let _ = self.execute("ROLLBACK", &[]).await;
                        return Err(failed(Some(index), error));
                    }
                }
            }
            match self.execute("COMMIT", &[]).await {
                Ok(_) => Ok(answers),
                Err(error) => {
                    // A failed COMMIT may leave the transaction open; one already ended makes
                    // ROLLBACK fail harmlessly.
                    let _ = self.execute("ROLLBACK", &[]).await;
                    Err(failed(None, error))
                }
            }
        }
    }

    /// The store forgot a dropped keyspace: a driver that keeps its statements prepared may drop
    /// them.
    fn forget_statements(&mut self, _statements: &[&str]) {}
}

/// A statement of a write group or a pipeline: its SQL, its parameters, whether it returns rows,
/// and what its rows (returned or changed) must be for the group to go on.
#[derive(Debug, Clone)]
pub struct Statement<'a> {
    pub sql: Cow<'a, str>,
    pub params: Vec<Param<'a>>,
    pub returns_rows: bool,
    pub guard: Guard,
    /// The group's guard on its table's description (`Write::TableAt`): a driver that must find
    /// out the outcome of a `COMMIT` whose answer was lost may have this statement tell the
    /// transaction's id.
    pub table_guard: bool,
}

impl<'a> Statement<'a> {
    /// A statement that returns rows and guards nothing.
    pub fn select(sql: impl Into<Cow<'a, str>>, params: Vec<Param<'a>>) -> Statement<'a> {
        Statement { sql: sql.into(), params, returns_rows: true, guard: Guard::None, table_guard: false }
    }
}

/// What the rows a statement returned or changed must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    None,
    OneRow,
    NoRow,
}

impl Guard {
    pub fn holds(self, rows: u64) -> bool {
        match self {
            Guard::None => true,
            Guard::OneRow => rows == 1,
            Guard::NoRow => rows == 0,
        }
    }

    /// The answer when the guard held, else an error of kind [`SqlErrorKind::GuardFailed`].
    pub fn check(self, answer: Answer) -> Result<Answer, SqlError> {
        match self.holds(answer.count) {
            true => Ok(answer),
            false => Err(SqlError { kind: SqlErrorKind::GuardFailed, message: "a guard did not hold".into() }),
        }
    }
}

/// A statement's answer: the rows it returned, and how many rows it returned or changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub rows: Vec<Row>,
    pub count: u64,
}

/// Why a [`Connection::transaction`] did not commit: the statement that failed (`None`: the
/// `BEGIN` or the `COMMIT`) and its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionFailed {
    pub at: Option<usize>,
    pub error: SqlError,
}

/// Runs a future of a connection whose calls complete at once (rusqlite, Spin's interfaces) to
/// its end, without an executor.
///
/// # Panics
/// If the future waits, which only a driver that waits on something can make it do.
pub fn ready<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a synchronous connection's call waited"),
    }
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
    /// [`Columns::bytes`] of a nullable column: none for NULL.
    fn optional_bytes(&mut self, column: usize) -> Result<Option<Vec<u8>>, SqlError>;
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

    fn optional_bytes(&mut self, column: usize) -> Result<Option<Vec<u8>>, SqlError> {
        match self.get(column) {
            Some(Value::Null) => Ok(None),
            _ => self.bytes(column).map(Some),
        }
    }

    fn text(&mut self, column: usize) -> Result<String, SqlError> {
        match self.get_mut(column).map(|v| std::mem::replace(v, Value::Null)) {
            Some(Value::Text(value)) => Ok(value),
            other => Err(SqlError::unexpected(column, other.as_ref())),
        }
    }
}

/// A failed statement. Kinds that matter to the store: `MissingTable`, a storage table another
/// process dropped after this one looked it up; `Conflict`, a transaction the database rolled
/// back because it deadlocked with (or could not be serialised after) another one; `GuardFailed`,
/// a statement's [`Guard`] that did not hold; `OutcomeUnknown`, a `COMMIT` whose answer was lost
/// and whose outcome the driver could not find out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub kind: SqlErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlErrorKind {
    MissingTable,
    Conflict,
    GuardFailed,
    OutcomeUnknown,
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
