//! [`Connection`] for rusqlite: the host's embedded store, and the Spin store's tests (Spin's
//! SQLite interface is rusqlite on the other side). Calls complete at once; see [`crate::ready`].

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{ToSql, params_from_iter};

use crate::{Connection, Param, Row, SqlError, SqlErrorKind, Value};

impl Connection for rusqlite::Connection {
    async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
        let mut statement = self.prepare_cached(sql).map_err(error)?;
        let columns = statement.column_count();
        let mut rows = statement.query(params_from_iter(params)).map_err(error)?;
        let mut result = Vec::new();
        while let Some(row) = rows.next().map_err(error)? {
            let values = (0..columns).map(|i| row.get_ref(i).map(value)).collect::<Result<_, _>>().map_err(error)?;
            result.push(values);
        }
        Ok(result)
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
        let mut statement = self.prepare_cached(sql).map_err(error)?;
        statement.execute(params_from_iter(params)).map(|n| n as u64).map_err(error)
    }

    async fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        self.execute_batch(sql).map_err(error)
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Null => ValueRef::Null,
            Param::Int(value) => ValueRef::Integer(value),
            Param::Bytes(value) => ValueRef::Blob(value),
            Param::Text(value) => ValueRef::Text(value.as_bytes()),
        }))
    }
}

fn value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(value) => Value::Int(value),
        ValueRef::Real(value) => Value::Int(value as i64),
        ValueRef::Text(value) => Value::Text(String::from_utf8_lossy(value).into_owned()),
        ValueRef::Blob(value) => Value::Bytes(value.to_vec()),
    }
}

fn error(e: rusqlite::Error) -> SqlError {
    let kind = match &e {
        rusqlite::Error::SqliteFailure(_, Some(message)) if message.starts_with("no such table") => {
            SqlErrorKind::MissingTable
        }
        _ => SqlErrorKind::Other,
    };
    SqlError { kind, message: e.to_string() }
}
