//! PostgreSQL drivers: [`Connection`] for the synchronous `postgres` client (the Spin store's
//! tests: Spin's PostgreSQL interface is tokio-postgres on the other side), and [`Param`] as a
//! tokio-postgres parameter (the host's asynchronous backend binds the same values).

use bytes::BytesMut;
use postgres::error::SqlState;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::{Connection, Param, Row, SqlError, SqlErrorKind, Value};

impl Connection for postgres::Client {
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = postgres::Client::query(self, sql, &params).map_err(error)?;
        rows.iter().map(|row| (0..row.len()).map(|i| value(row, i)).collect()).collect()
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        postgres::Client::execute(self, sql, &params).map_err(error)
    }

    fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        self.batch_execute(sql).map_err(error)
    }
}

/// Binds to whatever type the statement gives the parameter: the statements cast where the
/// column's type differs from the value's (`$3::text::json`).
impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(value) => value.to_sql(ty, out),
            Param::Bytes(value) => value.to_sql(ty, out),
            Param::Text(value) => value.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn value(row: &postgres::Row, i: usize) -> Result<Value, SqlError> {
    let ty = row.columns()[i].type_();
    let got = match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(|v| Value::Int(v.into()))),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i).map(|v| v.map(Value::Bytes)),
        Type::TEXT | Type::VARCHAR => row.try_get::<_, Option<String>>(i).map(|v| v.map(Value::Text)),
        _ => return Err(SqlError::other(format!("unexpected column type {ty}"))),
    };
    got.map(|v| v.unwrap_or(Value::Null)).map_err(error)
}

pub(crate) fn error(e: postgres::Error) -> SqlError {
    let kind = match e.code() {
        Some(&SqlState::UNDEFINED_TABLE) => SqlErrorKind::MissingTable,
        Some(code) if is_conflict(code) => SqlErrorKind::Conflict,
        _ => SqlErrorKind::Other,
    };
    // `{:#}`-like: the error alone often says just "db error".
    let message = match e.as_db_error() {
        Some(db) => format!("{e}: {db}"),
        None => e.to_string(),
    };
    SqlError { kind, message }
}

/// A transaction PostgreSQL rolled back for concurrency (deadlock, serialisation): nothing of it
/// applied, and deciding again may succeed.
pub fn is_conflict(code: &SqlState) -> bool {
    *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
}
