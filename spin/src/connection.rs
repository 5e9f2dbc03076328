//! [`Connection`] on Spin's `sqlite` (spin:sqlite@3.0.0) and `postgres` (spin:postgres@4.0.0)
//! interfaces: the only code of the Spin component's storage that its native tests do not run
//! (they run `SqlStore` on rusqlite and on pooled tokio-postgres connections used one statement at
//! a time, what Spin itself uses behind these interfaces). Spin's calls answer at once: the
//! futures are ready when first polled. Mechanical conversions only.

use dynabox_sql::{Connection, Param, Row, SqlError, SqlErrorKind, Value, statements};
use spin_sdk::{pg4, sqlite3};

pub struct SpinSqlite(sqlite3::Connection);

impl SpinSqlite {
    /// Spin's default database (`.spin/sqlite_db.db` under `spin up`).
    pub fn open_default() -> Result<SpinSqlite, SqlError> {
        sqlite3::Connection::open_default().map(SpinSqlite).map_err(sqlite_error)
    }
}

impl Connection for SpinSqlite {
    async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
        let params: Vec<sqlite3::Value> = params.iter().map(sqlite_value).collect();
        let result = self.0.execute(sql, &params).map_err(sqlite_error)?;
        let row = |row: sqlite3::RowResult| row.values.into_iter().map(from_sqlite).collect();
        Ok(result.rows.into_iter().map(row).collect())
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
        self.query(sql, params).await?;
        Ok(self.0.changes())
    }

    async fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        // Spin runs the first statement of a string only.
        for statement in statements(sql) {
            self.query(statement, &[]).await?;
        }
        Ok(())
    }
}

fn sqlite_value(param: &Param<'_>) -> sqlite3::Value {
    match *param {
        Param::Null => sqlite3::Value::Null,
        Param::Int(value) => sqlite3::Value::Integer(value),
        Param::Bytes(value) => sqlite3::Value::Blob(value.to_vec()),
        Param::Text(value) => sqlite3::Value::Text(value.to_string()),
    }
}

fn from_sqlite(value: sqlite3::Value) -> Value {
    match value {
        sqlite3::Value::Null => Value::Null,
        sqlite3::Value::Integer(value) => Value::Int(value),
        sqlite3::Value::Real(value) => Value::Int(value as i64),
        sqlite3::Value::Text(value) => Value::Text(value),
        sqlite3::Value::Blob(value) => Value::Bytes(value),
    }
}

fn sqlite_error(e: sqlite3::Error) -> SqlError {
    let message = match e {
        sqlite3::Error::Io(message) => message,
        other => format!("{other:?}"),
    };
    // Spin passes SQLite's message on as text.
    let kind = if message.contains("no such table") { SqlErrorKind::MissingTable } else { SqlErrorKind::Other };
    SqlError { kind, message }
}

pub struct SpinPostgres(pg4::Connection);

impl SpinPostgres {
    pub fn open(url: &str) -> Result<SpinPostgres, SqlError> {
        pg4::Connection::open(url).map(SpinPostgres).map_err(postgres_error)
    }
}

impl Connection for SpinPostgres {
    async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
        let params: Vec<pg4::ParameterValue> = params.iter().map(postgres_value).collect();
        let rows = self.0.query(&at_least_one_row(sql), &params).map_err(postgres_error)?;
        let rows = rows.rows.into_iter().filter(|row| !matches!(row.first(), Some(pg4::DbValue::DbNull)));
        rows.map(|row| row.into_iter().skip(1).map(from_postgres).collect()).collect()
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
        let params: Vec<pg4::ParameterValue> = params.iter().map(postgres_value).collect();
        self.0.execute(sql, &params).map_err(postgres_error)
    }

    async fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        // Spin prepares each string: one statement at a time.
        for statement in statements(sql) {
            self.execute(statement, &[]).await?;
        }
        Ok(())
    }
}

/// The statement's rows, each after its position (from 1), or a single row of nulls when it has
/// none. Spin 4.0's `query` never returns for a statement that yields no rows (its host waits for
/// the column types, which it learns from the first row): so every statement yields a row, and the
/// row of nulls, told apart by its null position, is dropped again. The position keeps the
/// statement's order. (DML with RETURNING works the same inside WITH.)
fn at_least_one_row(sql: &str) -> String {
    format!(
        "WITH statement AS ({sql}), numbered AS (SELECT row_number() OVER () AS dynabox_row, * FROM statement) \
         SELECT numbered.* FROM (VALUES (1)) AS one LEFT JOIN numbered ON true ORDER BY numbered.dynabox_row"
    )
}

fn postgres_value(param: &Param<'_>) -> pg4::ParameterValue {
    match *param {
        Param::Null => pg4::ParameterValue::DbNull,
        Param::Int(value) => pg4::ParameterValue::Int64(value),
        Param::Bytes(value) => pg4::ParameterValue::Binary(value.to_vec()),
        Param::Text(value) => pg4::ParameterValue::Str(value.to_string()),
    }
}

fn from_postgres(value: pg4::DbValue) -> Result<Value, SqlError> {
    Ok(match value {
        pg4::DbValue::DbNull => Value::Null,
        pg4::DbValue::Int64(value) => Value::Int(value),
        pg4::DbValue::Int32(value) => Value::Int(value.into()),
        pg4::DbValue::Int16(value) => Value::Int(value.into()),
        pg4::DbValue::Str(value) => Value::Text(value),
        pg4::DbValue::Binary(value) => Value::Bytes(value),
        other => return Err(SqlError::other(format!("unexpected value {other:?}"))),
    })
}

fn postgres_error(e: pg4::PgError) -> SqlError {
    let code = match &e {
        pg4::PgError::QueryFailed(pg4::QueryError::DbError(db)) => db.code.as_str(),
        _ => "",
    };
    let kind = match code {
        "42P01" => SqlErrorKind::MissingTable,
        // deadlock_detected, serialization_failure: rolled back whole, to be decided again.
        "40P01" | "40001" => SqlErrorKind::Conflict,
        _ => SqlErrorKind::Other,
    };
    SqlError { kind, message: format!("{e:?}") }
}
