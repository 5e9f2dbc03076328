//! The PostgreSQL driver: a pool of connections, pipelining, and PostgreSQL's types; the
//! statements and everything else come from the control path every store shares
//! (`dynabox_sql::SqlStore`).
//!
//! Everything dynabox creates lives in the schema `dynabox` (catalog `dynabox.tables` and
//! `dynabox.keyspaces`, change logs `dynabox.changes`, migrations `dynabox.schema_migrations`,
//! storage tables `dynabox.ks_<n>`), rather than as `dynabox_*` objects in `public`: the names
//! cannot collide with the user's tables, they do not depend on the connection's `search_path`,
//! and an operator can grant read access to (or drop) dynabox's data as one unit. Documents are
//! `json` (not `jsonb`, which cannot hold U+0000), so items can be queried with SQL:
//! `SELECT doc->'name'->>'S' FROM dynabox.ks_7`. Item versions come from the sequence
//! `dynabox.item_versions`, so no key ever gets a version twice.
//!
//! A write group is sent whole, its `BEGIN` and `COMMIT` included (pipelined: one round trip for
//! a guarded put): each guard is made to divide by zero when it does not hold, which aborts the
//! transaction, so the `COMMIT` rolls it back. The table guard also returns the transaction's id,
//! which arrives before the `COMMIT` is read, so a `COMMIT` whose answer is lost is looked up with
//! `txid_status` and answered by its outcome.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use dynabox_handler::storage::StorageError;
use dynabox_sql::plan::raise_unless_rows;
use dynabox_sql::{
    Answer, Connection, Dialect, Guard, Param, Row, SqlError, SqlErrorKind, Statement, TransactionFailed, Value,
};
use futures_util::TryFutureExt;
use futures_util::future::{Either, join_all};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use super::{Driver, PoolUse, SqlBackend};

pub struct PostgresDriver {
    pool: Pooled,
    location: String,
}

/// The pool and how long a call waits for it; cheap to clone (the pool is shared), so every
/// connection lent can ask it for another.
#[derive(Clone)]
struct Pooled {
    pool: Pool,
    wait_timeout: Duration,
}

/// Connects (pool of `pool_size` connections) and runs pending migrations. A call waits at most
/// `wait_timeout` for a connection, and each statement runs at most that long (the server cancels
/// it, so a write that times out is rolled back, never half-known).
pub async fn connect(
    url: &str,
    pool_size: usize,
    wait_timeout: Duration,
) -> anyhow::Result<SqlBackend<PostgresDriver>> {
    let driver = driver(url, pool_size, wait_timeout).await?;
    let location = driver.location.clone();
    SqlBackend::open(driver, Dialect::Postgres).await.with_context(|| format!("migrating the schema at {location}"))
}

/// The pool alone, for stores of other shapes (the tests' per-request store).
pub async fn driver(url: &str, pool_size: usize, wait_timeout: Duration) -> anyhow::Result<PostgresDriver> {
    let mut config: tokio_postgres::Config = url.parse().context("parsing the PostgreSQL connection string")?;
    let location = location(&config);
    // The server enforces the timeout on every statement: a statement it cancels rolls back,
    // so a write that times out has applied nothing, which a timeout on the client side could
    // not tell. Lock waits count.
    let timeout = format!("-c statement_timeout={}", wait_timeout.as_millis());
    let options = match config.get_options() {
        Some(options) => format!("{options} {timeout}"),
        None => timeout,
    };
    config.options(&options).connect_timeout(wait_timeout);
    // Fast recycling: no test query when a connection is taken from the pool, so an item
    // operation is one round trip.
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(manager).max_size(pool_size).build()?;
    drop(pool.get().await.with_context(|| format!("connecting to PostgreSQL at {location}"))?);
    Ok(PostgresDriver { pool: Pooled { pool, wait_timeout }, location })
}

impl Driver for PostgresDriver {
    type Connection<'a> = PgConnection;

    async fn connect(&self) -> Result<PgConnection, StorageError> {
        let pool = self.pool.clone();
        Ok(PgConnection { client: Some(pool.client().await?), pool, in_transaction: false })
    }

    fn describe(&self) -> String {
        format!("PostgreSQL at {}", self.location)
    }

    fn worth_remembering_descriptions(&self) -> bool {
        true
    }

