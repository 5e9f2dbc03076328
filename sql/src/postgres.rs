//! [`Param`] as a PostgreSQL parameter, for the host's PostgreSQL driver (tokio-postgres).

use bytes::BytesMut;
use postgres_types::{IsNull, ToSql, Type, to_sql_checked};

use crate::Param;

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