    fn pool_use(&self) -> Option<PoolUse> {
        let status = self.pool.pool.status();
        Some(PoolUse { in_use: status.size - status.available, idle: status.available, waiting: status.waiting })
    }
}

impl Pooled {
    /// A pooled connection, waiting at most the wait timeout for one to be free.
    async fn client(&self) -> Result<Object, StorageError> {
        match tokio::time::timeout(self.wait_timeout, self.pool.get()).await {
            Ok(client) => client.map_err(|e| StorageError::Internal(format!("postgres: {e}"))),
            Err(_) => {
                Err(StorageError::Internal(format!("postgres: no connection free within {:?}", self.wait_timeout)))
            }
        }
    }

    /// Whether the transaction `id`, whose `COMMIT` was sent but never answered, committed: asked
    /// on another connection, and asked again while it is still in progress (the server may not
    /// have noticed the lost connection yet), within the storage timeout.
    async fn outcome_of(&self, id: i64) -> Result<(), SqlError> {
        let deadline = tokio::time::Instant::now() + self.wait_timeout;
        while tokio::time::Instant::now() < deadline {
            // After a restart the pool may still hold dead connections: each try takes another.
            // None: PostgreSQL could not be asked; Some(None): it cannot tell.
            let status: Option<Option<String>> = match self.client().await {
                Ok(client) => {
                    let statement = client.prepare_cached("SELECT txid_status($1)").await;
                    let row = statement.map(|s| async move { client.query_one(&s, &[&id]).await });
                    match row {
                        Ok(row) => row.await.ok().map(|row| row.get(0)),
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            };
            match status.as_ref().map(Option::as_deref) {
                Some(Some("committed")) => return Ok(()),
                Some(Some("aborted")) => {
                    return Err(SqlError::other("the connection was lost; the transaction rolled back"));
                }
                // Too old to tell (it cannot be: it is seconds old), or no answer yet.
                Some(None) => break,
                Some(Some(_)) | None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        Err(SqlError { kind: SqlErrorKind::OutcomeUnknown, message: "the outcome of a COMMIT is unknown".into() })
    }
}

/// A pooled connection lent to one call. One that is dropped inside a transaction (its request
/// was dropped, or the rollback failed) is closed instead of returned to the pool, which ends the
/// transaction on the server.
pub struct PgConnection {
    client: Option<Object>,
    pool: Pooled,
    in_transaction: bool,
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        if let Some(client) = self.client.take().filter(|_| self.in_transaction) {
            drop(Object::take(client));
        }
    }
}

/// Statements sent at once at most: `join_all` polls its futures in order, so sends their
/// statements in order, only up to this many.
const PIPELINE_DEPTH: usize = 30;

impl PgConnection {
    fn client(&self) -> &Object {
        self.client.as_ref().expect("held until dropped")
    }

    /// Closes the connection instead of returning it to the pool.
    fn discard(&mut self) {
        self.in_transaction = false;
        if let Some(lost) = self.client.take() {
            drop(Object::take(lost));
        }
    }
}

impl Connection for PgConnection {
    async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
        let client = self.client();
        let statement = client.prepare_cached(sql).await.map_err(error)?;
        let rows = client.query(&statement, &bind(params)).await.map_err(error)?;
        Ok(rows_answer(&rows)?.rows)
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
        let client = self.client();
        let statement = client.prepare_cached(sql).await.map_err(error)?;
        let result = client.execute(&statement, &bind(params)).await;
        match sql {
            "BEGIN" => self.in_transaction |= result.is_ok(),
            // Answered either way: the transaction has ended.
            "COMMIT" | "ROLLBACK" => self.in_transaction &= result.as_ref().is_err_and(|e| e.code().is_none()),
            _ => {}
        }
        result.map_err(error)
    }

    async fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        self.client().batch_execute(sql).await.map_err(error)
    }

    async fn pipeline(&mut self, statements: &[Statement<'_>]) -> Vec<Result<Answer, SqlError>> {
        let client = self.client();
        let mut prepared = Vec::with_capacity(statements.len());
        for statement in statements {
            prepared.push(client.prepare_cached(&statement.sql).await.map_err(error));
        }
        let params: Vec<_> = statements.iter().map(|s| bind(&s.params)).collect();
        let answers = prepared.iter().zip(statements).zip(&params).map(|((prepared, statement), params)| async move {
            let prepared = prepared.as_ref().map_err(Clone::clone)?;
            let answer = match statement.returns_rows {
                true => rows_answer(&client.query(prepared, params).await.map_err(error)?)?,
                false => Answer { rows: Vec::new(), count: client.execute(prepared, params).await.map_err(error)? },
            };
            statement.guard.check(answer)
        });
        join_all(answers).await
    }

    async fn transaction(
        &mut self,
        begin: &str,
        statements: &[Statement<'_>],
    ) -> Result<Vec<Answer>, TransactionFailed> {
        let mut steps: Vec<Step<'_>> = Vec::with_capacity(statements.len() + 2);
        steps.push(Step {
            role: Role::Begin,
            sql: Cow::Borrowed(begin),
            params: &[],
            guard: Guard::None,
            returns_rows: false,
        });
        for (index, statement) in statements.iter().enumerate() {
            let (sql, role) = match (statement.guard, statement.table_guard) {
                (Guard::None, _) => (Cow::Borrowed(statement.sql.as_ref()), Role::Statement(index)),
                (guard, false) => {
                    (Cow::Owned(raise_unless_rows(&statement.sql, guard == Guard::OneRow)), Role::Statement(index))
                }
                (guard, true) => {
                    let raising = raise_unless_rows(&statement.sql, guard == Guard::OneRow);
                    // `guard.*` keeps the guard's own column, which PostgreSQL would otherwise
                    // drop unevaluated.
                    (
                        Cow::Owned(format!("SELECT txid_current(), guard.* FROM ({raising}) AS guard")),
                        Role::TableGuard(index),
                    )
                }
            };
            let returns_rows = statement.returns_rows && statement.guard == Guard::None || statement.table_guard;
            steps.push(Step { role, sql, params: &statement.params, guard: statement.guard, returns_rows });
        }
        steps.push(Step {
            role: Role::Commit,
            sql: Cow::Borrowed("COMMIT"),
            params: &[],
            guard: Guard::None,
            returns_rows: false,
        });
        let mut answers = Vec::with_capacity(statements.len());
        // The transaction's id, once the server has told it: what tells a lost COMMIT's outcome.
        let mut transaction: Option<i64> = None;
        for run in steps.chunks(PIPELINE_DEPTH) {
            let client = self.client();
            let mut prepared = Vec::with_capacity(run.len());
            for step in run {
                // Prepared before anything is sent, so that the statements go out in order.
                match client.prepare_cached(&step.sql).await {
                    Ok(statement) => prepared.push(statement),
                    Err(e) => return Err(self.failed_before_commit(step.role, error(e)).await),
                }
            }
            let params: Vec<_> = run.iter().map(|step| bind(step.params)).collect();
            let executions =
                run.iter().zip(&prepared).zip(&params).map(|((step, statement), params)| match step.returns_rows {
                    true => Either::Left(client.query(statement, params).map_ok(Ok)),
                    false => Either::Right(client.execute(statement, params).map_ok(Err)),
                });
            let results = join_all(executions).await;
            // After the first failure the transaction is aborted: what follows fails too, and a
            // COMMIT rolls back. Unless no answer came: then a COMMIT sent may have committed.
            let (mut first_failure, mut server_refused, mut commit_unanswered) = (None, false, false);
            for (step, result) in run.iter().zip(results) {
                match step.role {
                    Role::Begin => self.in_transaction = true,
                    Role::Commit => self.in_transaction = false,
                    Role::Statement(_) | Role::TableGuard(_) => {}
                }
                match result {
                    Ok(rows_or_count) => {
                        let answer = match rows_or_count {
                            Ok(rows) => {
                                if let (Role::TableGuard(_), Some(first)) = (step.role, rows.first()) {
                                    transaction = transaction.or(first.try_get(0).ok());
                                }
                                match rows_answer(&rows) {
                                    Ok(answer) => answer,
                                    Err(e) => {
                                        first_failure = first_failure.or(Some((step.role, e)));
                                        continue;
                                    }
                                }
                            }
                            Err(count) => Answer { rows: Vec::new(), count },
                        };
                        if let Role::Statement(_) | Role::TableGuard(_) = step.role {
                            // A raising guard that answered held.
                            let count = match step.guard {
                                Guard::OneRow => 1,
                                Guard::NoRow => 0,
                                Guard::None => answer.count,
                            };
                            answers.push(Answer { count, ..answer });
                        }
                    }
                    Err(e) => {
                        server_refused |= e.code().is_some_and(|code| !is_disconnection(code));
                        commit_unanswered |= matches!(step.role, Role::Commit);
                        first_failure = first_failure.or(Some((step.role, error(e))));
                    }
                }
            }
            if commit_unanswered && !server_refused {
                // The connection is lost; asking takes another, which a pool of one must give.
                self.discard();
                let outcome = match transaction {
                    Some(id) => self.pool.outcome_of(id).await,
                    None => Err(SqlError {
                        kind: SqlErrorKind::OutcomeUnknown,
                        message: "a COMMIT was not answered".into(),
                    }),
                };
                return outcome.map(|()| answers).map_err(|error| TransactionFailed { at: None, error });
            }
            if let Some((role, error)) = first_failure {
                return Err(self.failed_before_commit(role, error).await);
            }
        }
        Ok(answers)
    }

    fn forget_statements(&mut self, statements: &[&str]) {
        for statement in statements {
            self.pool.pool.manager().statement_caches.remove(statement, &[]);
        }
    }
}

impl PgConnection {
    /// The failure of a group's statement, after rolling back what is still open (should that
    /// fail, dropping the connection closes it instead).
    async fn failed_before_commit(&mut self, role: Role, error: SqlError) -> TransactionFailed {
        if self.in_transaction && self.client().batch_execute("ROLLBACK").await.is_ok() {
            self.in_transaction = false;
        }
        let at = match role {
            Role::Statement(index) | Role::TableGuard(index) => Some(index),
            Role::Begin | Role::Commit => None,
        };
        TransactionFailed { at, error }
    }
}

/// What a pipelined group sends, in order.
struct Step<'a> {
    role: Role,
    sql: Cow<'a, str>,
    params: &'a [Param<'a>],
    guard: Guard,
    returns_rows: bool,
}

/// What a statement of a pipelined group is.
#[derive(Clone, Copy)]
enum Role {
    Begin,
    /// The group's statement at this index.
    Statement(usize),
    /// The group's table guard at this index, which also tells the transaction's id.
    TableGuard(usize),
    Commit,
}

/// Whether an error the server sent means it is closing the connection (administrator command,
/// crash, shutdown), not that the statement failed: the transaction may have committed just before.
fn is_disconnection(code: &SqlState) -> bool {
    code.code().starts_with("57P") || code.code().starts_with("08")
}

/// A transaction PostgreSQL rolled back for concurrency (deadlock, serialisation): nothing of it
/// applied, and deciding again may succeed.
fn is_conflict(code: &SqlState) -> bool {
    *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
}

fn error(e: tokio_postgres::Error) -> SqlError {
    let kind = match e.code() {
        Some(&SqlState::UNDEFINED_TABLE) => SqlErrorKind::MissingTable,
        Some(code) if is_conflict(code) => SqlErrorKind::Conflict,
        // Only a guard made to raise divides by zero (see `raise_unless_rows`).
        Some(&SqlState::DIVISION_BY_ZERO) => SqlErrorKind::GuardFailed,
        _ => SqlErrorKind::Other,
    };
    // `{:#}` prints the cause chain: tokio-postgres alone says just "db error".
    SqlError { kind, message: format!("{:#}", anyhow::Error::new(e)) }
}

/// Rows in the values the control path reads.
fn rows_answer(rows: &[tokio_postgres::Row]) -> Result<Answer, SqlError> {
    let rows: Vec<Row> = rows.iter().map(row).collect::<Result<_, _>>()?;
    Ok(Answer { count: rows.len() as u64, rows })
}

fn row(row: &tokio_postgres::Row) -> Result<Row, SqlError> {
    (0..row.len())
        .map(|i| {
            let ty = row.columns()[i].type_();
            let value = match *ty {
                Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
                Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(|v| Value::Int(v.into()))),
                Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i).map(|v| v.map(Value::Bytes)),
                Type::TEXT | Type::VARCHAR => row.try_get::<_, Option<String>>(i).map(|v| v.map(Value::Text)),
                _ => return Err(SqlError::other(format!("unexpected column type {ty}"))),
            };
            value.map(|v| v.unwrap_or(Value::Null)).map_err(error)
        })
        .collect()
}

/// `host:port/database` for the log, from the parsed config so that no password can slip in.
fn location(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let database = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("{}/{database}", hosts.join(","))
}

fn bind<'a>(params: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}
